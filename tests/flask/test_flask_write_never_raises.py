"""A store that is down never turns a committed SQLAlchemy write into an exception (not even
with ``CACHEPLUG_STRICT``), and the write's invalidation is applied once the store is back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Integer, String, create_engine, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from cacheplug.testing import RedisServer
from cacheplug_flask import CachePlug


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop and start again."""
    with RedisServer() as own:
        yield own


@pytest.mark.parametrize("how", ["session", "engine"])
def test_a_commit_with_the_store_down_returns_and_is_invalidated_when_it_is_back(
    tmp_path: Path, server: RedisServer, how: str
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'items.sqlite3'}")
    Base.metadata.create_all(engine)
    Session = sessionmaker(engine)
    app = Flask("never-raises")
    app.config.update(SECRET_KEY="s", CACHEPLUG_STORE=server.url, CACHEPLUG_STRICT=True)
    ext = CachePlug(app, sqlalchemy=Session)
    loads: list[int] = []

    def names() -> str:
        def load() -> str:
            loads.append(1)
            with Session() as session:
                return ",".join(session.scalars(select(Item.name).order_by(Item.name)))

        return ext.get_or_load("names", load, depends_on=[Item])

    with app.app_context():
        assert names() == ""
        assert names() == ""
        assert len(loads) == 1
        server.stop()
        if how == "session":
            with Session() as session:
                session.add(Item(name="one"))
                session.commit()  # returns normally
        else:
            with engine.begin() as connection:  # a Core write outside any session
                connection.execute(insert(Item).values(name="one"))
        with Session() as session:
            assert session.query(Item).count() == 1  # the write stands
        assert ext.pending_invalidations()  # queued, retried until the store takes it
        server.start()
        assert ext.cache._engine._pending.flush(timeout=30.0)
        assert names() == "one"
        assert len(loads) == 2
        ext.close()
