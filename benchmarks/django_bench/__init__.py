"""A minimal Django project used only by ``benchmarks/django_views.py``."""
