"""Serve the example Django shop for the browser tests: migrated and seeded in a throwaway
SQLite file, on a free port of 127.0.0.1; prints its URL, serves until stdin closes.

Prints the key of a session signed in as ``shopper``, then the URL.

Environment: what the shop's settings read (``SHOP_TOOLBAR``, ``DJANGO_SHOP_DB``,
``CACHEPLUG_STORE``), and ``SHOP_TEST_PASSWORD``: the password of two extra accounts,
``staff`` (staff, not superuser) and ``shopper`` (neither).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

SHOP = Path(__file__).resolve().parents[2] / "example_project" / "django_shop"
sys.path[:0] = [str(SHOP), str(SHOP.parent)]
os.environ["DJANGO_SETTINGS_MODULE"] = "django_shop.settings"


def signed_in(user: Any) -> str:
    """The key of a session signed in as ``user`` (the admin's login form takes staff only)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return str(session.session_key)


def main() -> None:
    import django

    django.setup()
    from demo import seed
    from demo_support import run_worker
    from django.contrib.auth.models import User
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0)
    seed()
    password = os.environ["SHOP_TEST_PASSWORD"]
    User.objects.create_user("staff", password=password, is_staff=True)
    shopper = User.objects.create_user("shopper", password=password)
    print(signed_in(shopper), flush=True)  # first line: a session of the non-staff account
    run_worker(StaticFilesHandler(get_wsgi_application()), 0)


if __name__ == "__main__":
    main()
