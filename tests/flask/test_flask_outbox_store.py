"""The SQLAlchemy side of the outbox (its table and the relay's queries); the hooks that fill
it are tested with them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData, create_engine, insert, inspect

from cacheplug import Cache
from cacheplug.integration import (
    OUTBOX_TABLE,
    OutboxBacklog,
    OutboxRelay,
    OutboxRow,
    landed_invalidation,
    outbox_write,
)
from cacheplug_flask.outbox import SqlAlchemyOutbox, outbox_table

WRITTEN_AT = 1_000_000.0  # when the row says it was written (seconds since the epoch)
EVERY_ROW = 2_000_000.0  # due() of rows written before this: all of them


def test_the_table_is_made_once_per_metadata() -> None:
    metadata = MetaData()
    assert outbox_table(metadata) is outbox_table(metadata)
    assert metadata.tables[OUTBOX_TABLE].primary_key.columns.keys() == ["id"]


def test_create_all_makes_it_and_the_relay_empties_it(tmp_path: Path, redis_url: str) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    metadata = MetaData()
    table = outbox_table(metadata)
    metadata.create_all(engine)
    assert inspect(engine).has_table(OUTBOX_TABLE)
    write = outbox_write(OutboxRow(), ["db:t:orders"])
    assert write is not None
    with engine.begin() as connection:
        connection.execute(
            insert(table).values(id=write.id, tags=write.tags_json, created_at=WRITTEN_AT)
        )
    outbox = SqlAlchemyOutbox(engine, table)
    assert [row_id for row_id, _ in outbox.due(EVERY_ROW, 10)] == [write.id]
    with Cache(redis_url, namespace="fl-outbox") as cache:
        relay = OutboxRelay(
            outbox,
            landed_invalidation(cache),
            lambda: cache.lock("outbox-relay", timeout=10, blocking=False),
        )
        assert relay.relay_once() == 1
    assert outbox.due(EVERY_ROW, 10) == []
    engine.dispose()


def test_the_backlog_counts_the_rows_waiting_and_the_oldest_ones_age(
    tmp_path: Path, redis_url: str
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    metadata = MetaData()
    table = outbox_table(metadata)
    metadata.create_all(engine)
    outbox = SqlAlchemyOutbox(engine, table)
    assert outbox.waiting([]) == (0, None)
    with engine.begin() as connection:
        for row_id, written_at in (
            ("older", WRITTEN_AT - 30),
            ("old", WRITTEN_AT),
            ("new", WRITTEN_AT + 30),
        ):
            connection.execute(
                insert(table).values(id=row_id, tags='["db:t:orders"]', created_at=written_at)
            )
    assert outbox.waiting([]) == (3, WRITTEN_AT - 30)
    assert outbox.waiting(["older", "new"]) == (1, WRITTEN_AT)
    with Cache(redis_url, namespace="fl-outbox-backlog") as cache:
        relay = OutboxRelay(
            outbox,
            landed_invalidation(cache),
            lambda: cache.lock("outbox-relay", timeout=10, blocking=False),
            deletes_delivered=False,  # SQLite: delivered rows wait for the app's next write
        )
        relay.delivered("older")
        backlog = relay.backlog()
        assert backlog.rows == 2
        assert backlog.oldest_age is not None
        assert backlog.oldest_age >= 1_700_000_000 - WRITTEN_AT  # written in 1970
        assert relay.relay_once(grace=0) == 2
        assert relay.backlog() == OutboxBacklog(rows=0, oldest_age=None)
    assert [row_id for row_id, _ in outbox.due(EVERY_ROW, 10)] == ["older"]
    engine.dispose()
