"""@cache_view shares a response only when everything about it allows it: tested rule by
rule, through the Django test client, on the embedded store and on Redis."""

from __future__ import annotations

import re
import threading

import pytest
from django.contrib.auth.models import User
from django.test import Client
from shop import page_views
from shop.models import Product

from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_process(cache: DjangoCache) -> None:
    """Each test starts as a fresh process would: nothing rendered, nothing learnt."""
    page_views.renders.clear()
    forget_vary()


def forget_vary() -> None:
    for view in vars(page_views).values():
        policy = getattr(view, "page_policy", None)
        if policy is not None:
            policy.forget()


def get(client: Client, url: str, **headers: str) -> tuple[int, str]:
    response = client.get(url, headers=headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, body.decode()


def renders(name: str) -> int:
    return page_views.renders[name]


def test_a_page_is_rendered_once_and_then_served(client: Client) -> None:
    Product.objects.create(name="hammer", price=10)
    assert get(client, "/pages/catalog/") == (200, "hammer=10")
    assert get(Client(), "/pages/catalog/") == (200, "hammer=10")
    assert renders("catalog") == 1


def test_writes_reach_cached_pages(client: Client) -> None:
    hammer = Product.objects.create(name="hammer", price=10)
    saw = Product.objects.create(name="saw", price=20)
    for url in ("/pages/catalog/", f"/pages/products/{hammer.pk}/", f"/pages/products/{saw.pk}/"):
        get(client, url)
    Product.objects.filter(pk=hammer.pk).update(price=11)
    assert get(client, "/pages/catalog/") == (200, "hammer=11,saw=20")
    assert get(client, f"/pages/products/{hammer.pk}/") == (200, "hammer=11")
    assert get(client, f"/pages/products/{saw.pk}/") == (200, "saw=20")
    assert renders(f"product:{saw.pk}") == 1  # another row's page kept its entry


def test_a_logged_in_users_page_is_never_served_to_anybody_else() -> None:
    User.objects.create_user("alice", password="pw-alice")
    User.objects.create_user("bob", password="pw-bob")
    alice, bob, anonymous = Client(), Client(), Client()
    assert alice.login(username="alice", password="pw-alice")
    assert bob.login(username="bob", password="pw-bob")
    assert get(alice, "/pages/greeting/") == (200, "hello alice")
    assert get(bob, "/pages/greeting/") == (200, "hello bob")
    assert get(anonymous, "/pages/greeting/") == (200, "hello guest")
    assert get(anonymous, "/pages/greeting/") == (200, "hello guest")
    assert get(alice, "/pages/greeting/") == (200, "hello alice")
    # The greeting looks the user up: no page of it is shared, not even the anonymous one
    # (a page is stored only if rendering read nothing of the client).
    assert renders("greeting") == 5


def test_per_user_pages_are_keyed_by_the_user() -> None:
    User.objects.create_user("alice", password="pw-alice")
    User.objects.create_user("bob", password="pw-bob")
    alice, bob = Client(), Client()
    assert alice.login(username="alice", password="pw-alice")
    assert bob.login(username="bob", password="pw-bob")
    for _ in range(2):
        assert get(alice, "/pages/dashboard/") == (200, "dashboard of alice")
        assert get(bob, "/pages/dashboard/") == (200, "dashboard of bob")
        assert get(Client(), "/pages/dashboard/") == (200, "dashboard of guest")
    assert renders("dashboard") == 3


def test_the_query_string_is_canonical(client: Client) -> None:
    assert get(client, "/pages/echo/?b=2&a=1") == (200, "a=1&b=2")
    assert get(client, "/pages/echo/?a=1&b=2") == (200, "a=1&b=2")
    assert get(client, "/pages/echo/?a=1&b=3") == (200, "a=1&b=3")
    assert get(client, "/pages/echo/?a=1&b=2&") == (200, "a=1&b=2")
    assert renders("echo") == 2


def test_hosts_do_not_share_pages(settings: object) -> None:
    settings.ALLOWED_HOSTS = ["a.example", "b.example"]  # type: ignore[attr-defined]
    assert get(Client(HTTP_HOST="a.example"), "/pages/echo/?x=1")[0] == 200
    assert get(Client(HTTP_HOST="b.example"), "/pages/echo/?x=1")[0] == 200
    assert renders("echo") == 2
    assert Client(HTTP_HOST="evil.example").get("/pages/echo/?x=1").status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "/pages/sets-cookie/",
        "/pages/private/",
        "/pages/private/?cc=no-store",
        "/pages/private/?cc=No-Cache",
        "/pages/private/?cc=public,%20NO-CACHE=%22Set-Cookie%22",
        "/pages/vary-star/",
        "/pages/with-form/",
        "/pages/stream/",
        "/pages/status/404/",
        "/pages/status/500/",
        "/pages/status/302/",
    ],
)
def test_responses_that_may_not_be_shared_are_rendered_every_time(client: Client, url: str) -> None:
    first = get(client, url)
    second = get(Client(), url)
    assert first[0] == second[0]
    assert sum(page_views.renders.values()) == 2


def test_statuses_can_be_allowed(client: Client) -> None:
    assert get(client, "/pages/gone/") == (404, "gone")
    assert get(client, "/pages/gone/") == (404, "gone")
    assert renders("status_404_allowed") == 1


