"""What the SQLAlchemy hooks put in the outbox: one row per committed transaction, written
last inside it, with every table it wrote; none for a rollback; handed to the relay once its
invalidation landed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import flask_shop
import pytest
from flask import Flask
from sqlalchemy import Connection, MetaData, event, select, text

from cacheplug_flask.outbox import outbox_table


@pytest.fixture
def app(tmp_path: Path, redis_url: str) -> Iterator[Flask]:
    app = flask_shop.create_app(redis_url, f"sqlite:///{tmp_path / 'shop.sqlite3'}", "outbox")
    with app.app_context():
        flask_shop.db.create_all()
        outbox_table(MetaData()).create(flask_shop.db.engine)
    yield app
    flask_shop.cache.close(app)


def rows() -> list[list[str]]:
    found = flask_shop.db.session.execute(text("SELECT tags FROM cacheplug_outbox")).all()
    flask_shop.db.session.rollback()
    return [json.loads(tags) for (tags,) in found]


def test_one_row_per_transaction_with_every_table_it_wrote(app: Flask) -> None:
    seen: list[list[list[str]]] = []

    def at_commit(connection: Connection) -> None:  # before the database commits: the
        found = connection.exec_driver_sql("SELECT tags FROM cacheplug_outbox").all()
        seen.append([json.loads(tags) for (tags,) in found])  # transaction's own row

    with app.app_context():
        db = flask_shop.db
        event.listen(db.engine, "commit", at_commit)
        try:
            db.session.add(flask_shop.Category(name="tools"))
            db.session.flush()
            db.session.add(flask_shop.Product(name="hammer", price=10))
            db.session.commit()
        finally:
            event.remove(db.engine, "commit", at_commit)
    [written] = seen
    assert len(written) == 1
    assert {"db:t:category", "db:t:product"} <= set(written[0])


def test_another_app_on_the_same_session_writes_no_row(tmp_path: Path, app: Flask) -> None:
    other = flask_shop.create_app(app.config["CACHEPLUG_STORE"], "sqlite://", "outbox-other")
    try:
        test_one_row_per_transaction_with_every_table_it_wrote(app)
    finally:
        flask_shop.cache.close(other)


def test_a_rollback_leaves_no_row(app: Flask) -> None:
    with app.app_context():
        db = flask_shop.db
        db.session.add(flask_shop.Product(name="hammer", price=10))
        db.session.flush()
        db.session.rollback()
        assert rows() == []


def test_a_committed_row_is_handed_to_the_relay_and_deleted(app: Flask) -> None:
    with app.app_context():
        db = flask_shop.db
        db.session.add(flask_shop.Product(name="hammer", price=10))
        db.session.commit()
        state = app.extensions["cacheplug"]["CACHEPLUG"]
        outbox = state.hooks.outbox
        assert outbox is not None
        relay = outbox.relay_for(db.engine)
        relay.stop()  # deletes what was delivered
        assert (
            db.session.execute(
                select(text("count(*)")).select_from(text("cacheplug_outbox"))
            ).scalar()
            == 0
        )


def outbox_ids() -> set[str]:
    found = flask_shop.db.session.execute(text("SELECT id FROM cacheplug_outbox")).all()
    flask_shop.db.session.rollback()
    return {row_id for (row_id,) in found}


def test_on_sqlite_a_delivered_row_goes_with_the_next_write_not_with_the_relay(
    app: Flask,
) -> None:
    # SQLite locks the whole database for a write: a DELETE from the relay's thread could fail
    # a transaction of the app's that read and then writes ("database is locked").
    with app.app_context():
        db = flask_shop.db
        db.session.add(flask_shop.Product(name="hammer", price=10))
        db.session.commit()
        [first] = outbox_ids()
        relay = app.extensions["cacheplug"]["CACHEPLUG"].hooks.outbox.relay_for(db.engine)
        assert not relay.deletes_delivered
        relay.relay_once(grace=0)
        assert outbox_ids() == {first}  # delivered, known as such: neither relayed nor deleted
        db.session.add(flask_shop.Product(name="saw", price=5))
        db.session.commit()
        [second] = outbox_ids()
        assert second != first  # the second transaction deleted the first's row


def test_a_database_without_the_table_is_warned_about_at_start(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = flask_shop.create_app(redis_url, f"sqlite:///{tmp_path / 'bare.sqlite3'}", "no-outbox")
    try:
        outbox = app.extensions["cacheplug"]["CACHEPLUG"].hooks.outbox
        with app.app_context():
            outbox.relay_left_over([flask_shop.db.engine]).join(10)
    finally:
        flask_shop.cache.close(app)
    warned = [r.getMessage() for r in caplog.records if "has no cacheplug_outbox" in r.getMessage()]
    assert warned
    assert "CACHEPLUG_OUTBOX = False" in warned[0]


def test_a_commit_on_an_in_memory_database_keeps_its_rows(redis_url: str) -> None:
    # Flask-SQLAlchemy gives "sqlite://" one connection (a static pool): looking for the table
    # through another checkout of it and giving that back rolled the transaction back.
    app = flask_shop.create_app(redis_url, "sqlite://", "outbox-memory")
    try:
        with app.app_context():
            db = flask_shop.db
            db.create_all()
            db.session.add(flask_shop.Product(name="hammer", price=10))
            db.session.commit()
            assert (
                db.session.execute(select(text("count(*)")).select_from(text("product"))).scalar()
                == 1
            )
    finally:
        flask_shop.cache.close(app)


def test_the_outbox_row_itself_invalidates_nothing(app: Flask) -> None:
    # The hooks' own bookkeeping: its INSERT, its table's creation, its relay's DELETE are
    # no write of the application's (as in Django's hooks), so no commit pays for their tags.
    invalidated: list[str] = []
    with app.app_context():
        cache = flask_shop.cache.cache
        invalidate = cache.invalidate_tags

        def recording(*tags: str, **options: object) -> None:
            invalidated.extend(tags)
            invalidate(*tags, **options)  # type: ignore[arg-type]

        cache.invalidate_tags = recording  # type: ignore[method-assign]
        try:
            flask_shop.db.session.add(flask_shop.Product(name="hammer", price=10))
            flask_shop.db.session.commit()
            with flask_shop.db.engine.begin() as connection:  # a statement of its own
                connection.exec_driver_sql("DELETE FROM cacheplug_outbox WHERE id = 'gone'")
        finally:
            del cache.invalidate_tags
    assert "db:t:product" in invalidated  # the application's write was seen
    assert [tag for tag in invalidated if "cacheplug_outbox" in tag] == []
