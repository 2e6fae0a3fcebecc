"""The plain hit of a cached page: an anonymous GET seen before is answered from L1 or one
store read without reading the request in full. It must answer exactly what the general path
would: tested by counting that the general path was skipped, and that every rule it applies
still holds (writes, languages, hosts, HEAD, callable tags, uncommitted writes, counters)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import translation
from shop import page_views
from shop.models import Product

from cacheplug_django import _aserve, _serve
from cacheplug_django import cache as django_cache
from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["memory", "redis", "redis+l1"])
def cache(request: pytest.FixtureRequest, settings: Any) -> Iterator[DjangoCache]:
    options: dict[str, Any] = {"NAMESPACE": "tests"}
    if request.param != "memory":
        options["STORE"] = request.getfixturevalue("redis_url")
    if request.param.endswith("l1"):
        options["L1"] = {"MAX_ENTRIES": 100}
    settings.CACHEPLUG = options
    page_views.renders.clear()
    for view in vars(page_views).values():
        policy = getattr(view, "page_policy", None)
        if policy is not None:
            policy.forget()  # as a fresh process: no Vary learnt
    yield django_cache
    django_cache.reset()


@pytest.fixture
def general(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that took the general path (read in full)."""
    seen: list[str] = []
    read = _serve.page_request_of

    def counted(request: Any, per_user: bool) -> Any:
        seen.append(request.path)
        return read(request, per_user)

    monkeypatch.setattr(_serve, "page_request_of", counted)
    monkeypatch.setattr(_aserve, "page_request_of", counted)  # the async path's
    return seen


def get(url: str, method: str = "get", **headers: str) -> tuple[int, bytes, Any]:
    response = getattr(Client(), method)(url, headers=headers)
    return response.status_code, response.content, response


def test_a_page_seen_before_is_served_without_the_general_path(
    cache: DjangoCache, general: list[str]
) -> None:
    Product.objects.create(name="hammer", price=10)
    for _ in range(3):
        assert get("/pages/catalog/")[:2] == (200, b"hammer=10")
    assert page_views.renders["catalog"] == 1
    assert general == ["/pages/catalog/"]  # the first request only
    stats = cache.core.stats()
    assert (stats.misses, stats.hits) == (1, 2)  # nothing counted twice


def test_writes_reach_pages_served_by_the_plain_path(
    cache: DjangoCache, general: list[str]
) -> None:
    hammer = Product.objects.create(name="hammer", price=10)
    get("/pages/catalog/")
    get("/pages/catalog/")
    Product.objects.filter(pk=hammer.pk).update(price=11)
    assert get("/pages/catalog/")[:2] == (200, b"hammer=11")
    assert get("/pages/catalog/")[:2] == (200, b"hammer=11")
    assert page_views.renders["catalog"] == 2
    assert general == ["/pages/catalog/", "/pages/catalog/"]  # the miss after the write


def test_callable_tags_are_asked_on_every_request(cache: DjangoCache) -> None:
    hammer = Product.objects.create(name="hammer", price=10)
    saw = Product.objects.create(name="saw", price=20)
    for _ in range(2):
        assert get(f"/pages/products/{hammer.pk}/")[1] == b"hammer=10"
        assert get(f"/pages/products/{saw.pk}/")[1] == b"saw=20"
    Product.objects.filter(pk=saw.pk).update(price=21)
    assert get(f"/pages/products/{hammer.pk}/")[1] == b"hammer=10"
    assert get(f"/pages/products/{saw.pk}/")[1] == b"saw=21"
    assert page_views.renders[f"product:{hammer.pk}"] == 1


def test_each_language_has_its_own_page(cache: DjangoCache, general: list[str]) -> None:
    assert get("/pages/localized/")[1] == b"lang=en-us"
    with translation.override("fr"):
        assert get("/pages/localized/")[1] == b"lang=fr"
        assert get("/pages/localized/")[1] == b"lang=fr"
    assert get("/pages/localized/")[1] == b"lang=en-us"
    assert page_views.renders["localized"] == 2
    assert len(general) == 2


def test_a_host_no_longer_allowed_is_refused(cache: DjangoCache, settings: Any) -> None:
    get("/pages/catalog/")
    assert get("/pages/catalog/")[0] == 200
    settings.ALLOWED_HOSTS = ["example.com"]
    assert get("/pages/catalog/")[0] == 400  # DisallowedHost, as on the general path
    assert get("/pages/catalog/", Host="evil.example")[0] == 400


