"""The Flask app of the change data capture tests: the shop's models on a PostgreSQL engine,
``CACHEPLUG_CDC`` on, a cached page of one product. Made in the test's process (the app's
reads) and, from the environment, by ``flask --app cdc_flask_app cacheplug cdc`` (the
consumer)."""

from __future__ import annotations

import os

from flask import Flask
from flask_shop import Product, cache, db

from cacheplug_flask import instance_tag


def create_app(
    database: str | None = None,
    store: str | None = None,
    namespace: str | None = None,
    slot: str | None = None,
    cdc: dict[str, object] | None = None,
) -> Flask:
    """The app; ``cdc``: its ``CACHEPLUG_CDC`` (default: the slot of the environment's)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="flask-cdc-tests-secret",
        SQLALCHEMY_DATABASE_URI=database or os.environ["CDC_TEST_DATABASE"],
        CACHEPLUG_STORE=store or os.environ["CDC_TEST_REDIS"],
        CACHEPLUG_NAMESPACE=namespace or os.environ["CDC_TEST_NAMESPACE"],
        CACHEPLUG_CDC=cdc or {"source": "postgresql", "slot": slot or os.environ["CDC_TEST_SLOT"]},
    )
    db.init_app(app)
    cache.init_app(app, sqlalchemy=db)

    @app.get("/cdc/products/<int:pid>")
    @cache.cached_view(ttl=300, tags=lambda pid: [instance_tag(Product, pid)])
    def product(pid: int) -> str:
        found = db.session.get(Product, pid)
        return "missing" if found is None else f"{found.name}={found.price}"

    return app
