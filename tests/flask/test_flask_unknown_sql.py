"""A statement the SQL reader cannot classify as a read (``CALL``, ``DO``, ``EXECUTE``, ...)
may have written anything: it invalidates every entry that depends on a table, those tagged
with one row included. Reads and transaction control invalidate nothing, and
``CACHEPLUG_UNKNOWN_SQL = "ignore"`` narrows it to nothing.

SQLite has neither stored procedures nor ``SHOW``: an engine listener after cacheplug's hands
SQLite what such a statement would do, so cacheplug's hook sees the statement the app sent,
and the rows change as the procedure would change them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Integer, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from cacheplug_flask import CachePlug, instance_tag


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    price: Mapped[int] = mapped_column(Integer)


STANDS_FOR = {
    "CALL discount_everything()": "UPDATE item SET price = price - 1",
    "SHOW search_path": "SELECT 'public'",
    "SET search_path TO public": "SELECT 1",
}


def stand_in(
    connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> tuple[str, Any]:
    return STANDS_FOR.get(statement, statement), parameters


Reads = Callable[[], tuple[int, int]]
Shop = tuple[Any, Reads, list[str]]


@pytest.fixture(params=["memory", "redis"])
def open_shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Shop]]:
    """Opens an app (``CACHEPLUG_UNKNOWN_SQL`` as given, the default if not) with an item
    cached twice, tagged with its table and with its row: the engine, the cached reads, and
    the loads made."""
    opened: list[tuple[Flask, CachePlug, Any, Any]] = []

    def open_shop(unknown_sql: str | None = None) -> Shop:
        engine = create_engine(f"sqlite:///{tmp_path / 'items.sqlite3'}")
        Base.metadata.create_all(engine)
        Session = sessionmaker(engine)
        with Session() as session:
            session.add(Item(id=1, price=10))
            session.commit()
        app = Flask("unknown-sql")
        app.config["CACHEPLUG_NAMESPACE"] = f"unknown-{uuid.uuid4().hex[:12]}"
        if request.param == "redis":
            app.config["CACHEPLUG_STORE"] = request.getfixturevalue("redis_url")
        if unknown_sql is not None:
            app.config["CACHEPLUG_UNKNOWN_SQL"] = unknown_sql
        ext = CachePlug(app, sqlalchemy=Session)
        event.listen(engine, "before_cursor_execute", stand_in, retval=True)  # after cacheplug's
        context = app.app_context()
        context.push()
        opened.append((app, ext, engine, context))
        loads: list[str] = []

        def load(name: str) -> Callable[[], int]:
            def price() -> int:
                loads.append(name)
                with Session() as session:
                    found = session.get(Item, 1)
                    assert found is not None
                    return found.price

            return price

        def reads() -> tuple[int, int]:
            by_table = ext.get_or_load("by-table", load("by-table"), depends_on=[Item])
            by_row = ext.get_or_load("by-row", load("by-row"), tags=[instance_tag(Item, 1)])
            return by_table, by_row

        assert reads() == (10, 10)
        assert loads == ["by-table", "by-row"]
        return engine, reads, loads

    yield open_shop
    for app, ext, engine, context in opened:
        context.pop()
        ext.close(app)
        engine.dispose()


def test_a_statement_that_cannot_be_classified_invalidates_every_table(
    open_shop: Callable[..., Shop],
) -> None:
    engine, reads, loads = open_shop()
    with engine.begin() as connection:
        connection.exec_driver_sql("CALL discount_everything()")
    assert reads() == (9, 9)
    assert loads == ["by-table", "by-row"] * 2


def test_reads_and_transaction_control_invalidate_nothing(
    open_shop: Callable[..., Shop],
) -> None:
    engine, reads, loads = open_shop()
    with engine.begin() as connection:
        for sql in (
            "SELECT count(*) FROM item",
            "EXPLAIN QUERY PLAN UPDATE item SET price = 0",
            "SAVEPOINT s1",
            "RELEASE SAVEPOINT s1",
            "SET search_path TO public",
            "SHOW search_path",
            "PRAGMA foreign_keys",
        ):
            connection.exec_driver_sql(sql)
    assert reads() == (10, 10)
    assert loads == ["by-table", "by-row"]  # both still served from the cache


def test_unknown_sql_ignore_invalidates_nothing(open_shop: Callable[..., Shop]) -> None:
    engine, reads, loads = open_shop("ignore")
    with engine.begin() as connection:
        connection.exec_driver_sql("CALL discount_everything()")
        assert connection.exec_driver_sql("SELECT price FROM item").scalar() == 9
    assert reads() == (10, 10)  # as told: left alone
    assert loads == ["by-table", "by-row"]
