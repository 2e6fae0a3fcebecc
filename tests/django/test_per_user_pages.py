"""Per-user pages are stored for a logged-in user, wherever the documented setup puts the
cache: ``CachePlugMiddleware`` with a ``PER_USER`` rule right after ``SecurityMiddleware``
(docs/django.md), first of all, or below ``AuthenticationMiddleware``, and ``cache_view(
per_user=True)``, each in the middleware ``startproject`` writes. Placed above
``SessionMiddleware``, the middleware's page was never stored: ``SessionMiddleware`` looks for
its cookie in the request on the way out, which counted as the page reading a cookie of its
client. A user's later requests are hits, through the sync and the async (ASGI) path; another
user gets their own page, an anonymous visitor never a user's."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client
from django.urls import path

from cacheplug_django import cache_view

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

renders: Counter[str] = Counter()


def greet(request: HttpRequest) -> HttpResponse:
    user = request.user
    renders[user.get_username() or "guest"] += 1
    return HttpResponse(f"hello {user.get_username() or 'guest'}")


def reads_a_cookie(request: HttpRequest) -> HttpResponse:
    renders["theme"] += 1
    return HttpResponse(f"{request.user.get_username()}: theme {request.COOKIES.get('theme')}")


urlpatterns = [
    path("mine/", greet),
    path("mine/theme/", reads_a_cookie),
    path("decorated/", cache_view(ttl=60, per_user=True)(greet)),
]

STARTPROJECT = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
CACHE_MIDDLEWARE = "cacheplug_django.middleware.CachePlugMiddleware"
# Where CachePlugMiddleware goes in STARTPROJECT (None: not at all, the view is decorated).
PLACES = {
    "middleware after SecurityMiddleware": 1,
    "middleware first": 0,
    "middleware below AuthenticationMiddleware": 5,
    "cache_view": None,
}


PAGES = [{"PATH": r"^/mine/", "TTL": 60, "PER_USER": True}]


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_url") if request.param == "redis" else None


@pytest.fixture(params=list(PLACES))
def site(request: pytest.FixtureRequest, settings: Any, store: str | None) -> Iterator[str]:
    """The startproject middleware with the cache at one of its places; the URL it caches."""
    from cacheplug_django import cache

    place = PLACES[request.param]
    middleware = list(STARTPROJECT)
    if place is not None:
        middleware.insert(place, CACHE_MIDDLEWARE)
    settings.MIDDLEWARE = middleware
    options: dict[str, Any] = {"NAMESPACE": "tests", "PAGES": PAGES}
    if store is not None:
        options["STORE"] = store
    settings.CACHEPLUG = options
    cache.reset()
    renders.clear()
    yield "/mine/" if place is not None else "/decorated/"
    cache.reset()


def logged_in(name: str) -> Client:
    client = Client()
    client.force_login(User.objects.create_user(name))
    return client


def body(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_a_logged_in_users_page_is_stored_for_them(site: str) -> None:
    alice = logged_in("alice")
    assert body(alice, site) == "hello alice"
    # The middleware above SessionMiddleware sees its Vary: Cookie, learnt on the first
    # render; the page is then stored under it, on the second at the latest.
    assert body(alice, site) == "hello alice"
    first_two = renders["alice"]
    assert first_two <= 2
    for _ in range(3):
        assert body(alice, site) == "hello alice"
    assert renders["alice"] == first_two  # hits from then on


def test_the_async_path_stores_it_too(site: str) -> None:
    alice = AsyncClient()
    # Signed in before the loop runs: Django 4.2 has no aforce_login() nor acreate_user().
    alice.force_login(User.objects.create_user("alice"))

    async def visits() -> list[str]:
        bodies = []
        for _ in range(5):
            response = await alice.get(site)
            assert response.status_code == 200
            bodies.append(response.content.decode())
        return bodies

    assert asyncio.run(visits()) == ["hello alice"] * 5
    assert renders["alice"] <= 2


def test_another_user_and_an_anonymous_visitor_get_their_own_page(site: str) -> None:
    alice, bob = logged_in("alice"), logged_in("bob")
    for _ in range(3):
        assert body(alice, site) == "hello alice"
    for _ in range(3):
        assert body(bob, site) == "hello bob"
        assert body(Client(), site) == "hello guest"
        assert body(alice, site) == "hello alice"
    assert renders["bob"] <= 2
    assert renders["alice"] <= 2


def test_a_per_user_page_reading_another_cookie_is_still_not_stored(
    settings: Any, store: str | None
) -> None:
    # The session's cookie is the key's own; a cookie of the page's choosing is not.
    from cacheplug_django import cache

    settings.MIDDLEWARE = [STARTPROJECT[0], CACHE_MIDDLEWARE, *STARTPROJECT[1:]]
    options: dict[str, Any] = {"NAMESPACE": "tests", "PAGES": PAGES}
    if store is not None:
        options["STORE"] = store
    settings.CACHEPLUG = options
    cache.reset()
    renders.clear()
    try:
        alice = logged_in("alice")
        alice.cookies["theme"] = "dark"
        for _ in range(4):
            assert body(alice, "/mine/theme/") == "alice: theme dark"
        alice.cookies["theme"] = "light"
        assert body(alice, "/mine/theme/") == "alice: theme light"
        assert renders["theme"] == 5
    finally:
        cache.reset()
