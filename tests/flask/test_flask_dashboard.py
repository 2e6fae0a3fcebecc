"""The dashboard blueprint: refused when the app's permission callable says no (the page and
its JSON), the same figures as the Django admin page (cacheplug.integration) otherwise."""

from __future__ import annotations

from flask import Flask, request
from flask_shop import Product, cache, db

from cacheplug_flask.dashboard import dashboard_blueprint


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
