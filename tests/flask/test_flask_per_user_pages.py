"""Per-user pages (``cached_view(per_user=...)``) are stored for a logged-in user: by the
session, or by Flask-Login's "remember me" cookie alone. Flask opens the session (reading its
cookie) before the view and saves it after the decorator has seen the response, so its cookie
is never read while the page renders; Flask-Login reads the "remember me" cookie when it works
out the user, which ``per_user=lambda: current_user.get_id()`` does before the page renders.
A page that works the user out itself reads that cookie while it renders: the cookie names the
client the page is keyed by, so the page is stored all the same. A user's later requests are
hits; another user gets their own page, an anonymous visitor never a user's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from flask import Flask, request, session
from flask.testing import FlaskClient
from flask_login import LoginManager, UserMixin, current_user, login_user

from cacheplug_flask import CachePlug

renders: Counter[str] = Counter()


class Account(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


def greeting() -> str:
    name = current_user.get_id() if current_user.is_authenticated else "guest"
    renders[f"{request.path}:{name}"] += 1
    return f"hello {name}"


def create_app(store: str | None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="flask-per-user-tests-secret",
        CACHEPLUG_STORE=store,
        CACHEPLUG_NAMESPACE="flask-per-user",
    )
    cache = CachePlug(app)
    LoginManager(app).user_loader(Account)

    @app.get("/mine")
    @cache.cached_view(ttl=300, per_user=lambda: current_user.get_id())
    def mine() -> str:
        return greeting()

    # Keyed by what the session holds: the page itself works out the user (from the
    # "remember me" cookie when the session has none).
    @app.get("/by-session")
    @cache.cached_view(ttl=300, per_user=lambda: session.get("_user_id"))
    def by_session() -> str:
        return greeting()

    @app.get("/theme")
    @cache.cached_view(ttl=300, per_user=lambda: current_user.get_id())
    def theme() -> str:
        renders["theme"] += 1
        return f"{current_user.get_id()}: theme {request.cookies.get('theme')}"

    @app.post("/login/<name>")
    def login(name: str) -> str:
        login_user(Account(name), remember=True)
        return "logged in"

    return app


@pytest.fixture(params=["memory", "redis"])
def app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    store = request.getfixturevalue("redis_url") if request.param == "redis" else None
    renders.clear()
    app = create_app(store)
    yield app
    app.extensions["cacheplug"]["CACHEPLUG"].cache.close()


def logged_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    assert client.post(f"/login/{name}").status_code == 200
    return client


def body(client: FlaskClient, url: str, *, remembered_only: bool = False) -> str:
    if remembered_only:
        # A client that keeps only the "remember me" cookie: Flask-Login logs it in again
        # from that cookie on every request.
        client.delete_cookie("session")
        assert client.get_cookie("remember_token") is not None
    response = client.get(url)
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize("remembered_only", [False, True], ids=["session", "remember me"])
@pytest.mark.parametrize("url", ["/mine", "/by-session"])
def test_a_logged_in_users_page_is_stored_for_them(
    app: Flask, url: str, remembered_only: bool
) -> None:
    alice = logged_in(app, "alice")
    for _ in range(4):
        assert body(alice, url, remembered_only=remembered_only) == "hello alice"
    assert renders[f"{url}:alice"] == 1


@pytest.mark.parametrize("remembered_only", [False, True], ids=["session", "remember me"])
@pytest.mark.parametrize("url", ["/mine", "/by-session"])
def test_another_user_and_an_anonymous_visitor_get_their_own_page(
    app: Flask, url: str, remembered_only: bool
) -> None:
    alice, bob = logged_in(app, "alice"), logged_in(app, "bob")
    assert body(alice, url, remembered_only=remembered_only) == "hello alice"
    for _ in range(3):
        assert body(bob, url, remembered_only=remembered_only) == "hello bob"
        assert body(app.test_client(), url) == "hello guest"
        assert body(alice, url, remembered_only=remembered_only) == "hello alice"
    assert renders[f"{url}:alice"] == renders[f"{url}:bob"] == 1


def test_a_per_user_page_reading_another_cookie_is_still_not_stored(app: Flask) -> None:
    alice = logged_in(app, "alice")
    alice.set_cookie("theme", "dark")
    for _ in range(3):
        assert body(alice, "/theme") == "alice: theme dark"
    alice.set_cookie("theme", "light")
    assert body(alice, "/theme") == "alice: theme light"
    assert renders["theme"] == 4
