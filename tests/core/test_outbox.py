"""The transactional outbox's core (cacheplug.integration._outbox): what a transaction puts in
the table, and the relay that delivers what is left there, against SQLite and a real Redis."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from cacheplug import Cache
from cacheplug.integration._outbox import (
    OUTBOX_TABLE,
    OutboxBacklog,
    OutboxRelay,
    OutboxRow,
    landed_invalidation,
    outbox_tags,
    outbox_write,
    parse_tags,
)
from cacheplug.integration._table_tags import ALL_TABLES, stored_tags
from cacheplug.testing import RedisServer


class SqliteOutbox:
    """The adapter's side, written here with sqlite3 (the adapters use their ORM)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self.connect() as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} "
                "(id TEXT PRIMARY KEY, tags TEXT NOT NULL, created_at REAL NOT NULL)"
            )
        self.deletes = 0

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def write(self, db: sqlite3.Connection, row: OutboxRow, tags: list[str]) -> None:
        """As an adapter does inside the transaction that wrote ``tags``."""
        write = outbox_write(row, tags)
        if write is None:
            return
        if write.insert:
            db.execute(
                f"INSERT INTO {OUTBOX_TABLE} (id, tags, created_at) VALUES (?, ?, ?)",
                (write.id, write.tags_json, write.created_at),
            )
        else:
            db.execute(
                f"UPDATE {OUTBOX_TABLE} SET tags = ? WHERE id = ?", (write.tags_json, write.id)
            )

    def due(self, written_before: float, limit: int) -> Sequence[tuple[str, str]]:
        with self.connect() as db:
            return db.execute(
                f"SELECT id, tags FROM {OUTBOX_TABLE} WHERE created_at < ? "
                "ORDER BY created_at LIMIT ?",
                (written_before, limit),
            ).fetchall()

    def delete(self, ids: Sequence[str]) -> None:
        self.deletes += 1
        with self.connect() as db:
            marks = ",".join("?" * len(ids))
            db.execute(f"DELETE FROM {OUTBOX_TABLE} WHERE id IN ({marks})", list(ids))

    def waiting(self, excluding: Sequence[str]) -> tuple[int, float | None]:
        with self.connect() as db:
            marks = ",".join("?" * len(excluding))
            found: tuple[int, float | None] = db.execute(
                f"SELECT COUNT(*), MIN(created_at) FROM {OUTBOX_TABLE} WHERE id NOT IN ({marks})",
                list(excluding),
            ).fetchone()
        return found

    def insert(self, row_id: str, created_at: float) -> None:
        """A row written at ``created_at`` (seconds since the epoch)."""
        with self.connect() as db:
            db.execute(
                f"INSERT INTO {OUTBOX_TABLE} (id, tags, created_at) VALUES (?, '[]', ?)",
                (row_id, created_at),
            )

    def rows(self) -> list[tuple[str, list[str]]]:
        with self.connect() as db:
            found = db.execute(f"SELECT id, tags FROM {OUTBOX_TABLE} ORDER BY id").fetchall()
        return [(row_id, parse_tags(tags)) for row_id, tags in found]


@pytest.fixture
def outbox(tmp_path: Path) -> SqliteOutbox:
    return SqliteOutbox(tmp_path / "app.sqlite3")


@pytest.fixture
def cache(redis_url: str) -> Iterator[Cache]:
    with Cache(redis_url, namespace="outbox") as made:
        yield made


def relay_for(cache: Cache, outbox: SqliteOutbox) -> OutboxRelay:
    return OutboxRelay(
        outbox,
        landed_invalidation(cache),
        lambda: cache.lock("outbox-relay", timeout=10, blocking=False),
    )


def test_an_outbox_row_keeps_the_tables_not_the_rows() -> None:
    assert outbox_tags(["db:r:shop_product:3", "db:r:shop_product:4", "db:t:shop_order"]) == [
        "db:a:shop_order",
        "db:a:shop_product",
        "db:t:shop_order",
        "db:t:shop_product",
    ]
    assert outbox_tags([ALL_TABLES, "catalog"]) == ["catalog", ALL_TABLES]
    assert outbox_tags(["db:a:t"]) == ["db:a:t", "db:t:t"]


