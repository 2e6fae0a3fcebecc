"""Django settings for the change data capture tests' processes (the consumer command, the
stats command): the test project, plus a PostgreSQL alias ``pg`` on the test's throwaway
server and ``CACHEPLUG["CDC"]`` reading it, all from the environment the test sets."""

from __future__ import annotations

import os

from cp_settings import *  # noqa: F403
from cp_settings import DATABASES as _DATABASES

DATABASES = {
    **_DATABASES,
    "pg": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "PASSWORD": os.environ.get("CDC_TEST_PASSWORD", ""),
        "HOST": "127.0.0.1",
        "PORT": os.environ["CDC_TEST_PG_PORT"],
    },
}
CACHEPLUG = {
    "NAMESPACE": os.environ["CDC_TEST_NAMESPACE"],
    "STORE": os.environ["CDC_TEST_REDIS"],
    "CDC": {"SOURCE": "postgresql", "DATABASE": "pg", "SLOT": os.environ["CDC_TEST_SLOT"]},
}
