"""A user logged in by other means than the session (a token cookie read by a middleware of
one's own) never gets a shared page, and their page is never shared."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from shop import page_views

from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)

_BASE = [
    "cacheplug_django.middleware.CachePlugMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]


def greet(client: Client) -> str:
    response = client.get("/pages/greeting/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("middleware", ["EagerTokenMiddleware", "LazyTokenMiddleware"])
@pytest.mark.parametrize("anonymous_first", [True, False])
def test_token_users_and_anonymous_clients_never_share_a_page(
    cache: DjangoCache, middleware: str, anonymous_first: bool
) -> None:
    page_views.renders.clear()
    User.objects.create_user("alice")
    User.objects.create_user("bob")
    alice, bob, anonymous = Client(), Client(), Client()
    alice.cookies["token"] = "alice"
    bob.cookies["token"] = "bob"
    with override_settings(MIDDLEWARE=[*_BASE, f"shop.token_auth.{middleware}"]):
        order = [anonymous, alice, bob] if anonymous_first else [alice, bob, anonymous]
        expected = {id(anonymous): "hello guest", id(alice): "hello alice", id(bob): "hello bob"}
        for _ in range(2):
            for client in order:
                assert greet(client) == expected[id(client)]
    # Only the anonymous page came from the cache, the second time, and only when the user was
    # worked out before the view: a view that looks a lazy user up makes a page of its client.
    assert page_views.renders["greeting"] == (5 if middleware == "EagerTokenMiddleware" else 6)


def test_a_request_with_a_private_cookie_is_never_served_a_shared_page(
    cache: DjangoCache, settings: object
) -> None:
    """``PRIVATE_COOKIES``: cookies that say who is asking, whatever reads them."""
    settings.CACHEPLUG = {**settings.CACHEPLUG, "PRIVATE_COOKIES": ["token"]}  # type: ignore[attr-defined]
    page_views.renders.clear()
    alice, anonymous = Client(), Client()
    alice.cookies["token"] = "alice"
    anonymous.cookies["theme"] = "dark"  # any other cookie changes nothing
    for client in (alice, anonymous, alice, anonymous):
        assert client.get("/pages/echo/?q=1").status_code == 200
    assert page_views.renders["echo"] == 3  # alice twice; the anonymous page once


def test_private_cookies_must_be_a_list_of_names(settings: object) -> None:
    from django.core.checks import run_checks

    settings.CACHEPLUG = {"PRIVATE_COOKIES": "token"}  # type: ignore[attr-defined]
    found = [m.msg for m in run_checks() if m.id == "cacheplug.E013"]
    assert any("must be a list of cookie names" in msg for msg in found)
