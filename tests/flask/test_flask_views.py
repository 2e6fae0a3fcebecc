"""cached_view with SQLAlchemy writes: the next request shows the new data, never the old;
pages are shared only when nothing about them is one client's."""

from __future__ import annotations

import asyncio
import re

import pytest
from flask import Flask
from flask_shop import Category, Product, db, renders
from sqlalchemy import delete, text, update

from cacheplug import ConfigurationError
from cacheplug_flask import CachePlug


def seed(app: Flask) -> tuple[int, int]:
    with app.app_context():
        tools = Category(name="tools")
        hammer = Product(name="hammer", price=10, categories=[tools])
        saw = Product(name="saw", price=20)
        db.session.add_all([hammer, saw])
        db.session.commit()
        return hammer.id, saw.id


def get(app: Flask, url: str, client: object = None) -> str:
    response = (client or app.test_client()).get(url)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def warm(app: Flask, hammer: int, saw: int) -> None:
    for url in ("/catalog", f"/products/{hammer}", f"/products/{saw}"):
        get(app, url)
    assert get(app, "/catalog") == "hammer=10[tools]\nsaw=20[]"
    assert renders["catalog"] == 1


def test_add_update_delete_through_the_session(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context():
        db.session.add(Product(name="axe", price=5))
        db.session.commit()
    assert get(app, "/catalog") == "axe=5[]\nhammer=10[tools]\nsaw=20[]"
    with app.app_context():
        db.session.get(Product, hammer).price = 11
        db.session.commit()
    assert get(app, f"/products/{hammer}") == "hammer=11[tools]"
    assert get(app, f"/products/{saw}") == "saw=20[]"
    assert renders[f"product:{saw}"] == 1  # the other row's page kept its entry
    with app.app_context():
        db.session.delete(db.session.get(Product, saw))
        db.session.commit()
    assert get(app, f"/products/{saw}") == "missing"
    assert get(app, "/catalog") == "axe=5[]\nhammer=11[tools]"


def test_many_to_many_changes(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context():
        product = db.session.get(Product, hammer)
        product.categories = []
        db.session.commit()
    assert get(app, f"/products/{hammer}") == "hammer=10[]"
    assert get(app, "/catalog") == "hammer=10[]\nsaw=20[]"


def test_rollback_changes_nothing(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context():
        db.session.get(Product, hammer).price = 99
        db.session.flush()
        db.session.rollback()
    assert get(app, "/catalog") == "hammer=10[tools]\nsaw=20[]"
    assert renders["catalog"] == 1  # still the cached page: nothing was invalidated


def test_nested_rollback_keeps_the_outer_write(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context():
        db.session.get(Product, saw).price = 30
        savepoint = db.session.begin_nested()
        db.session.get(Product, hammer).price = 99
        db.session.flush()
        savepoint.rollback()
        db.session.commit()
    assert get(app, "/catalog") == "hammer=10[tools]\nsaw=30[]"
    assert get(app, f"/products/{saw}") == "saw=30[]"
    assert get(app, f"/products/{hammer}") == "hammer=10[tools]"
    assert renders[f"product:{hammer}"] == 1  # the rolled-back savepoint invalidated nothing


def test_a_released_savepoint_is_invalidated_with_the_commit(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context():
        with db.session.begin_nested():
            db.session.get(Product, hammer).price = 11
            with db.session.begin_nested():
                db.session.get(Product, saw).price = 21
            inner = db.session.begin_nested()
            db.session.add(Product(name="axe", price=5))
            db.session.flush()
            inner.rollback()
        db.session.commit()
    assert get(app, "/catalog") == "hammer=11[tools]\nsaw=21[]"
    assert get(app, f"/products/{hammer}") == "hammer=11[tools]"
    assert get(app, f"/products/{saw}") == "saw=21[]"


def test_bulk_update_and_delete(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context():
        db.session.execute(update(Product).where(Product.price >= 10).values(price=1))
        db.session.commit()
    assert get(app, "/catalog") == "hammer=1[tools]\nsaw=1[]"
    assert get(app, f"/products/{hammer}") == "hammer=1[tools]"
    with app.app_context():
        db.session.execute(delete(Product).where(Product.name == "saw"))
        db.session.commit()
    assert get(app, f"/products/{saw}") == "missing"


def test_text_sql_through_the_session(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context():
        db.session.execute(text("UPDATE product SET price = 7 WHERE name = 'saw'"))
        db.session.commit()
    assert get(app, f"/products/{saw}") == "saw=7[]"


def test_the_writer_reads_its_own_uncommitted_write_around_the_cache(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.test_request_context("/"):
        from flask_shop import cache

        db.session.get(Product, hammer).price = 12
        db.session.flush()
        assert cache.get_or_load("n", lambda: "fresh", depends_on=[Product]) == "fresh"
        db.session.rollback()
    assert get(app, "/catalog") == "hammer=10[tools]\nsaw=20[]"


def test_a_logged_in_users_page_is_never_served_to_anybody_else(app: Flask) -> None:
    alice, bob, anonymous = app.test_client(), app.test_client(), app.test_client()
    alice.post("/login/alice")
    bob.post("/login/bob")
    assert get(app, "/greeting", alice) == "hello alice"
    assert get(app, "/greeting", bob) == "hello bob"
    assert get(app, "/greeting", anonymous) == "hello guest"
    assert get(app, "/greeting", anonymous) == "hello guest"
    assert get(app, "/greeting", alice) == "hello alice"
    # The greeting reads the session: no page of it is shared, not even the anonymous one (a
    # page is stored only if rendering read nothing of the client).
    assert renders["greeting"] == 5


def test_per_user_pages(app: Flask) -> None:
    alice, bob = app.test_client(), app.test_client()
    alice.post("/login/alice")
    bob.post("/login/bob")
    for _ in range(2):
        assert get(app, "/dashboard", alice) == "dashboard of alice"
        assert get(app, "/dashboard", bob) == "dashboard of bob"
        assert get(app, "/dashboard") == "dashboard of guest"
    assert renders["dashboard"] == 3


def test_query_strings_are_canonical_and_never_collide(app: Flask) -> None:
    assert get(app, "/echo?b=2&a=1") == get(app, "/echo?a=1&b=2")
    assert get(app, "/echo?a=1&b=3") != get(app, "/echo?a=1&b=2")
    assert get(app, "/echo?a=1%26b%3D2") != get(app, "/echo?a=1&b=2")
    assert renders["echo"] == 3


def test_unshareable_responses_are_rendered_every_time(app: Flask) -> None:
    client = app.test_client()
    for url in ("/sets-session", "/private"):
        client.get(url)
        app.test_client().get(url)
    assert client.get("/missing").status_code == 404
    assert app.test_client().get("/missing").status_code == 404
    assert (renders["sets_session"], renders["private"], renders["missing"]) == (2, 2, 2)


def test_etag_and_304(app: Flask) -> None:
    first = app.test_client().get("/echo?q=1")
    etag = first.headers["ETag"]
    again = app.test_client().get("/echo?q=1", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""


def test_async_views(app: Flask) -> None:
    seed(app)
    assert get(app, "/async") == "hammer,saw"
    assert get(app, "/async") == "hammer,saw"
    assert renders["async"] == 1
    with app.app_context():
        db.session.add(Product(name="axe"))
        db.session.commit()
    assert get(app, "/async") == "axe,hammer,saw"
    assert asyncio.iscoroutinefunction(app.view_functions["async_catalog"])


def test_per_user_never_shares_what_an_authorization_header_asked_for(app: Flask) -> None:
    client = app.test_client()
    client.get("/dashboard", headers={"Authorization": "Token alice"})
    client.get("/dashboard", headers={"Authorization": "Token bob"})
    assert renders["dashboard"] == 2


def test_a_url_prefix_is_part_of_the_key(app: Flask) -> None:
    seed(app)
    client = app.test_client()
    for prefix in ("/shop-a", "/shop-b", "/shop-a"):
        assert client.get("/catalog", environ_overrides={"SCRIPT_NAME": prefix}).status_code == 200
    assert renders["catalog"] == 2


def test_repeated_query_parameters_keep_their_order(app: Flask) -> None:
    get(app, "/echo?a=1&a=2")
    get(app, "/echo?a=2&a=1")  # Flask reads the first value: another page
    get(app, "/echo?a=1&a=2")
    assert renders["echo"] == 2


def test_a_remember_me_cookie_keeps_the_request_private(app: Flask) -> None:
    """Flask-Login's ``remember_token`` names a user without a session cookie (the default
    ``CACHEPLUG_PRIVATE_COOKIES``): such a request never gets, nor makes, a shared page."""
    remembered, anonymous = app.test_client(), app.test_client()
    remembered.set_cookie("remember_token", "alice|signature")
    for client in (remembered, anonymous, remembered, anonymous):
        assert get(app, "/echo?q=1", client) == '[["q","1"]]\n'
    assert renders["echo"] == 3  # the remembered client twice; the anonymous page once


def test_private_cookies_are_checked_at_init_app() -> None:
    app = Flask("bad-private-cookies")
    app.config["CACHEPLUG_PRIVATE_COOKIES"] = "remember_token"
    with pytest.raises(ConfigurationError, match="list of cookie names"):
        CachePlug(app)


def test_a_head_hit_has_the_content_length_of_the_page(app: Flask) -> None:
    seed(app)
    first = app.test_client().get("/catalog")
    assert first.status_code == 200
    for _ in range(2):  # the second HEAD is a hit too; the first GET stored the page
        head = app.test_client().head("/catalog")
        assert head.status_code == 200
        assert head.get_data() == b""
        assert head.headers["Content-Length"] == str(len(first.get_data()))
    assert renders["catalog"] == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": -1}, "ttl must be a positive number"),
        ({"ttl": "soon"}, "ttl must be seconds"),
        ({"ttl": 60, "stale_ttl": -5}, "stale_ttl must be a number of seconds >= 0"),
        ({"ttl": 60, "statuses": 200}, "statuses must be HTTP status codes"),
        ({"ttl": 60, "statuses": (200, "404")}, "statuses must be HTTP status codes"),
        ({"ttl": 60, "per_user": True}, "per_user=...) takes a callable"),
        ({"ttl": 60, "depends_on": "Product"}, "depends_on=...) takes a list"),
        ({"ttl": 60, "tags": [1, 2]}, "tags=...) takes tag names"),
    ],
)
def test_cached_view_checks_its_arguments_when_applied(options: dict, message: str) -> None:
    cache = CachePlug()
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        cache.cached_view(**options)
