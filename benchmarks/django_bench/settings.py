"""Settings of the benchmark project: one per process, chosen by environment variables.

``CACHEPLUG_BENCH_REDIS``: the Redis server (``redis://127.0.0.1:PORT``; cacheplug uses db 0,
django-redis db 1, the benchmark's own counters db 2). ``CACHEPLUG_BENCH_L1=1``: turn the L1
tier on. ``CACHEPLUG_BENCH_MIDDLEWARE``: ``default`` (what ``startproject`` writes, the
default) or ``none``. Both ``cache_page`` and ``cache_view`` run behind the same stack.
``CACHEPLUG_BENCH_PAGES=1`` (``asgi_views.py``): ``CachePlugMiddleware`` too, where the docs
put it (right after ``SecurityMiddleware``; first without it), caching ``/mw/`` by a
``CACHEPLUG["PAGES"]`` rule.
"""

from __future__ import annotations

import os

_REDIS = os.environ.get("CACHEPLUG_BENCH_REDIS", "redis://127.0.0.1:6379").rstrip("/")

SECRET_KEY = "django-views-benchmark-secret-key"  # cacheplug signs its entries with it
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "django_bench.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "cacheplug_django",
]
_MIDDLEWARE = {
    "default": [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    "none": [],
}
MIDDLEWARE = _MIDDLEWARE[os.environ.get("CACHEPLUG_BENCH_MIDDLEWARE", "default")]
# Never opened: no view touches the database (anonymous requests never load a session).
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"{_REDIS}/1",
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
    }
}
CACHE_MIDDLEWARE_KEY_PREFIX = "bench"

CACHEPLUG: dict[str, object] = {"STORE": f"{_REDIS}/0", "NAMESPACE": "bench"}
if os.environ.get("CACHEPLUG_BENCH_L1") == "1":
    CACHEPLUG["L1"] = {"MAX_ENTRIES": 10_000}

COUNTER_URL = f"{_REDIS}/2"
"""Where the slow views count their executions (gunicorn's workers are separate processes)."""

if os.environ.get("CACHEPLUG_BENCH_PAGES") == "1":
    _AT = int(MIDDLEWARE[:1] == ["django.middleware.security.SecurityMiddleware"])
    MIDDLEWARE = [
        *MIDDLEWARE[:_AT],
        "cacheplug_django.middleware.CachePlugMiddleware",
        *MIDDLEWARE[_AT:],
    ]
    CACHEPLUG["PAGES"] = [{"PATH": r"^/mw/", "TTL": 300}]
