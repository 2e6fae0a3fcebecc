"""Django settings for the Debezium consumer's process in test_debezium_command: the test
project, its cache and ``CACHEPLUG["CDC"]`` reading Debezium's events from the test's streams,
all from the environment the test sets."""

from __future__ import annotations

import os

from cp_settings import *  # noqa: F403

CACHEPLUG = {
    "NAMESPACE": os.environ["CDC_TEST_NAMESPACE"],
    "STORE": os.environ["CDC_TEST_REDIS"],
    "CDC": {"SOURCE": "debezium-redis", "STREAM": os.environ["CDC_TEST_STREAM"]},
}
