"""The edge tier through a real Varnish (``example_project/edge/cacheplug.vcl``) in front of the
Flask shop served by Werkzeug: a repeated request is answered by Varnish without reaching the
app; after a commit renaming a product the next request through Varnish shows the new name; a
page carrying per-client state is never stored by Varnish; with Varnish down a commit still
succeeds and its purge is sent again once Varnish is back."""

from __future__ import annotations

import contextlib
import itertools
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import flask_shop
import pytest
from flask import Flask, session
from flask_shop import Product, db
from werkzeug.serving import make_server

from cacheplug.testing import VarnishServer

VCL: Final = Path(__file__).resolve().parents[2] / "example_project" / "edge" / "cacheplug.vcl"
WAIT: Final = 10.0
renders: Counter[str] = Counter()
_apps = itertools.count()


def add_edge_views(app: Flask) -> None:
    cache = flask_shop.cache

    def edge_catalog() -> str:
        renders["catalog"] += 1
        return ", ".join(db.session.scalars(db.select(Product.name).order_by(Product.name)))

    def edge_visits() -> str:
        renders["visits"] += 1
        session["seen"] = True  # this client's state: the page is its own
        return "welcome"

    app.get("/edge/catalog")(
        cache.cached_view(ttl=300, depends_on=[Product], edge=True)(edge_catalog)
    )
    app.get("/edge/visits")(cache.cached_view(ttl=300, edge=True)(edge_visits))


@pytest.fixture
def shop(tmp_path: Path, redis_url: str) -> Iterator[tuple[Flask, VarnishServer]]:
    """The shop behind Varnish: Werkzeug serves it on a free port in threads of this process,
    Varnish in front, purged through ``CACHEPLUG_EDGE``."""
    server = make_server("127.0.0.1", 0, Flask(__name__), threaded=True)  # for its port
    varnish = VarnishServer(server.server_port, vcl=VCL)
    with contextlib.ExitStack() as cleanup:  # whatever fails below, nothing is left behind
        cleanup.callback(server.server_close)
        cleanup.callback(varnish.discard)
        app = flask_shop.create_app(
            redis_url,
            f"sqlite:///{tmp_path / 'shop.sqlite3'}",
            f"flask-edge-{next(_apps)}",
            CACHEPLUG_EDGE={"header": "xkey", "s_maxage": 600, "purge_url": varnish.url + "/"},
        )
        cleanup.callback(flask_shop.cache.close, app)
        add_edge_views(app)
        with app.app_context():
            db.create_all()
        server.app = app
        threading.Thread(target=server.serve_forever, daemon=True).start()
        cleanup.callback(server.shutdown)
        varnish.start()
        cleanup.callback(varnish.stop)
        renders.clear()
        yield app, varnish


def get(varnish: VarnishServer, url: str, **headers: str) -> tuple[str, dict[str, str]]:
    request = urllib.request.Request(varnish.url + url, headers=headers)
    with urllib.request.urlopen(request, timeout=WAIT) as answer:
        return answer.read().decode(), {
            name.lower(): value for name, value in answer.headers.items()
        }


def rename(app: Flask, name: str) -> None:
    with app.app_context():
        product = db.session.scalars(db.select(Product)).one()
        product.name = name
        db.session.commit()  # must not raise, whatever the edge does


def add(app: Flask, name: str) -> None:
    with app.app_context():
        db.session.add(Product(name=name))
        db.session.commit()


def settled(app: Flask, timeout: float = WAIT) -> bool:
    with app.app_context():
        purges = flask_shop.cache.edge_purges()
    assert purges is not None
    return purges.flush(timeout)


def test_a_repeated_request_is_answered_by_varnish_without_reaching_the_app(
    shop: tuple[Flask, VarnishServer],
) -> None:
    app, varnish = shop
    add(app, "hammer")
    body, first = get(varnish, "/edge/catalog")
    assert body == "hammer"
    assert first["x-cache"] == "MISS"
    for _ in range(3):
        body, again = get(varnish, "/edge/catalog")
        assert body == "hammer"
        assert again["x-cache"] == "HIT"
        assert "age" in again
    assert renders["catalog"] == 1
    counters = varnish.counters()
    assert counters["MAIN.cache_hit"] >= 3


def test_after_a_commit_the_next_request_through_varnish_shows_the_new_name(
    shop: tuple[Flask, VarnishServer],
) -> None:
    app, varnish = shop
    add(app, "hammer")
    get(varnish, "/edge/catalog")
    assert get(varnish, "/edge/catalog")[1]["x-cache"] == "HIT"
    assert settled(app)
    rename(app, "mallet")
    assert settled(app)
    body, headers = get(varnish, "/edge/catalog")
    assert body == "mallet"
    assert headers["x-cache"] == "MISS"


def test_a_page_carrying_per_client_state_is_never_stored_by_varnish(
    shop: tuple[Flask, VarnishServer],
) -> None:
    _, varnish = shop
    for _ in range(3):
        body, headers = get(varnish, "/edge/visits")
        assert body == "welcome"
        assert headers["x-cache"] == "MISS"
    assert renders["visits"] == 3


def test_with_varnish_down_a_commit_succeeds_and_its_purge_is_sent_once_it_is_back(
    shop: tuple[Flask, VarnishServer],
) -> None:
    app, varnish = shop
    add(app, "hammer")
    assert get(varnish, "/edge/catalog")[0] == "hammer"
    assert settled(app)
    varnish.stop()
    rename(app, "mallet")
    assert not settled(app, 1.0)
    with app.app_context():
        purges = flask_shop.cache.edge_purges()
    assert purges is not None
    assert purges.failures >= 1
    varnish.start()
    assert settled(app, WAIT + 30.0)
    assert get(varnish, "/edge/catalog")[0] == "mallet"
