"""Shared pages and fragments never carry one client's state (ARCHITECTURE §6), from one table
of cases: each way of caching ({@cache_view, CachePlugMiddleware, {% cacheplug %}}) by each kind
of client state (flash messages in each storage, a session value, a logged-in user, a CSRF
token). Alice makes her state and sees it; Bob, another client, must never see it. A page or
fragment that reads nothing of its client is still served from the cache, in the same tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template import RequestContext, Template
from django.test import Client
from django.urls import path

from cacheplug_django import cache_view
from cacheplug_django._cache import DjangoCache

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

SECRET = "secret-of-alice"
renders: Counter[str] = Counter()

_STORAGES = {
    "cookie messages": "django.contrib.messages.storage.cookie.CookieStorage",
    "session messages": "django.contrib.messages.storage.session.SessionStorage",
    "fallback messages": "django.contrib.messages.storage.fallback.FallbackStorage",
}


# -- what each state's page shows of its client ---------------------------------------------


def show_messages(request: HttpRequest) -> str:
    return "messages: " + ",".join(str(m) for m in messages.get_messages(request))


def show_session(request: HttpRequest) -> str:
    return "session: " + str(request.session.get("secret", "-"))


def show_user(request: HttpRequest) -> str:
    user = request.user
    return "user: " + (user.get_username() if user.is_authenticated else "guest")


def show_csrf(request: HttpRequest) -> str:
    return f'<input name="csrfmiddlewaretoken" value="{get_token(request)}">'


def show_nothing(request: HttpRequest) -> str:
    return "the same for everybody"


SHOWS: dict[str, Callable[[HttpRequest], str]] = {
    "messages": show_messages,
    "session": show_session,
    "user": show_user,
    "csrf": show_csrf,
    "plain": show_nothing,
}

# The same, as template source for a fragment.
FRAGMENTS = {
    "messages": "messages: {% for m in messages %}{{ m }},{% endfor %}",
    "session": "session: {{ request.session.secret|default:'-' }}",
    "user": "user: {% if request.user.is_authenticated %}{{ request.user.get_username }}"
    "{% else %}guest{% endif %}",
    "csrf": '<input name="csrfmiddlewaretoken" value="{{ csrf_token }}">',
    "plain": "the same for everybody",
}


@cache_view(ttl=300)
def decorated(request: HttpRequest, state: str) -> HttpResponse:
    renders[f"decorated:{state}"] += 1
    return HttpResponse(SHOWS[state](request))


def undecorated(request: HttpRequest, state: str) -> HttpResponse:
    """Cached by CachePlugMiddleware's rule for ``/leak/middleware/``."""
    renders[f"middleware:{state}"] += 1
    return HttpResponse(SHOWS[state](request))


def with_fragment(request: HttpRequest, state: str) -> HttpResponse:
    """Not cached whole: the state is shown inside a ``{% cacheplug %}`` fragment."""

    class Counted:
        def __str__(self) -> str:
            renders[f"fragment:{state}"] += 1
            return ""

    template = Template(
        "{% load cacheplug %}page|"
        f'{{% cacheplug "leak-{state}" 300 %}}{{{{ counted }}}}{FRAGMENTS[state]}'
        "{% endcacheplug %}"
    )
    context = RequestContext(
        request, {"messages": messages.get_messages(request), "counted": Counted()}
    )
    return HttpResponse(template.render(context))


def flash(request: HttpRequest) -> HttpResponse:
    messages.info(request, SECRET)
    return HttpResponse("flashed")


def remember(request: HttpRequest) -> HttpResponse:
    request.session["secret"] = SECRET
    return HttpResponse("remembered")


urlpatterns = [
    path("leak/decorated/<str:state>/", decorated),
    path("leak/middleware/<str:state>/", undecorated),
    path("leak/fragment/<str:state>/", with_fragment),
    path("leak/flash/", flash),
    path("leak/remember/", remember),
]

SURFACES = ["decorated", "middleware", "fragment"]
# state case -> (what the page shows, how Alice makes her state, the message storage)
STATES: dict[str, tuple[str, str, str]] = {
    "cookie messages": ("messages", "flash", _STORAGES["cookie messages"]),
    "session messages": ("messages", "flash", _STORAGES["session messages"]),
    "fallback messages": ("messages", "flash", _STORAGES["fallback messages"]),
    "session value": ("session", "remember", _STORAGES["fallback messages"]),
    "logged-in user": ("user", "login", _STORAGES["fallback messages"]),
    "csrf token": ("csrf", "nothing", _STORAGES["fallback messages"]),
}


@pytest.fixture
def site(cache: DjangoCache, settings: Any) -> DjangoCache:
    """Django's default stack (sessions, CSRF, auth, messages) under CachePlugMiddleware,
    with a rule for ``/leak/middleware/``."""
    renders.clear()
    settings.MIDDLEWARE = [
        "cacheplug_django.middleware.CachePlugMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
    settings.CACHEPLUG = {**settings.CACHEPLUG, "PAGES": [{"PATH": r"^/leak/middleware/"}]}
    return cache


def make_state(client: Client, how: str) -> None:
    if how == "flash":
        assert client.post("/leak/flash/").status_code == 200
    elif how == "remember":
        assert client.post("/leak/remember/").status_code == 200
    elif how == "login":
        client.force_login(User.objects.create_user(SECRET))


def body(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("surface", SURFACES)
def test_a_second_client_never_sees_the_first_clients_state(
    site: DjangoCache, settings: Any, surface: str, state: str
) -> None:
    shows, how, storage = STATES[state]
    settings.MESSAGE_STORAGE = storage
    alice, bob = Client(), Client()
    make_state(alice, how)
    url = f"/leak/{surface}/{shows}/"
    seen_by_alice = body(alice, url)
    # Alice's page shows her state (else the test could not fail): her message, session value,
    # name, or the CSRF token she was given.
    secret = SECRET if shows != "csrf" else seen_by_alice.split('value="')[1].split('"')[0]
    assert secret in seen_by_alice
    for _ in range(2):
        assert secret not in body(bob, url)
        assert secret not in body(Client(), url)
    # What reads nothing of its client is still shared, under the same stack and surface
    # (Alice's own requests, with a session, may render it for her).
    plain = f"/leak/{surface}/plain/"
    assert body(Client(), plain) == body(bob, plain) == body(Client(), plain)
    assert renders[f"{surface}:plain"] == 1
    assert body(alice, plain) == body(bob, plain)
