"""Shared pages and fragments never carry one client's state (ARCHITECTURE §6), from one table
of cases: each way of caching (``cached_view``, the Jinja ``{% cacheplug %}`` tag) by each kind
of client state (a flashed message, a session value, a Flask-Login user, Flask-Login's
"remember me" cookie alone). Alice makes her state and sees it; Bob, another client, must
never see it. A page or fragment that reads nothing of its client is still served from the
cache, in the same tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from flask import Flask, flash, get_flashed_messages, render_template_string, session
from flask.testing import FlaskClient
from flask_login import LoginManager, UserMixin, current_user, login_user

from cacheplug_flask import CachePlug

SECRET = "secret-of-alice"
renders: Counter[str] = Counter()


class Account(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


def show(state: str) -> str:
    if state == "flash":
        return "flashes: " + ",".join(get_flashed_messages())
    if state == "session":
        return "session: " + str(session.get("secret", "-"))
    if state == "user":
        return "user: " + (current_user.get_id() if current_user.is_authenticated else "guest")
    return "the same for everybody"


FRAGMENTS = {
    "flash": "flashes: {% for m in get_flashed_messages() %}{{ m }},{% endfor %}",
    "session": "session: {{ session.get('secret', '-') }}",
    "user": "user: {% if current_user.is_authenticated %}{{ current_user.get_id() }}"
    "{% else %}guest{% endif %}",
    "plain": "the same for everybody",
}


def create_app(store: str | None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="flask-leak-tests-secret",
        CACHEPLUG_STORE=store,
        CACHEPLUG_NAMESPACE="flask-leaks",
    )
    cache = CachePlug(app)
    logins = LoginManager(app)
    logins.user_loader(Account)

    @app.get("/page/<state>")
    @cache.cached_view(ttl=300)
    def page(state: str) -> str:
        renders[f"page:{state}"] += 1
        return show(state)

    @app.get("/fragment/<state>")
    def fragment(state: str) -> str:
        def counted() -> str:
            renders[f"fragment:{state}"] += 1
            return ""

        source = (
            '{% cacheplug "leak-" ~ state, 300 %}{{ counted() }}'
            + FRAGMENTS[state]
            + "{% endcacheplug %}"
        )
        return "page|" + render_template_string(source, state=state, counted=counted)

    @app.post("/flash")
    def flash_secret() -> str:
        flash(SECRET)
        return "flashed"

    @app.post("/remember")
    def remember() -> str:
        session["secret"] = SECRET
        return "remembered"

    @app.post("/login")
    def login() -> str:
        login_user(Account(SECRET), remember=True)
        return "logged in"

    return app


@pytest.fixture(params=["memory", "redis"])
def app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    store = request.getfixturevalue("redis_url") if request.param == "redis" else None
    renders.clear()
    app = create_app(store)
    yield app
    app.extensions["cacheplug"]["CACHEPLUG"].cache.close()


def make_state(client: FlaskClient, how: str) -> None:
    if how == "remember me":
        assert client.post("/login").status_code == 200
        # Only the "remember me" cookie is left: Flask-Login logs Alice in again from it.
        client.delete_cookie("session")
        assert client.get_cookie("remember_token") is not None
        return
    url = {"flash": "/flash", "session value": "/remember", "logged-in user": "/login"}[how]
    assert client.post(url).status_code == 200


def body(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.get_data(as_text=True)


# state case -> what the page shows
STATES = {"flash": "flash", "session value": "session", "logged-in user": "user"}
STATES["remember me"] = "user"


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("surface", ["page", "fragment"])
def test_a_second_client_never_sees_the_first_clients_state(
    app: Flask, surface: str, state: str
) -> None:
    alice, bob = app.test_client(), app.test_client()
    make_state(alice, state)
    url = f"/{surface}/{STATES[state]}"
    assert SECRET in body(alice, url)  # her state is on her page: the test can fail
    for _ in range(2):
        assert SECRET not in body(bob, url)
        assert SECRET not in body(app.test_client(), url)
    # What reads nothing of its client is still shared, under the same app and surface.
    plain = f"/{surface}/plain"
    assert body(app.test_client(), plain) == body(bob, plain) == body(app.test_client(), plain)
    assert renders[f"{surface}:plain"] == 1
    assert body(alice, plain) == body(bob, plain)
