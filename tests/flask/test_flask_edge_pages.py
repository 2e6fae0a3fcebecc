"""Pages given to an edge cache in Flask: ``cached_view(edge=True)`` marks a shareable page with
``Cache-Control: public, s-maxage`` and its keys (never a per-user page, one that depends on
what its load reads, or one that touched the session); a commit purges the keys of the tables
it wrote, after the store has the invalidation, on a thread of its own. The purge endpoint is
a real local HTTP server."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import flask_shop
import pytest
from flask import Flask, session
from flask_shop import Product, db

from cacheplug import ConfigurationError
from cacheplug.integration import edge_keys, is_edge_key

WAIT: Final = 10.0
_apps = itertools.count()


Endpoints = Callable[[int], Any]  # the purge_endpoints fixture (tests/conftest.py)


@pytest.fixture
def purge_endpoint(purge_endpoints: Endpoints) -> Any:
    return purge_endpoints(0).start()


def add_edge_views(app: Flask) -> None:
    cache = flask_shop.cache

    def names() -> str:
        return ", ".join(db.session.scalars(db.select(Product.name).order_by(Product.name)))

    def discovered() -> str:
        return names()

    def mine() -> str:
        return "mine"

    def visits() -> str:
        session["seen"] = True
        return "welcome"

    app.get("/edge/catalog")(cache.cached_view(ttl=300, depends_on=[Product], edge=True)(names))
    app.get("/edge/auto")(cache.cached_view(ttl=300, depends_on="auto", edge=True)(discovered))
    app.get("/edge/mine")(cache.cached_view(ttl=300, per_user=lambda: "someone", edge=True)(mine))
    app.get("/edge/visits")(cache.cached_view(ttl=300, edge=True)(visits))


@pytest.fixture(params=["memory", "redis"])
def edge_app(
    request: pytest.FixtureRequest, tmp_path: Path, purge_endpoint: Any
) -> Iterator[Flask]:
    store = request.getfixturevalue("redis_url") if request.param == "redis" else None
    app = flask_shop.create_app(
        store,
        f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        f"flask-edge-{next(_apps)}",
        CACHEPLUG_EDGE={"purge_url": purge_endpoint.url, "purge": "http", "s_maxage": 900},
    )
    add_edge_views(app)
    with app.app_context():
        db.create_all()
    yield app
    flask_shop.cache.close(app)


def test_a_shared_page_is_marked_for_the_edge_and_its_hits_too(edge_app: Flask) -> None:
    with edge_app.app_context():
        db.session.add(Product(name="hammer"))
        db.session.commit()
    client = edge_app.test_client()
    first = client.get("/edge/catalog")
    assert first.get_data(as_text=True) == "hammer"
    assert first.headers["Cache-Control"] == "public, s-maxage=900, stale-while-revalidate=60"
    keys = first.headers["Surrogate-Key"].split()
    assert keys
    assert all(is_edge_key(key) for key in keys)
    for _ in range(2):
        hit = client.get("/edge/catalog")
        assert hit.headers["Surrogate-Key"].split() == keys
        assert hit.headers["Cache-Control"] == first.headers["Cache-Control"]
    assert "Surrogate-Key" not in client.get("/catalog").headers  # not asked for


@pytest.mark.parametrize("url", ["/edge/auto", "/edge/mine", "/edge/visits"])
def test_a_page_per_user_discovered_or_per_client_is_never_for_the_edge(
    edge_app: Flask, url: str
) -> None:
    client = edge_app.test_client()
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200
        assert "s-maxage" not in response.headers.get("Cache-Control", "")
        assert "Surrogate-Key" not in response.headers


def test_a_commit_purges_the_keys_its_pages_carry(edge_app: Flask, purge_endpoint: Any) -> None:
    client = edge_app.test_client()
    with edge_app.app_context():
        db.session.add(Product(name="hammer"))
        db.session.commit()
        keys = set(client.get("/edge/catalog").headers["Surrogate-Key"].split())
        purges = flask_shop.cache.edge_purges()
        assert purges is not None
        assert purges.flush(WAIT)
        purge_endpoint.requests.clear()
        product = db.session.scalars(db.select(Product)).one()
        product.name = "mallet"
        db.session.commit()
        assert purges.flush(WAIT)
        table_keys = set(flask_shop.cache.version_keys("db:t:product")) - set(
            flask_shop.cache.version_keys()
        )
    purged = purge_endpoint.keys("Surrogate-Key")
    assert purged & keys
    assert set(edge_keys(table_keys)) <= purged
    assert client.get("/edge/catalog").get_data(as_text=True) == "mallet"


def test_edge_true_without_the_setting_marks_nothing_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from cacheplug_flask import views

    views._warned_edge_off.clear()
    app = flask_shop.create_app(None, f"sqlite:///{tmp_path / 'off.sqlite3'}", "flask-edge-off")
    add_edge_views(app)
    with app.app_context():
        db.create_all()
    try:
        with caplog.at_level(logging.WARNING, logger="cacheplug_flask"):
            response = app.test_client().get("/edge/catalog")
            app.test_client().get("/edge/catalog")
        assert "s-maxage" not in response.headers.get("Cache-Control", "")
        assert caplog.text.count("CACHEPLUG_EDGE is not set") == 1
        with app.app_context():
            assert flask_shop.cache.edge_purges() is None
    finally:
        flask_shop.cache.close(app)


def test_a_bad_edge_setting_stops_init_app(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as raised:
        flask_shop.create_app(
            None,
            f"sqlite:///{tmp_path / 'bad.sqlite3'}",
            "flask-edge-bad",
            CACHEPLUG_EDGE={"header": "etag", "s_maxage": "long"},
        )
    assert "E020" in str(raised.value)
    assert "HEADER must be one of" in str(raised.value)
    with pytest.raises(ConfigurationError, match="edge"):
        flask_shop.cache.cached_view(ttl=60, edge="yes")  # type: ignore[typeddict-item]


def test_a_commits_outbox_row_goes_only_once_the_edge_took_its_purge(
    tmp_path: Path, purge_endpoints: Endpoints
) -> None:
    """As in Django: the transaction's outbox row is counted delivered only once the edge took
    its purge, so that a process dying with the purge waiting leaves it to a relay."""
    from sqlalchemy import MetaData

    from cacheplug_flask.outbox import outbox_table

    endpoint = purge_endpoints(0)  # not started: the edge is down
    app = flask_shop.create_app(
        None,
        f"sqlite:///{tmp_path / 'outbox.sqlite3'}",
        "flask-edge-outbox",
        CACHEPLUG_EDGE={"purge_url": endpoint.url, "purge": "http"},
    )
    add_edge_views(app)
    with app.app_context():
        db.create_all()
        outbox_table(MetaData()).create(db.engine)
    try:
        with app.app_context():
            db.session.add(Product(name="saw"))  # the edge is down: the purge waits
            db.session.commit()
            (relay,) = flask_shop.cache.outbox_relays().values()
            assert relay.backlog().rows == 1  # kept: a relay would deliver it again
            purges = flask_shop.cache.edge_purges()
        assert purges is not None
        endpoint.start()
        assert purges.flush(WAIT + 30.0)
        with app.app_context():
            assert relay.backlog().rows == 0  # the edge took it: delivered
    finally:
        flask_shop.cache.close(app)