def test_one_row_per_transaction_updated_only_for_a_table_not_seen_yet() -> None:
    row = OutboxRow()
    first = outbox_write(row, ["db:t:a", "db:r:a:1"])
    assert first is not None
    assert first.insert
    assert outbox_write(row, ["db:r:a:2", "db:t:a"]) is None  # another row of the same table
    second = outbox_write(row, ["db:t:b"])
    assert second is not None
    assert not second.insert
    assert second.id == first.id
    assert parse_tags(second.tags_json) == ["db:a:a", "db:a:b", "db:t:a", "db:t:b"]


def test_a_row_taken_out_by_a_savepoint_rollback_comes_back_whole_under_a_new_id() -> None:
    row = OutboxRow()
    first = outbox_write(row, ["db:t:a"])
    assert first is not None
    row.stored = False  # the adapter saw ROLLBACK TO SAVEPOINT
    again = outbox_write(row, ["db:t:b"])
    assert again is not None
    assert again.insert
    assert again.id != first.id
    assert parse_tags(again.tags_json) == ["db:a:a", "db:a:b", "db:t:a", "db:t:b"]


def test_an_unreadable_row_invalidates_every_table_rather_than_nothing() -> None:
    assert parse_tags("not json") == [ALL_TABLES]
    assert parse_tags('{"a": 1}') == [ALL_TABLES]
    assert parse_tags("[1, 2]") == [ALL_TABLES]
    assert parse_tags('["db:t:a"]') == ["db:t:a"]


def test_rows_a_rolled_back_transaction_wrote_are_not_there(outbox: SqliteOutbox) -> None:
    db = outbox.connect()
    db.execute("BEGIN")
    outbox.write(db, OutboxRow(), ["db:t:shop_product"])
    db.rollback()
    db.close()
    assert outbox.rows() == []


def test_the_relay_delivers_what_a_dead_writer_left_and_deletes_it(
    outbox: SqliteOutbox, cache: Cache
) -> None:
    loads: list[int] = []

    def load() -> str:
        loads.append(1)
        return f"price {len(loads)}"

    tags = stored_tags(["db:r:shop_product:3"], lambda table: ())  # as the adapters store it
    assert cache.get_or_load("product:3", load, tags=tags) == "price 1"
    # A writer commits its data and its outbox row, then dies before invalidating.
    with outbox.connect() as db:
        outbox.write(db, OutboxRow(), ["db:r:shop_product:3"])
    assert cache.get_or_load("product:3", load, tags=tags) == "price 1"
    relay = relay_for(cache, outbox)
    assert relay.relay_once() == 0  # within the grace: the writer's own to deliver
    assert relay.relay_once(grace=0) == 1
    assert outbox.rows() == []
    # The table's "rows unknown" tag reached the entry tagged with one of its rows.
    assert cache.get_or_load("product:3", load, tags=tags) == "price 2"


def test_rows_stay_while_the_cache_cannot_take_the_invalidation(outbox: SqliteOutbox) -> None:
    with RedisServer() as server:
        cache = Cache(server.url, namespace="outbox")
        with outbox.connect() as db:
            outbox.write(db, OutboxRow(), ["db:t:shop_order"])
        relay = relay_for(cache, outbox)
        server.stop()
        assert relay.relay_once(grace=0) == 0  # never raises; the row waits
        assert len(outbox.rows()) == 1
        server.start()
        cache.close(flush_timeout=5)  # applies what it queued meanwhile
        cache = Cache(server.url, namespace="outbox")
        assert relay_for(cache, outbox).relay_once(grace=0) == 1
        assert outbox.rows() == []
        cache.close()


def test_rows_delivered_after_their_commit_go_in_one_delete(
    outbox: SqliteOutbox, cache: Cache
) -> None:
    relay = relay_for(cache, outbox)
    rows = []
    for table in ("a", "b", "c"):
        row = OutboxRow()
        with outbox.connect() as db:
            outbox.write(db, row, [f"db:t:{table}"])
        rows.append(row)
    for row in rows:  # each writer invalidated after its commit
        relay.delivered(row.id)
    assert relay.relay_once() == 0
    assert outbox.rows() == []
    assert outbox.deletes == 1


