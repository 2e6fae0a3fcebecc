"""Fixtures for the Flask extension's tests: the shop app on each store (the embedded one and
a real redis-server), with a real SQLite database."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import flask_shop
import pytest
from flask import Flask

_apps = itertools.count()


@pytest.fixture(params=["memory", "redis"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    store = request.getfixturevalue("redis_url") if request.param == "redis" else None
    flask_shop.renders.clear()
    # A namespace per test: an earlier test's second invalidation (AGAIN_AFTER, a timer of
    # the cache it closed) must not reach this test's entries, which carry the same tags.
    app = flask_shop.create_app(
        store, f"sqlite:///{tmp_path / 'shop.sqlite3'}", f"flask-tests-{next(_apps)}"
    )
    yield app
    flask_shop.cache.close(app)
