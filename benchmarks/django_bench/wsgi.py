"""WSGI entry point for gunicorn (``--pythonpath benchmarks django_bench.wsgi``)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_bench.settings")

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
