"""The edge tier through a real Varnish (``example_project/edge/cacheplug.vcl``, vmod_xkey) in
front of Django's live server: a repeated request is answered by Varnish without reaching the
app; after ``Product.save()`` the next request through Varnish shows the new name; a page
carrying per-client state is never stored by Varnish; with Varnish down a write still
succeeds and its purge is sent again once Varnish is back."""

from __future__ import annotations

import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path
from shop.models import Product

from cacheplug.testing import VarnishServer
from cacheplug_django import cache_view, edge_purges

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

VCL: Final = Path(__file__).resolve().parents[2] / "example_project" / "edge" / "cacheplug.vcl"
WAIT: Final = 10.0
renders: Counter[str] = Counter()


def catalog(request: HttpRequest) -> HttpResponse:
    renders["catalog"] += 1
    return HttpResponse(", ".join(Product.objects.order_by("name").values_list("name", flat=True)))


def visits(request: HttpRequest) -> HttpResponse:
    renders["visits"] += 1
    request.session["seen"] = True  # this client's state: the page is its own
    return HttpResponse("welcome")


urlpatterns = [
    path("catalog/", cache_view(ttl=300, depends_on=[Product], edge=True)(catalog)),
    path("visits/", cache_view(ttl=300, edge=True)(visits)),
]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def app_server() -> Iterator[int]:
    """The test project served over HTTP by threads of this process (they share the test
    database), as ``runserver`` would; its port."""
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def varnish(app_server: int, settings: Any, redis_url: str) -> Iterator[VarnishServer]:
    from cacheplug_django import cache

    server = VarnishServer(app_server, vcl=VCL)
    settings.CACHEPLUG = {
        "STORE": redis_url,
        "NAMESPACE": "edge-varnish",
        "EDGE": {"HEADER": "xkey", "S_MAXAGE": 600, "PURGE_URL": server.url + "/"},
    }
    settings.MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    cache.reset()
    renders.clear()
    try:  # whatever fails, nothing is left behind
        server.start()
        yield server
    finally:
        cache.reset()
        server.stop()
        server.discard()


def get(server: VarnishServer, url: str, **headers: str) -> tuple[str, dict[str, str]]:
    request = urllib.request.Request(server.url + url, headers=headers)
    with urllib.request.urlopen(request, timeout=WAIT) as answer:
        return answer.read().decode(), {
            name.lower(): value for name, value in answer.headers.items()
        }


def settle() -> None:
    purges = edge_purges()
    assert purges is not None
    assert purges.flush(WAIT)


def test_a_repeated_request_is_answered_by_varnish_without_reaching_the_app(
    varnish: VarnishServer,
) -> None:
    from cacheplug_django import cache

    Product.objects.create(name="hammer")
    body, first = get(varnish, "/catalog/")
    assert body == "hammer"
    assert first["x-cache"] == "MISS"
    stats = cache.stats()
    for _ in range(3):
        body, again = get(varnish, "/catalog/")
        assert body == "hammer"
        assert again["x-cache"] == "HIT"
        assert "age" in again
        assert len(again["x-varnish"].split()) == 2  # this request's id and the stored object's
    assert renders["catalog"] == 1
    after = cache.stats()
    assert (after.hits, after.misses) == (stats.hits, stats.misses)  # the app saw none of them
    assert "xkey" not in again  # the keys stay between the app and Varnish


def test_after_a_save_the_next_request_through_varnish_shows_the_new_name(
    varnish: VarnishServer,
) -> None:
    hammer = Product.objects.create(name="hammer")
    assert get(varnish, "/catalog/")[0] == "hammer"
    assert get(varnish, "/catalog/")[1]["x-cache"] == "HIT"
    settle()
    hammer.name = "mallet"
    hammer.save()
    settle()
    body, headers = get(varnish, "/catalog/")
    assert body == "mallet"
    assert headers["x-cache"] == "MISS"
    assert get(varnish, "/catalog/")[1]["x-cache"] == "HIT"  # held again


def test_a_page_carrying_per_client_state_is_never_stored_by_varnish(
    varnish: VarnishServer,
) -> None:
    for _ in range(3):
        body, headers = get(varnish, "/visits/")
        assert body == "welcome"
        assert headers["x-cache"] == "MISS"
    assert renders["visits"] == 3
    Product.objects.create(name="saw")
    get(varnish, "/catalog/")
    # A client with a cookie is passed to the app (Varnish's built-in rule), never served the
    # stored page.
    _, headers = get(varnish, "/catalog/", Cookie="sessionid=abc")
    assert headers["x-cache"] == "MISS"


def test_with_varnish_down_a_write_succeeds_and_its_purge_is_sent_once_it_is_back(
    varnish: VarnishServer,
) -> None:
    hammer = Product.objects.create(name="hammer")
    assert get(varnish, "/catalog/")[0] == "hammer"
    settle()
    varnish.stop()
    hammer.name = "mallet"
    hammer.save()  # must not raise, nor wait for the edge
    purges = edge_purges()
    assert purges is not None
    assert not purges.flush(1.0)
    assert purges.failures >= 1
    purged_before = purges.purged
    varnish.start()
    assert purges.flush(WAIT + 30.0)  # the backoff may have grown meanwhile
    assert purges.purged > purged_before
    assert get(varnish, "/catalog/")[0] == "mallet"
