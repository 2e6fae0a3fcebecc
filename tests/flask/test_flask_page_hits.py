"""The plain hit of a cached page: an anonymous GET seen before is answered from L1 or one
store read without reading the request in full. It must answer exactly what the general path
would: tested by counting that the general path was skipped, and that every rule it applies
still holds (writes, hosts, prefixes, HEAD, callable tags, uncommitted writes, counters)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask_shop
import pytest
from flask import Flask
from flask_shop import Product, db, renders
from sqlalchemy import update

from cacheplug_flask import views

_apps = itertools.count()


@pytest.fixture(params=["memory", "redis", "redis+l1", "redis+unsigned"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    store = None if request.param == "memory" else request.getfixturevalue("redis_url")
    config: dict[str, Any] = {}
    if request.param.endswith("l1"):
        config["CACHEPLUG_L1"] = {"max_entries": 100}
    if request.param.endswith("unsigned"):
        config["SECRET_KEY"] = None  # a data-only codec: records come back as lists
    flask_shop.renders.clear()
    app = flask_shop.create_app(
        store, f"sqlite:///{tmp_path / 'shop.sqlite3'}", f"flask-hits-{next(_apps)}", **config
    )
    with app.app_context():
        db.session.add_all([Product(name="hammer", price=10), Product(name="saw", price=20)])
        db.session.commit()
    yield app
    flask_shop.cache.close(app)


@pytest.fixture
def general(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The requests that took the general path (read in full)."""
    seen: list[str] = []
    read = views.page_request_of

    def counted(*args: Any) -> Any:
        found = read(*args)
        seen.append(found.path)
        return found

    monkeypatch.setattr(views, "page_request_of", counted)
    return seen


def get(app: Flask, url: str, method: str = "get", **options: Any) -> Any:
    return getattr(app.test_client(), method)(url, **options)


def test_a_page_seen_before_is_served_without_the_general_path(
    app: Flask, general: list[str]
) -> None:
    for _ in range(3):
        assert get(app, "/catalog").get_data() == b"hammer=10[]\nsaw=20[]"
    assert renders["catalog"] == 1
    assert general == ["/catalog"]
    with app.app_context():
        stats = flask_shop.cache.stats()
    assert (stats.misses, stats.hits) == (1, 2)  # nothing counted twice


def test_writes_reach_pages_served_by_the_plain_path(app: Flask, general: list[str]) -> None:
    get(app, "/catalog")
    get(app, "/catalog")
    with app.app_context():
        db.session.execute(update(Product).where(Product.name == "saw").values(price=21))
        db.session.commit()
    assert get(app, "/catalog").get_data() == b"hammer=10[]\nsaw=21[]"
    assert get(app, "/catalog").get_data() == b"hammer=10[]\nsaw=21[]"
    assert renders["catalog"] == 2
    assert general == ["/catalog", "/catalog"]


def test_callable_tags_are_asked_on_every_request(app: Flask) -> None:
    for _ in range(2):
        assert get(app, "/products/1").get_data() == b"hammer=10[]"
        assert get(app, "/products/2").get_data() == b"saw=20[]"
    with app.app_context():
        saw = db.session.get(Product, 2)
        assert saw is not None
        saw.price = 21  # a write of that row only
        db.session.commit()
    assert get(app, "/products/1").get_data() == b"hammer=10[]"
    assert get(app, "/products/2").get_data() == b"saw=21[]"
    assert (renders["product:1"], renders["product:2"]) == (1, 2)


def test_hosts_schemes_and_prefixes_have_their_own_pages(app: Flask) -> None:
    places = [
        {"base_url": "http://localhost/"},
        {"base_url": "http://other.example/"},
        {"environ_overrides": {"wsgi.url_scheme": "https"}},  # as behind ProxyFix: port 80
        {"environ_overrides": {"SCRIPT_NAME": "/shop"}},
    ]
    for options in [*places, *places]:
        assert get(app, "/catalog", **options).status_code == 200
    assert renders["catalog"] == len(places)


def test_head_has_no_body_and_the_length_of_the_get(app: Flask) -> None:
    page = get(app, "/catalog")
    get(app, "/catalog")
    head = get(app, "/catalog", "head")
    assert (head.status_code, head.get_data()) == (200, b"")
    assert head.headers["Content-Length"] == str(len(page.get_data()))
    assert head.headers["ETag"] == page.headers["ETag"]


def test_the_writer_sees_its_own_uncommitted_write(app: Flask) -> None:
    get(app, "/catalog")
    get(app, "/catalog")
    with app.test_request_context():
        db.session.execute(update(Product).where(Product.name == "saw").values(price=22))
        with app.test_client() as client:  # the same thread, the transaction still open
            assert client.get("/catalog").get_data() == b"hammer=10[]\nsaw=22[]"
        db.session.rollback()
    assert get(app, "/catalog").get_data() == b"hammer=10[]\nsaw=20[]"


def test_conditional_cookie_and_authorization_requests_take_the_general_path(
    app: Flask, general: list[str]
) -> None:
    page = get(app, "/catalog")
    assert get(app, "/catalog", headers={"If-None-Match": page.headers["ETag"]}).status_code == 304
    with_cookie = app.test_client()
    with_cookie.set_cookie("theme", "dark")
    assert with_cookie.get("/catalog").status_code == 200
    assert get(app, "/catalog", headers={"Authorization": "Bearer x"}).status_code == 200
    assert len(general) == 4