def test_head_has_no_body_and_the_length_of_the_get(cache: DjangoCache) -> None:
    Product.objects.create(name="hammer", price=10)
    _, body, response = get("/pages/catalog/")
    get("/pages/catalog/")
    head_status, head_body, head = get("/pages/catalog/", "head")
    assert (head_status, head_body) == (200, b"")
    assert head["Content-Length"] == response["Content-Length"] == str(len(body))
    assert head["ETag"] == response["ETag"]


def test_a_transaction_sees_its_own_uncommitted_write(
    cache: DjangoCache, general: list[str]
) -> None:
    Product.objects.create(name="hammer", price=10)
    get("/pages/catalog/")
    get("/pages/catalog/")
    with transaction.atomic():
        Product.objects.create(name="saw", price=20)
        assert get("/pages/catalog/")[1] == b"hammer=10,saw=20"
    assert get("/pages/catalog/")[1] == b"hammer=10,saw=20"
    assert general.count("/pages/catalog/") >= 2


def test_a_page_that_varies_takes_the_general_path(cache: DjangoCache, general: list[str]) -> None:
    for language in ("de", "fr", "de", "fr"):
        assert get("/pages/by-language/", **{"Accept-Language": language})[1] == (
            f"lang={language}".encode()
        )
    # The first page was stored before its Vary was known: "de" renders again once.
    assert page_views.renders["by_language"] == 3
    assert len(general) == 4
    stats = cache.core.stats()
    assert (stats.misses, stats.hits) == (3, 1)  # what the short path looked at: not counted


def test_conditional_and_cookie_requests_take_the_general_path(
    cache: DjangoCache, general: list[str]
) -> None:
    response = get("/pages/catalog/")[2]
    assert get("/pages/catalog/", **{"If-None-Match": response["ETag"]})[0] == 304
    assert get("/pages/catalog/", Cookie="theme=dark")[0] == 200
    assert get("/pages/catalog/", Authorization="Bearer x")[0] == 200
    assert len(general) == 4


def test_an_async_view_is_answered_from_l1_only(
    cache: DjangoCache, general: list[str], request: pytest.FixtureRequest
) -> None:
    Product.objects.create(name="hammer", price=10)
    for _ in range(3):
        assert get("/pages/async-catalog/")[:2] == (200, b"hammer=10")
    assert page_views.renders["async_catalog"] == 1
    # An event loop never waits for the store here: without L1, the general (async) path;
    # with it, the general path once more (its store read keeps the page in L1).
    l1 = request.node.callspec.params["cache"].endswith("l1")
    assert len(general) == (2 if l1 else 3)


def test_page_rules_of_the_middleware_take_the_short_path_too(
    cache: DjangoCache, general: list[str], settings: Any
) -> None:
    from cacheplug_django import middleware

    paths: list[str] = []
    serve = middleware.serve

    def counted(request: Any, *args: Any, **kwargs: Any) -> Any:
        paths.append(request.path)
        return serve(request, *args, **kwargs)

    settings.CACHEPLUG = {
        **settings.CACHEPLUG,
        "PAGES": [{"PATH": r"^/plain/catalog/", "TTL": 60, "DEPENDS_ON": ["shop.Product"]}],
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(middleware, "serve", counted)
        hammer = Product.objects.create(name="hammer", price=1)
        for _ in range(3):
            assert get("/plain/catalog/")[1] == b"hammer=1"
        Product.objects.filter(pk=hammer.pk).update(price=2)
        assert get("/plain/catalog/")[1] == b"hammer=2"
        assert get("/plain/catalog/")[1] == b"hammer=2"
    assert page_views.renders["plain_catalog"] == 2
    assert paths == ["/plain/catalog/", "/plain/catalog/"]  # the two misses only


def test_a_per_user_async_view_keys_a_logged_in_client_by_its_user(cache: DjangoCache) -> None:
    from django.contrib.auth.models import User

    clients = {}
    for name in ("alice", "bob"):
        clients[name] = Client()
        clients[name].force_login(User.objects.create_user(name))
    for name in ("alice", "bob", "alice", "bob"):
        response = clients[name].get("/pages/async-dashboard/")
        assert response.status_code == 200
    assert page_views.renders["async_dashboard"] == 2  # one page each, then hits
