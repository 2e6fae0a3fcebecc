"""The dashboard blueprint: refused when the app's permission callable says no (the page and
its JSON), the same figures as the Django admin page (cacheplug.integration) otherwise."""

from __future__ import annotations

from pathlib import Path

import flask_shop
from flask import Flask, request
from flask_shop import Product, cache, db
from sqlalchemy import MetaData, create_engine, insert

from cacheplug_flask.dashboard import dashboard_blueprint
from cacheplug_flask.outbox import outbox_table

WRITTEN_AT = 1_000_000.0  # when an outbox row says it was written (seconds since the epoch)


def mount(app: Flask) -> None:
    allowed = lambda: request.headers.get("X-Staff") == "yes"  # noqa: E731
    app.register_blueprint(dashboard_blueprint(cache, allowed=allowed), url_prefix="/cacheplug")


def test_refused_when_the_permission_callable_says_no(app: Flask) -> None:
    mount(app)
    client = app.test_client()
    assert client.get("/cacheplug/").status_code == 403
    assert client.get("/cacheplug/data.json").status_code == 403


def test_the_figures_and_the_page(app: Flask) -> None:
    mount(app)
    with app.app_context():
        db.session.add(Product(name="hammer", price=10))
        db.session.commit()
        for _ in range(3):
            cache.get_or_load("answer", lambda: 42, depends_on=[Product])
    client = app.test_client()
    data = client.get("/cacheplug/data.json", headers={"X-Staff": "yes"}).get_json()
    figures = data["figures"]
    assert figures["loads"] == 1
    assert figures["hits"] == 2
    assert sum(figures["hits_by_tier"].values()) == 2
    assert figures["load_times"]["count"] == 1
    assert figures["breaker"] == "closed"
    assert figures["pending_invalidations"] == []
    assert 'id="cacheplug-summary"' in data["html"]
    page = client.get("/cacheplug/", headers={"X-Staff": "yes"})
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    body = page.get_data(as_text=True)
    assert 'data-json-url="/cacheplug/data.json"' in body
    assert "<td>66.7%</td>" in body


def test_the_configured_change_feeds_lag_is_shown(app: Flask) -> None:
    mount(app)
    client = app.test_client()
    figures = client.get("/cacheplug/data.json", headers={"X-Staff": "yes"}).get_json()
    assert figures["figures"]["change_feed_lag"] is None  # CDC off: nothing to show
    app.config["CACHEPLUG_CDC"] = {"source": "debezium-redis", "stream": "inventory.public.x"}
    response = client.get("/cacheplug/data.json", headers={"X-Staff": "yes"})
    assert response.status_code == 200
    lag = response.get_json()["figures"]["change_feed_lag"]
    if app.config["CACHEPLUG_STORE"] is None:
        assert lag is None  # no Redis to read the stream from: the rest is still shown
    else:
        assert "inventory.public.x" in lag["text"]


def test_the_outbox_backlog_of_rows_left_in_the_table(tmp_path: Path, redis_url: str) -> None:
    database = f"sqlite:///{tmp_path / 'outbox.sqlite3'}"
    app = flask_shop.create_app(redis_url, database, "flask-dashboard-outbox")
    try:
        mount(app)
        with app.app_context():
            assert cache.outbox_relays() == {}  # no write yet: no relay
            db.create_all()
            outbox_table(MetaData()).create(db.engine)
            db.session.add(Product(name="hammer", price=10))
            db.session.commit()  # its row, delivered by the writer: no backlog
            relays = cache.outbox_relays()
            [(name, relay)] = relays.items()
            assert name == database
            relays.clear()  # a copy
            assert cache.outbox_relays() == {name: relay}
            # The relay's thread would deliver the rows below: stopped, it only reports.
            relay.stop()
        writer = create_engine(database)  # as a process that died or could not reach Redis
        with writer.begin() as connection:
            for row_id, written_at in (("dead", WRITTEN_AT), ("cut-off", WRITTEN_AT + 60)):
                connection.execute(
                    insert(outbox_table(MetaData())).values(
                        id=row_id, tags='["db:t:product"]', created_at=written_at
                    )
                )
        writer.dispose()
        found = app.test_client().get("/cacheplug/data.json", headers={"X-Staff": "yes"})
        backlog = found.get_json()["figures"]["outbox"][database]
        assert backlog["rows"] == 2
        assert backlog["oldest_age_seconds"] >= 1_700_000_000 - WRITTEN_AT  # written in 1970
        assert backlog["relayed"] == 0
        assert f"{database}: 2 rows, oldest " in found.get_json()["html"]
    finally:
        cache.close(app)


def test_the_outbox_backlog_is_not_configured_with_the_outbox_off(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'outbox-off.sqlite3'}"
    app = flask_shop.create_app(None, database, "flask-dashboard-off", CACHEPLUG_OUTBOX=False)
    try:
        mount(app)
        with app.app_context():
            db.create_all()
            outbox_table(MetaData()).create(db.engine)
            db.session.add(Product(name="hammer", price=10))
            db.session.commit()
            assert cache.outbox_relays() == {}
        found = app.test_client().get("/cacheplug/data.json", headers={"X-Staff": "yes"})
        assert found.get_json()["figures"]["outbox"] is None
        assert (
            '<th scope="row">outbox backlog</th><td>not configured</td>' in found.get_json()["html"]
        )
    finally:
        cache.close(app)
