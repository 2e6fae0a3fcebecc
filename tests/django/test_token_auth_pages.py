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
    # Only the anonymous page came from the cache, the second time.
    assert page_views.renders["greeting"] == 5
