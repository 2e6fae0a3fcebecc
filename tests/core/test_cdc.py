"""Change data capture from a real, throwaway PostgreSQL 15: writes made outside the app (as
psql would), by triggers and by stored procedures invalidate the ORM hooks' table and row
tags; the slot advances only after the invalidations landed, so a consumer killed mid-way
loses nothing. No timing assertions: waits have deadlines, assertions are on values."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psycopg
import pytest

from cacheplug import Cache, MemoryStore
from cacheplug.integration import (
    PostgresChangeFeed,
    change_tags,
    landed_invalidation,
    row_tag,
    table_tag,
)
from cacheplug.integration._cdc_wire import decode
from cacheplug.testing import PostgresServer

SECRET = "test-secret-key-not-for-production"

_names = itertools.count()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def db(postgres: PostgresServer) -> Iterator[psycopg.Connection]:
    """A connection from outside the app (what psql would do), in autocommit."""
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        yield conn


_feeds: list[PostgresChangeFeed] = []


@pytest.fixture
def slot(postgres: PostgresServer) -> Iterator[str]:
    """A slot name of the test's own; its feeds are closed and the slot dropped after it."""
    name = f"test_{next(_names)}"
    yield name
    while _feeds:
        _feeds.pop().close()
    deadline = time.monotonic() + 10
    while True:  # once the closed feeds' WAL senders let go of it
        try:
            PostgresChangeFeed(postgres.dsn, Recorder(), slot=name).drop_slot()
            break
        except psycopg.errors.ObjectInUse:
            assert time.monotonic() < deadline
            time.sleep(0.05)


class Recorder:
    """An ``invalidate`` that records the tags and says they landed (or not)."""

    def __init__(self) -> None:
        self.tags: list[str] = []
        self.landing = True

    def __call__(self, tags: Sequence[str]) -> bool:
        if self.landing:
            self.tags.extend(tags)
        return self.landing


def feed_of(
    postgres: PostgresServer, slot: str, invalidate: Callable[..., bool]
) -> PostgresChangeFeed:
    feed = PostgresChangeFeed(postgres.dsn, invalidate, slot=slot, backoff=0.05, max_backoff=0.5)
    _feeds.append(feed)
    feed.poll()  # creates the slot: what is written from now on is captured
    return feed


