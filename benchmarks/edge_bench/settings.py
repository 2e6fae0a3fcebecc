"""Settings of ``benchmarks/edge.py``'s project, from environment variables:
``EDGE_BENCH_REDIS`` (the store), ``EDGE_BENCH_DB`` (a SQLite file), ``EDGE_BENCH_PURGE`` (the
Varnish purges go to)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The test shop's models (tests/django/shop), as benchmarks/outbox_cost.py uses them.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "django"))

SECRET_KEY = "edge-benchmark-secret-key"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "edge_bench.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "cacheplug_django",
    "shop",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("EDGE_BENCH_DB")}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CACHEPLUG = {
    "STORE": os.environ.get("EDGE_BENCH_REDIS"),
    "NAMESPACE": "edge-bench",
    "EDGE": {"HEADER": "xkey", "S_MAXAGE": 600, "PURGE_URL": os.environ.get("EDGE_BENCH_PURGE")},
}
