from __future__ import annotations

from collections.abc import Iterator

import bakery
import pytest
from flask import Flask
from flask.testing import FlaskClient

from cacheplug import Cache


@pytest.fixture
def app() -> Iterator[Flask]:
    app = bakery.create_app()
    app.config["TESTING"] = True
    with app.app_context():
        yield app
    bakery.cache.close(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def cacheplug_cache(app: Flask) -> Cache:
    """The cache cacheplug's fixtures act on: this app's."""
    return bakery.cache.cache


@pytest.fixture(autouse=True)
def _forget_baking() -> None:
    bakery.baked.clear()