def test_a_relay_that_leaves_deletes_to_the_writers_never_writes_nor_relays_them(
    outbox: SqliteOutbox, cache: Cache
) -> None:
    relay = OutboxRelay(
        outbox,
        landed_invalidation(cache),
        lambda: cache.lock("outbox-relay", timeout=10, blocking=False),
        deletes_delivered=False,
    )
    rows = []
    for table in ("a", "b"):
        row = OutboxRow()
        with outbox.connect() as db:
            outbox.write(db, row, [f"db:t:{table}"])
        relay.delivered(row.id)
        rows.append(row)
    assert relay.relay_once(grace=0) == 0  # delivered: not due, and not deleted here
    assert outbox.deletes == 0
    assert len(outbox.rows()) == 2
    taken = relay.take_delivered()
    assert taken == [row.id for row in rows]
    assert relay.take_delivered() == taken  # known until a commit says they are gone
    outbox.delete(taken)  # as the app's next writing transaction does
    relay.forget(taken)
    assert relay.take_delivered() == []
    assert relay.relay_once(grace=0) == 0
    assert outbox.rows() == []


def test_one_relayer_at_a_time_and_each_row_delivered(outbox: SqliteOutbox, cache: Cache) -> None:
    for number in range(1200):  # more than one batch
        with outbox.connect() as db:
            outbox.write(db, OutboxRow(), [f"db:t:t{number % 7}"])
    relays = [relay_for(cache, outbox) for _ in range(4)]
    start = threading.Barrier(len(relays))

    def run(relay: OutboxRelay) -> None:
        start.wait()
        relay.relay_once(grace=0)

    threads = [threading.Thread(target=run, args=(relay,)) for relay in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    delivered = [relay.relayed for relay in relays]
    assert sum(delivered) == 1200
    assert sorted(delivered)[:-1] == [0, 0, 0]  # the lease: one relayer did it all
    assert outbox.rows() == []


def test_a_started_relay_delivers_on_its_own_and_stops(outbox: SqliteOutbox, cache: Cache) -> None:
    relay = OutboxRelay(
        outbox,
        landed_invalidation(cache),
        lambda: cache.lock("outbox-relay", timeout=10, blocking=False),
        every=0.05,
        grace=0,
    )
    relay.start()
    try:
        with outbox.connect() as db:
            outbox.write(db, OutboxRow(), ["db:t:a"])
        stopped = threading.Event()
        for _ in range(200):
            if not outbox.rows():
                stopped.set()
                break
            stopped.wait(0.05)
        assert stopped.is_set()
    finally:
        relay.stop()
    assert relay.relayed == 1


WRITTEN_AT = 1_000_000.0  # when a row says it was written (seconds since the epoch)


def test_the_backlog_is_what_waits_but_the_rows_known_delivered(
    outbox: SqliteOutbox, cache: Cache
) -> None:
    relay = OutboxRelay(
        outbox,
        landed_invalidation(cache),
        lambda: cache.lock("outbox-relay", timeout=10, blocking=False),
        batch=2,
        deletes_delivered=False,  # delivered rows stay in the table, as on SQLite
    )
    assert relay.backlog() == OutboxBacklog(rows=0, oldest_age=None)
    outbox.insert("delivered-1", WRITTEN_AT - 20)
    outbox.insert("delivered-2", WRITTEN_AT - 10)
    outbox.insert("left", WRITTEN_AT)
    assert outbox.waiting(["delivered-1"]) == (2, WRITTEN_AT - 10)
    relay.delivered("delivered-1")
    relay.delivered("delivered-2")
    backlog = relay.backlog()
    assert backlog.rows == 1
    assert backlog.oldest_age is not None
    assert backlog.oldest_age >= 1_700_000_000 - WRITTEN_AT  # written in 1970
    relay.delivered("left")  # more than a batch known: the ones past it count
    assert relay.backlog().rows == 1
    relay.forget(["delivered-1", "delivered-2"])
    outbox.delete(["delivered-1", "delivered-2"])
    assert relay.backlog() == OutboxBacklog(rows=0, oldest_age=None)


def test_a_row_from_a_clock_ahead_is_no_younger_than_zero(
    outbox: SqliteOutbox, cache: Cache
) -> None:
    outbox.insert("ahead", 4_000_000_000.0)  # another host's clock, far ahead
    assert relay_for(cache, outbox).backlog() == OutboxBacklog(rows=1, oldest_age=0.0)


def test_after_a_relay_nothing_waits(outbox: SqliteOutbox, cache: Cache) -> None:
    outbox.insert("dead-writers", WRITTEN_AT)
    relay = relay_for(cache, outbox)
    assert relay.backlog().rows == 1
    assert relay.relay_once(grace=0) == 1
    assert relay.backlog() == OutboxBacklog(rows=0, oldest_age=None)
