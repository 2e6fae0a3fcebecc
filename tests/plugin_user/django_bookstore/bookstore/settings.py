"""A small Django project's settings: cacheplug on the Redis server the environment names."""

from __future__ import annotations

import os

SECRET_KEY = "bookstore-tests-secret-key-not-for-production"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = ["django.contrib.contenttypes", "cacheplug_django"]
ROOT_URLCONF = "bookstore.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CACHEPLUG = {"STORE": os.environ["BOOKSTORE_REDIS_URL"], "NAMESPACE": "bookstore"}