def test_only_get_and_head_are_cached(client: Client) -> None:
    assert client.post("/pages/form/").content == b"POST #1"
    assert client.post("/pages/form/").content == b"POST #2"
    assert client.get("/pages/form/").content == b"GET #3"
    head = client.head("/pages/form/")
    assert head.status_code == 200
    assert head.content == b""
    assert renders("form_post") == 3  # the HEAD was answered from the GET's entry


def test_vary_keys_by_the_named_request_headers(client: Client) -> None:
    assert get(client, "/pages/by-language/", Accept_Language="fr") == (200, "lang=fr")
    assert get(client, "/pages/by-language/", Accept_Language="de") == (200, "lang=de")
    assert get(client, "/pages/by-language/", Accept_Language="fr") == (200, "lang=fr")
    assert get(client, "/pages/by-language/", Accept_Language="de") == (200, "lang=de")
    assert get(client, "/pages/by-language/") == (200, "lang=-")
    # fr rendered twice: the first response taught this process what the URL varies on.
    assert renders("by_language") == 4


def test_another_process_learns_the_vary_headers_from_the_store(
    client: Client, cache: DjangoCache
) -> None:
    assert get(client, "/pages/by-language/", Accept_Language="fr") == (200, "lang=fr")
    assert get(client, "/pages/by-language/", Accept_Language="fr") == (200, "lang=fr")
    forget_vary()  # as a fresh process would know nothing
    assert get(client, "/pages/by-language/", Accept_Language="de") == (200, "lang=de")
    assert get(client, "/pages/by-language/", Accept_Language="fr") == (200, "lang=fr")
    assert renders("by_language") == 3


def test_etag_and_conditional_requests(client: Client) -> None:
    first = client.get("/pages/echo/?q=1")
    etag = first["ETag"]
    assert etag.startswith('"')
    again = client.get("/pages/echo/?q=1", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    other = client.get("/pages/echo/?q=1", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.content == b"q=1"


def test_concurrent_misses_render_once() -> None:
    results: list[tuple[int, str]] = []
    barrier = threading.Barrier(8)

    def request() -> None:
        barrier.wait()
        results.append(get(Client(), "/pages/slow/"))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(200, "slow page")] * 8
    assert renders("slow") == 1


def test_async_views_are_cached_and_invalidated() -> None:
    import asyncio

    from django.test import AsyncClient

    Product.objects.create(name="hammer", price=10)

    async def fetch() -> str:
        response = await AsyncClient().get("/pages/async-catalog/")
        assert response.status_code == 200
        return response.content.decode()

    assert asyncio.run(fetch()) == "hammer=10"
    assert asyncio.run(fetch()) == "hammer=10"
    assert renders("async_catalog") == 1
    Product.objects.update(price=11)
    assert asyncio.run(fetch()) == "hammer=11"
    assert renders("async_catalog") == 2


def test_a_view_that_writes_the_session_is_never_shared() -> None:
    assert get(Client(), "/pages/remembers-visitor/") == (200, "visitor 1")
    assert get(Client(), "/pages/remembers-visitor/") == (200, "visitor 2")


def test_per_user_never_shares_what_an_authorization_header_asked_for() -> None:
    alice = get(Client(), "/pages/token-auth/", Authorization="Token alice")
    bob = get(Client(), "/pages/token-auth/", Authorization="Token bob")
    anonymous = get(Client(), "/pages/token-auth/")
    assert (alice[1], bob[1], anonymous[1]) == (
        "account of Token alice",
        "account of Token bob",
        "account of nobody",
    )


def test_repeated_query_parameters_keep_their_order_in_the_key(client: Client) -> None:
    # Django reads the last of a repeated name's values: the two URLs are different pages.
    assert get(client, "/pages/echo/?a=1&a=2") == (200, "a=2")
    assert get(client, "/pages/echo/?a=2&a=1") == (200, "a=1")


def test_pages_are_kept_per_active_language(client: Client) -> None:
    from django.utils import translation

    with translation.override("fr"):
        assert get(client, "/pages/localized/") == (200, "lang=fr")
    with translation.override("de"):
        assert get(client, "/pages/localized/") == (200, "lang=de")
    with translation.override("fr"):
        assert get(client, "/pages/localized/") == (200, "lang=fr")
    assert renders("localized") == 2


def test_a_cached_redirect_keeps_its_location(client: Client) -> None:
    for _ in range(2):
        response = client.get("/pages/moved/")
        assert response.status_code == 301
        assert response["Location"] == "/pages/catalog/"
    assert renders("moved") == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": -1}, "ttl must be a positive number"),
        ({"ttl": "5m"}, "ttl must be seconds"),
        ({"stale_ttl": -1}, "stale_ttl must be a number of seconds >= 0"),
        ({"statuses": 200}, "statuses must be HTTP status codes"),
        ({"statuses": [200, 999]}, "statuses must be HTTP status codes"),
        ({"per_user": "yes"}, "per_user must be True or False"),
        ({"depends_on": [42]}, "depends_on=...) takes models"),
        ({"depends_on": "Product"}, "depends_on=...) takes models"),
        ({"tags": [1]}, "tags=...) takes tag names"),
    ],
)
def test_cache_view_checks_its_arguments_when_applied(options: dict, message: str) -> None:
    from cacheplug import ConfigurationError
    from cacheplug_django import cache_view

    with pytest.raises(ConfigurationError, match=re.escape(message)):
        cache_view(**options)
