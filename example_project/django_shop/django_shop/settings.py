"""Settings of the example shop.

Environment: ``CACHEPLUG_STORE`` (a store URL such as ``redis://127.0.0.1:6379/0``; absent:
the embedded in-process store), ``DJANGO_SHOP_DB`` (the SQLite file), ``DJANGO_SECRET_KEY``,
``SHOP_TOOLBAR=1`` (``scripts/demo.sh --toolbar``: Django Debug Toolbar with cacheplug's panel,
``DEBUG`` on; needs the ``toolbar`` extra), ``SHOP_EDGE_URL`` (``scripts/demo.sh --edge``: the
URL of a Varnish in front of the shop, running ``example_project/edge/cacheplug.vcl``; the
catalog page is then given to it, and purged there by key after each write).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-shop-not-secret-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "cacheplug_django",
    "shop",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "shop.served.ServedFooter",  # says how each page was served: above the page cache
    "cacheplug_django.middleware.CachePlugMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "django_shop.urls"
WSGI_APPLICATION = "django_shop.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_SHOP_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "static/"  # the demo serves the admin's static files itself
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHEPLUG = {
    "STORE": os.environ.get("CACHEPLUG_STORE") or None,
    "NAMESPACE": "shop",
    "DEFAULT_TTL": 300,
    "STALE_TTL": 60,
    "L1": {"MAX_ENTRIES": 10_000},
    # The home page is cached by the middleware; the others by @cache_view.
    "PAGES": [
        {"PATH": r"^/$", "TTL": 60, "DEPENDS_ON": ["shop.Product", "shop.Category", "shop.Review"]}
    ],
}
if os.environ.get("SHOP_EDGE_URL"):
    CACHEPLUG["EDGE"] = {
        "HEADER": "xkey",
        "S_MAXAGE": 600,
        "PURGE_URL": os.environ["SHOP_EDGE_URL"],
    }

TOOLBAR = os.environ.get("SHOP_TOOLBAR", "") == "1"
if TOOLBAR:
    from debug_toolbar.settings import PANELS_DEFAULTS

    DEBUG = True  # the toolbar shows only then
    INTERNAL_IPS = ["127.0.0.1"]
    INSTALLED_APPS.append("debug_toolbar")
    # Above the page cache: the toolbar sees the response a cached page gave, and what it
    # injects is never stored with the page.
    MIDDLEWARE.insert(1, "debug_toolbar.middleware.DebugToolbarMiddleware")
    DEBUG_TOOLBAR_PANELS = [*PANELS_DEFAULTS, "cacheplug_django.toolbar.CachePlugPanel"]
