"""The Flask app of the Debezium consumer's tests: the change data capture tests' app
(``cdc_flask_app``) on a SQLite file, its ``CACHEPLUG_CDC`` reading Debezium's change events
from Redis Streams. Made in the test's process (the app's reads) and, from the environment, by
``flask --app debezium_flask_app cacheplug cdc`` (the consumer)."""

from __future__ import annotations

from cdc_flask_app import create_app as create_cdc_app
from flask import Flask

CDC = {"source": "debezium-redis", "stream": "inventory.public.*"}


def create_app(
    database: str | None = None, store: str | None = None, namespace: str | None = None
) -> Flask:
    return create_cdc_app(database, store, namespace, cdc=CDC)