def poll_until(
    feed: PostgresChangeFeed, condition: Callable[[], bool], timeout: float = 10
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not seen before the deadline"
        feed.poll(0.1)


def wait_for(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not seen before the deadline"
        time.sleep(0.02)


def test_decoding_reads_quoted_names_and_values() -> None:
    line = (
        'table "My Schema"."odd ""t""": UPDATE: old-key: "k 1"[text]:\'a\'\'b c\' id[integer]:7'
        " new-tuple: \"k 1\"[text]:'x' id[integer]:8 tags[text[]]:'{a,b}' gone[text]:null"
    )
    action, tables, old, new = decode(line)
    assert (action, tables) == ("UPDATE", [("My Schema", 'odd "t"')])
    assert old == {"k 1": "a'b c", "id": "7"}
    assert new == {"k 1": "x", "id": "8", "tags": "{a,b}", "gone": None}
    assert decode("table public.a, public.b: TRUNCATE: restart_seqs cascade")[:2] == (
        "TRUNCATE",
        [("public", "a"), ("public", "b")],
    )
    assert decode("table public.t: DELETE: (no-tuple-data)")[2:] == ({}, {})
    assert decode("BEGIN") is None
    assert decode("COMMIT") is None


def test_a_write_from_outside_reloads_the_cached_value(
    postgres: PostgresServer, db: psycopg.Connection, slot: str
) -> None:
    db.execute("CREATE TABLE item (id integer PRIMARY KEY, name text)")
    db.execute("INSERT INTO item VALUES (1, 'old'), (2, 'other')")
    cache = Cache(MemoryStore(), namespace="cdc")

    def load() -> str:
        row = db.execute("SELECT name FROM item WHERE id = 1").fetchone()
        assert row is not None
        return str(row[0])

    def cached() -> str:
        return cache.get_or_load("item:1", load, ttl=600, tags=[row_tag("item", "1")])

    feed = feed_of(postgres, slot, landed_invalidation(cache))
    assert cached() == "old"
    runner = threading.Thread(target=feed.run)
    runner.start()
    try:
        with psycopg.connect(postgres.dsn) as other:  # another client commits an UPDATE
            other.execute("UPDATE item SET name = 'new' WHERE id = 1")
        wait_for(lambda: cached() == "new")
    finally:
        feed.stop()
        runner.join(10)
    assert not runner.is_alive()
    cache.close()


def test_insert_update_delete_truncate_and_rollback(
    postgres: PostgresServer, db: psycopg.Connection, slot: str
) -> None:
    db.execute("CREATE TABLE a (id integer PRIMARY KEY, v text)")
    db.execute("CREATE TABLE b (id integer PRIMARY KEY)")
    db.execute("CREATE TABLE nokey (v text)")
    recorder = Recorder()
    feed = feed_of(postgres, slot, recorder)
    db.execute("INSERT INTO a VALUES (1, 'x'), (2, 'y')")
    db.execute("UPDATE a SET id = 3 WHERE id = 2")  # the key changes: both rows
    db.execute("DELETE FROM a WHERE id = 1")
    db.execute("INSERT INTO nokey VALUES ('z')")

    def savepoint_rolled_back() -> None:
        with db.transaction():
            db.execute("INSERT INTO a VALUES (41, 'undone')")
            db.execute("INSERT INTO a VALUES (41, 'twice')")

    def rolled_back() -> None:
        with db.transaction():
            db.execute("INSERT INTO a VALUES (50, 'never')")
            db.execute("SELECT 1 / 0")

    with db.transaction():  # a rolled back transaction and savepoint write nothing
        db.execute("INSERT INTO a VALUES (40, 'kept')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            savepoint_rolled_back()
    with pytest.raises(psycopg.errors.DivisionByZero):
        rolled_back()
    db.execute("TRUNCATE a, b")
    poll_until(feed, lambda: "db:a:b" in recorder.tags)
    rows = {tag for tag in recorder.tags if tag.startswith("db:r:")}
    assert rows == {f"db:r:a:{key}" for key in (1, 2, 3, 40)}
    assert {table_tag("a"), table_tag("nokey"), "db:a:nokey", "db:a:a", "db:a:b"} <= set(
        recorder.tags
    )
    assert change_tags("a", ("1",)) == ["db:t:a", "db:r:a:1"]


def test_writes_of_a_trigger_and_a_procedure(
    postgres: PostgresServer, db: psycopg.Connection, slot: str
) -> None:
    db.execute(
        "CREATE TABLE price (sku text, shop integer, cents integer, PRIMARY KEY (sku, shop))"
    )
    db.execute("CREATE TABLE audit (id serial PRIMARY KEY, sku text)")
    db.execute(
        "CREATE FUNCTION audited() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN INSERT INTO audit (sku) VALUES (NEW.sku); RETURN NEW; END $$"
    )
    db.execute(
        "CREATE TRIGGER audit_price AFTER UPDATE ON price FOR EACH ROW EXECUTE FUNCTION audited()"
    )
    db.execute(
        "CREATE PROCEDURE reprice(s text, c integer) LANGUAGE sql AS $$"
        " UPDATE price SET cents = c WHERE sku = s $$"
    )
    db.execute("INSERT INTO price VALUES ('it''s', 1, 100), ('b', 2, 5)")
    recorder = Recorder()
    feed = feed_of(postgres, slot, recorder)
    db.execute("CALL reprice('it''s', 90)")  # the procedure's UPDATE fires the trigger
    poll_until(feed, lambda: "db:r:audit:1" in recorder.tags)
    assert "db:r:price:it's,1" in recorder.tags
    assert "db:r:price:b,2" not in recorder.tags


def test_the_slot_advances_only_after_the_invalidations_landed(
    postgres: PostgresServer, db: psycopg.Connection, slot: str
) -> None:
    db.execute("CREATE TABLE landed (id integer PRIMARY KEY)")
    recorder = Recorder()
    feed = feed_of(postgres, slot, recorder)
    recorder.landing = False
    db.execute("INSERT INTO landed VALUES (7)")
    with pytest.raises(Exception, match="did not land"):
        poll_until(feed, lambda: False, timeout=10)
    feed.close()
    recorder.landing = True
    again = Recorder()
    poll_until(feed_of(postgres, slot, again), lambda: "db:r:landed:7" in again.tags)
    lag = feed.lag()
    assert lag is not None
    assert lag.slot == slot


def test_lag_grows_while_nobody_reads_and_drop_slot_removes_it(
    postgres: PostgresServer, db: psycopg.Connection, slot: str
) -> None:
    db.execute("CREATE TABLE big (id integer PRIMARY KEY, v text)")
    feed = feed_of(postgres, slot, Recorder())
    feed.close()
    db.execute("INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g")
    lag = feed.lag()
    assert lag is not None
    assert lag.unconfirmed_bytes > 500_000
    assert lag.retained_bytes > 500_000
    assert feed.drop_slot() is True
    assert feed.lag() is None
    assert feed.drop_slot() is False


def test_a_lost_connection_reconnects(
    postgres: PostgresServer, db: psycopg.Connection, slot: str
) -> None:
    db.execute("CREATE TABLE lost (id integer PRIMARY KEY)")
    recorder = Recorder()
    feed = feed_of(postgres, slot, recorder)
    runner = threading.Thread(target=feed.run)
    runner.start()
    try:
        for key in (1, 2):
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'cacheplug-cdc'"
            )
            db.execute("INSERT INTO lost VALUES (%s)", (key,))
            wait_for(lambda key=key: f"db:r:lost:{key}" in recorder.tags)
    finally:
        feed.stop()
        runner.join(10)


def peeked(db: psycopg.Connection, slot: str) -> int:
    """The UPDATEs still in the slot (once the killed consumer's WAL sender let go of it)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            row = db.execute(
                "SELECT count(*) FROM pg_logical_slot_peek_changes(%s, NULL, NULL)"
                " WHERE data LIKE 'table public.stock: UPDATE:%%'",
                (slot,),
            ).fetchone()
            assert row is not None
            return int(row[0])
        except psycopg.errors.ObjectInUse:
            assert time.monotonic() < deadline
            time.sleep(0.05)


CONSUMER = """
import signal, sys, time
from cacheplug import Cache
from cacheplug.integration import PostgresChangeFeed, landed_invalidation
dsn, slot, url, secret, marker = sys.argv[1:]
cache = Cache(url, namespace="cdc", secret=secret)
landed = landed_invalidation(cache)
def invalidate(tags):
    if marker != "-":  # a consumer that dies between the invalidation and the advance
        landed(tags)
        open(marker, "w").write(" ".join(tags))
        time.sleep(600)
    return landed(tags)
feed = PostgresChangeFeed(dsn, invalidate, slot=slot, status_interval=1.0)
signal.signal(signal.SIGTERM, lambda *_: feed.stop())
print("ready", flush=True)
feed.run()
cache.close()
print("stopped", flush=True)
"""


def consumer(
    postgres: PostgresServer, slot: str, redis_url: str, marker: str = "-"
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, postgres.dsn, slot, redis_url, SECRET, marker],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    return process


def test_a_killed_consumer_loses_nothing_and_sigterm_stops_cleanly(
    postgres: PostgresServer, db: psycopg.Connection, slot: str, redis_url: str, tmp_path: Path
) -> None:
    db.execute("CREATE TABLE stock (id integer PRIMARY KEY, n integer)")
    db.execute("INSERT INTO stock VALUES (1, 10), (2, 20)")
    feed_of(postgres, slot, Recorder()).close()  # the slot, from now on
    cache = Cache(redis_url, namespace="cdc", secret=SECRET)

    def stock(key: int) -> int:
        def load() -> int:
            row = db.execute("SELECT n FROM stock WHERE id = %s", (key,)).fetchone()
            assert row is not None
            return int(row[0])

        return cache.get_or_load(f"stock:{key}", load, ttl=600, tags=[row_tag("stock", str(key))])

    assert (stock(1), stock(2)) == (10, 20)
    # 1. Killed after invalidating, before advancing: the change stays in the slot.
    marker = tmp_path / "invalidated"
    dying = consumer(postgres, slot, redis_url, str(marker))
    db.execute("UPDATE stock SET n = 11 WHERE id = 1")
    wait_for(marker.exists)
    dying.send_signal(signal.SIGKILL)
    dying.wait()
    assert peeked(db, slot) == 1
    # 2. A write made while no consumer runs is seen once one starts again.
    db.execute("UPDATE stock SET n = 21 WHERE id = 2")
    assert stock(2) == 20
    restarted = consumer(postgres, slot, redis_url)
    try:
        wait_for(lambda: stock(2) == 21)
        assert stock(1) == 11
        lag = PostgresChangeFeed(postgres.dsn, Recorder(), slot=slot).lag
        wait_for(lambda: getattr(lag(), "unconfirmed_bytes", None) == 0)  # all confirmed
    finally:
        restarted.send_signal(signal.SIGTERM)
        out, _ = restarted.communicate(timeout=15)
    assert restarted.returncode == 0
    assert out == "stopped\n"
    assert os.path.exists(marker)
    cache.close()


def test_a_slot_past_the_threshold_is_warned_about(
    postgres: PostgresServer, db: psycopg.Connection, slot: str, caplog: pytest.LogCaptureFixture
) -> None:
    db.execute("CREATE TABLE warned (id integer PRIMARY KEY)")
    feed_of(postgres, slot, Recorder()).close()
    db.execute("INSERT INTO warned SELECT generate_series(1, 1000)")
    feed = PostgresChangeFeed(postgres.dsn, Recorder(), slot=slot, warn_lag_bytes=1000)
    _feeds.append(feed)
    runner = threading.Thread(target=feed.run)
    with caplog.at_level("WARNING", logger="cacheplug.cdc"):
        runner.start()
        wait_for(lambda: "max_slot_wal_keep_size" in caplog.text)
        feed.stop()
        runner.join(10)
    assert not runner.is_alive()


def test_the_consumer_comes_back_after_the_server_crashed() -> None:
    recorder = Recorder()
    with PostgresServer() as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE crash (id integer PRIMARY KEY)")
        feed = feed_of(server, "crash", recorder)
        runner = threading.Thread(target=feed.run)
        runner.start()
        try:
            server.kill()  # SIGKILL: the postmaster and its backends
            server.start()  # crash recovery, same port and data
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                conn.execute("INSERT INTO crash VALUES (1)")
            wait_for(lambda: "db:r:crash:1" in recorder.tags)
        finally:
            feed.stop()
            runner.join(10)
            _feeds.remove(feed)
    assert not runner.is_alive()
