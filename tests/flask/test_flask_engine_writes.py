"""Writes the session events never see: Core statements on a connection of one's own and the
session's ``bulk_*_mappings``. The next request shows the new data, never the old."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask_shop import Product, db, renders
from sqlalchemy import event, text, update
from test_flask_views import get, seed, warm

import cacheplug_flask.sqlalchemy as hooks_module


def test_core_update_on_a_connection_of_ones_own(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(update(Product).where(Product.id == hammer).values(price=11))
    assert get(app, "/catalog") == "hammer=11[tools]\nsaw=20[]"
    assert get(app, f"/products/{hammer}") == "hammer=11[tools]"


def test_text_sql_on_a_connection_of_ones_own(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context(), db.engine.connect() as connection:
        connection.execute(text("UPDATE product SET name = 'saw2' WHERE id = :id"), {"id": saw})
        connection.commit()
    assert get(app, f"/products/{saw}") == "saw2=20[]"
    assert get(app, "/catalog") == "hammer=10[tools]\nsaw2=20[]"


def test_a_rolled_back_connection_leaves_the_page_as_the_database_has_it(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context(), db.engine.connect() as connection:
        connection.execute(update(Product).values(price=99))
        connection.rollback()
        connection.execute(update(Product).where(Product.id == saw).values(price=21))
        connection.commit()  # only this write reaches the database, and the pages
    assert get(app, "/catalog") == "hammer=10[tools]\nsaw=21[]"


def test_bulk_mappings_through_the_session(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context():
        db.session.bulk_update_mappings(Product, [{"id": hammer, "price": 12}])  # type: ignore[arg-type]
        db.session.bulk_insert_mappings(Product, [{"name": "axe", "price": 5}])  # type: ignore[arg-type]
        db.session.commit()
    assert get(app, f"/products/{hammer}") == "hammer=12[tools]"
    assert get(app, "/catalog") == "axe=5[]\nhammer=12[tools]\nsaw=20[]"


def test_bulk_mappings_rolled_back_invalidate_nothing_and_show_nothing(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context():
        db.session.bulk_update_mappings(Product, [{"id": hammer, "price": 12}])  # type: ignore[arg-type]
        db.session.rollback()
    assert get(app, f"/products/{hammer}") == "hammer=10[tools]"
    assert renders[f"product:{hammer}"] == 1  # nothing was invalidated for it


def test_a_session_save_still_invalidates_only_its_own_row(app: Flask) -> None:
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    with app.app_context():
        found = db.session.get(Product, saw)
        assert found is not None
        found.price = 22
        db.session.commit()
    assert get(app, f"/products/{saw}") == "saw=22[]"
    assert get(app, f"/products/{hammer}") == "hammer=10[tools]"
    # The flush's UPDATE is tagged by its row, not as "some row of product": the other
    # product's cached page was kept.
    assert renders[f"product:{hammer}"] == 1
    assert renders[f"product:{saw}"] == 2


def test_a_reader_between_invalidation_and_commit_is_corrected(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection outside a session has no event after its commit, only before: a reader
    that reloads the page in between caches the old rows; the second invalidation drops it."""
    monkeypatch.setattr(hooks_module, "AGAIN_AFTER", 0.2)
    hammer, saw = seed(app)
    warm(app, hammer, saw)
    seen_between: list[str] = []
    with app.app_context():
        engine = db.engine

        def read_before_the_commit(connection: object) -> None:
            seen_between.append(get(app, f"/products/{hammer}"))

        event.listen(engine, "commit", read_before_the_commit)  # after cacheplug's listener
        try:
            with engine.begin() as connection:
                connection.execute(update(Product).where(Product.id == hammer).values(price=13))
        finally:
            event.remove(engine, "commit", read_before_the_commit)
    assert seen_between == ["hammer=10[tools]"]  # the old rows, reloaded and cached
    deadline = time.monotonic() + 10
    while get(app, f"/products/{hammer}") != "hammer=13[tools]":
        assert time.monotonic() < deadline, "the second invalidation never came"
        time.sleep(0.05)
