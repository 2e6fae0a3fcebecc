"""Pages given to an edge cache: ``cache_view(edge=True)`` and a ``PAGES`` rule's ``EDGE`` mark a
shareable page with ``Cache-Control: public, s-maxage`` and its keys, never a page that may
not be shared, is per user or depends on what its load reads; a model's write purges the keys
of its tables, after the store has the invalidation, on a thread of its own (a purge endpoint
that is down costs the write nothing). The purge endpoint is a real local HTTP server
(``purge_endpoints``, tests/conftest.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Final

import pytest
import redis
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from shop.models import Product

from cacheplug.integration import edge_keys, is_edge_key
from cacheplug_django import cache_view, edge_purges

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

WAIT: Final = 10.0


def catalog(request: HttpRequest) -> HttpResponse:
    return HttpResponse(", ".join(Product.objects.values_list("name", flat=True)))


def own_cache_control(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("fine print")
    response["Cache-Control"] = "max-age=30"
    return response


def greet(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"hello {request.user.get_username() or 'guest'}")


def visits(request: HttpRequest) -> HttpResponse:
    request.session["seen"] = True  # per client: never shared
    return HttpResponse("welcome")


urlpatterns = [
    path("catalog/", cache_view(ttl=60, depends_on=[Product], edge=True)(catalog)),
    path("plain/", cache_view(ttl=60, depends_on=[Product])(catalog)),
    path("fine-print/", cache_view(ttl=60, edge=True)(own_cache_control)),
    path("mine/", cache_view(ttl=60, per_user=True, edge=True)(greet)),
    path("auto/", cache_view(ttl=60, depends_on="auto", edge=True)(catalog)),
    path("visits/", cache_view(ttl=60, edge=True)(visits)),
    path("ruled/", catalog),
]


Endpoints = Callable[[int], Any]  # the purge_endpoints fixture (tests/conftest.py)


@pytest.fixture(params=["memory", "redis"])
def edge_site(
    request: pytest.FixtureRequest, settings: Any, purge_endpoints: Endpoints
) -> Iterator[tuple[str, Any]]:
    """The pages above on each store, purging a :class:`PurgeEndpoint`: (store, endpoint)."""
    from cacheplug_django import cache

    endpoint = purge_endpoints(0).start()
    options: dict[str, Any] = {
        "NAMESPACE": "edge-tests",
        "EDGE": {"HEADER": "xkey", "S_MAXAGE": 600, "PURGE_URL": endpoint.url},
        "PAGES": [{"PATH": r"^/ruled/", "TTL": 60, "DEPENDS_ON": ["shop.Product"], "EDGE": True}],
    }
    if request.param == "redis":
        options["STORE"] = request.getfixturevalue("redis_url")
    settings.CACHEPLUG = options
    settings.MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "cacheplug_django.middleware.CachePlugMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    cache.reset()
    yield request.param, endpoint
    cache.reset()


def keys_of(response: Any) -> list[str]:
    return str(response.headers.get("xkey", "")).split()


def settle() -> None:
    purges = edge_purges()
    assert purges is not None
    assert purges.flush(WAIT)


@pytest.mark.parametrize("url", ["/catalog/", "/ruled/"])
def test_a_shared_page_is_marked_for_the_edge_and_its_hits_too(
    edge_site: tuple[str, Any], url: str
) -> None:
    Product.objects.create(name="hammer")
    client = Client()
    first = client.get(url)
    assert first.content == b"hammer"
    assert first["Cache-Control"] == "public, s-maxage=600, stale-while-revalidate=60"
    keys = keys_of(first)
    assert keys
    assert all(is_edge_key(key) for key in keys)
    for _ in range(2):
        hit = client.get(url)
        assert hit["Cache-Control"] == first["Cache-Control"]
        assert keys_of(hit) == keys
    assert "xkey" not in client.get("/plain/").headers  # not asked for


def test_the_pages_own_cache_control_is_kept(edge_site: tuple[str, Any]) -> None:
    response = Client().get("/fine-print/")
    assert (
        response["Cache-Control"] == "public, max-age=30, s-maxage=600, stale-while-revalidate=60"
    )
    assert keys_of(response)


@pytest.mark.parametrize("url", ["/mine/", "/auto/", "/visits/"])
def test_a_page_per_user_discovered_or_per_client_is_never_for_the_edge(
    edge_site: tuple[str, Any], url: str
) -> None:
    client = Client()
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200
        assert "s-maxage" not in response.get("Cache-Control", "")
        assert "public" not in response.get("Cache-Control", "")
        assert not keys_of(response)


def test_a_write_purges_the_keys_its_pages_carry_after_the_store_has_it(
    edge_site: tuple[str, Any],
) -> None:
    store_kind, endpoint = edge_site
    hammer = Product.objects.create(name="hammer")
    client = Client()
    keys = set(keys_of(client.get("/catalog/")))
    settle()
    endpoint.requests.clear()
    from cacheplug_django import cache

    (table_key,) = {
        key for key in cache.version_keys("db:t:shop_product") if key not in cache.version_keys()
    }

    if store_kind == "redis":
        store = redis.Redis.from_url(cache.built._engine._store.url)  # type: ignore[union-attr]
        before = store.get(table_key)
        endpoint.observe = lambda: store.get(table_key)
    hammer.name = "mallet"
    hammer.save()
    settle()
    purged = endpoint.keys("xkey-purge")
    assert purged & keys, "the page's keys were not purged"
    assert edge_keys([table_key])[0] in purged
    assert client.get("/catalog/").content == b"mallet"
    if store_kind == "redis":
        assert endpoint.observed, "the purge never arrived"
        assert all(seen != before for seen in endpoint.observed)  # the store had it first


@pytest.fixture
def edge_down(settings: Any, purge_endpoints: Endpoints) -> Iterator[Any]:
    """The pages above purging an endpoint that is down (until the test starts it)."""
    from cacheplug_django import cache

    endpoint = purge_endpoints(0)
    settings.CACHEPLUG = {
        "NAMESPACE": "edge-down",
        "EDGE": {"HEADER": "xkey", "PURGE_URL": endpoint.url},
    }
    cache.reset()
    yield endpoint
    cache.reset()


def test_an_edge_that_is_down_costs_a_write_nothing_and_is_purged_once_back(
    edge_down: Any, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = edge_down
    assert Client().get("/catalog/").status_code == 200
    with caplog.at_level(logging.WARNING, logger="cacheplug"):
        Product.objects.create(name="saw")  # must not raise, nor wait for the edge
        purges = edge_purges()
        assert purges is not None
        assert not purges.flush(0.5)
        assert purges.failures >= 1
    assert "edge purge failed" in caplog.text
    endpoint.start()
    assert purges.flush(WAIT + 30.0)  # the backoff may have grown meanwhile
    assert endpoint.keys("xkey-purge")


def test_edge_true_without_the_setting_marks_nothing_and_says_so(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from cacheplug_django import _serve, cache

    settings.CACHEPLUG = {"NAMESPACE": "edge-off"}
    cache.reset()
    _serve._warned_edge_off.clear()
    try:
        with caplog.at_level(logging.WARNING, logger="cacheplug_django"):
            response = Client().get("/catalog/")
            Client().get("/catalog/")
        assert "s-maxage" not in response.get("Cache-Control", "")
        assert caplog.text.count("CACHEPLUG['EDGE'] is not set") == 1
        assert edge_purges() is None
    finally:
        cache.reset()


def test_a_bad_edge_setting_or_rule_is_a_system_check_error(settings: Any) -> None:
    from django.core import checks

    settings.CACHEPLUG = {
        "EDGE": {"HEADER": "etag", "S_MAXAGE": -5},
        "PAGES": [{"PATH": "^/x/", "EDGE": "yes"}],
    }
    found = {
        error.id: error.msg for error in checks.run_checks() if error.id.startswith("cacheplug")
    }
    assert "cacheplug.E020" in found
    assert "HEADER must be one of" in found["cacheplug.E020"]
    assert "S_MAXAGE" in found["cacheplug.E020"]
    assert "cacheplug.E012" in found


def test_a_writes_outbox_row_goes_only_once_the_edge_took_its_purge(edge_down: Any) -> None:
    """A process that dies with a purge waiting leaves its transaction's outbox row to a
    relay (of any process), which invalidates and purges again: the row is counted delivered
    only once the edge took the purge."""
    from cacheplug_django import outbox_relays

    Client().get("/catalog/")
    Product.objects.create(name="saw")  # the edge is down: the purge waits
    relay = outbox_relays()["default"]
    assert relay.backlog().rows == 1  # kept: a relay would deliver it again
    purges = edge_purges()
    assert purges is not None
    edge_down.start()
    assert purges.flush(WAIT + 30.0)
    assert relay.backlog().rows == 0  # the edge took it: delivered
