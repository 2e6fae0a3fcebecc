"""ASGI entry point for uvicorn (``benchmarks/asgi_views.py``: ``--app-dir benchmarks
django_bench.asgi:application``)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_bench.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
