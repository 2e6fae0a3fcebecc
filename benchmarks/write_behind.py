"""Write-behind against writing synchronously: what a request waits for, and how fast the
queue drains into a database.

    python benchmarks/write_behind.py [--writes N] [--keys K] [--batch B] [--no-postgres]

For SQLite (a file) and PostgreSQL (a throwaway server started with ``initdb`` as the
``postgres`` user, when this runs as root and PostgreSQL is installed), each of ``--writes``
increments (default 20,000 over 1,000 keys) is applied:

1. **synchronously**, as a request would without write-behind: one upsert and one commit per
   increment, recording the increment's id too (the same idempotent write as the sink's);
2. **through write-behind**: ``put`` into a Redis stream (what the request waits for), then
   a worker drains it into the database in batches of ``--batch`` (one transaction each),
   the increments of a key within a batch summed into one write (``merge=operator.add``);
3. the same drain with batches ten times larger, where coalescing leaves one write per key
   and batch (``--keys`` writes instead of ``--batch * 10``).

It prints writes/s for each, and the ratios against the synchronous writes measured in the
same run. Target (issue 8): none set; the figures say what the queue buys.
"""

from __future__ import annotations

import argparse
import operator
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cacheplug import Cache, QueuedWrite
from cacheplug.testing import RedisServer

SECRET = "write-behind-benchmark"


class Database:
    """The two statements every variant runs, per increment: record its id, add it."""

    def __init__(self, connect: Callable[[], Any], placeholder: str) -> None:
        self.connect = connect
        p = placeholder
        self.record = f"INSERT INTO applied (id) VALUES ({p}) ON CONFLICT DO NOTHING"
        self.add = (
            f"INSERT INTO totals (key, total) VALUES ({p}, {p}) "
            "ON CONFLICT (key) DO UPDATE SET total = totals.total + excluded.total"
        )

    def reset(self) -> None:
        with self.connect() as connection:
            cursor = connection.cursor()
            cursor.execute("DROP TABLE IF EXISTS applied")
            cursor.execute("DROP TABLE IF EXISTS totals")
            cursor.execute("CREATE TABLE applied (id TEXT PRIMARY KEY)")
            cursor.execute("CREATE TABLE totals (key TEXT PRIMARY KEY, total INTEGER)")
            connection.commit()

    def total(self) -> int:
        with self.connect() as connection:
            cursor = connection.cursor()
            cursor.execute("SELECT COALESCE(SUM(total), 0) FROM totals")
            return int(cursor.fetchone()[0])


def synchronous(db: Database, writes: int, keys: int) -> float:
    """Seconds to apply ``writes`` increments one transaction each."""
    connection = db.connect()
    cursor = connection.cursor()
    started = time.perf_counter()
    for i in range(writes):
        cursor.execute(db.record, (f"sync-{i}",))
        cursor.execute(db.add, (f"article:{i % keys}", 1))
        connection.commit()
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def through_the_queue(
    db: Database, redis_url: str, writes: int, keys: int, batch: int
) -> tuple[float, float]:
    """(seconds the puts took, seconds the drain took)."""
    connection = db.connect()
    cursor = connection.cursor()

    def sink(entries: list[QueuedWrite]) -> None:
        for entry in entries:
            cursor.execute(db.record, (entry.id,))
            cursor.execute(db.add, (entry.key, entry.value))
        connection.commit()

    cache = Cache(redis_url, namespace=f"wb-{time.monotonic_ns()}", secret=SECRET)
    queue = cache.write_behind(
        "counts", sink, merge=operator.add, batch_size=batch, max_length=writes + 1
    )
    started = time.perf_counter()
    for i in range(writes):
        queue.put(f"article:{i % keys}", 1)
    put_time = time.perf_counter() - started
    started = time.perf_counter()
    while queue.drain("bench"):
        pass
    drain_time = time.perf_counter() - started
    cache.close()
    connection.close()
    return put_time, drain_time


def report(name: str, db: Database, redis_url: str, writes: int, keys: int, batch: int) -> None:
    db.reset()
    sync_time = synchronous(db, writes, keys)
    assert db.total() == writes
    db.reset()
    put_time, drain_time = through_the_queue(db, redis_url, writes, keys, batch)
    assert db.total() == writes, "the drain lost or doubled writes"
    db.reset()
    _, coalesced_time = through_the_queue(db, redis_url, writes, keys, batch * 10)
    assert db.total() == writes, "the coalesced drain lost or doubled writes"
    base = writes / sync_time
    print(f"\n{name}: {writes:,} increments over {keys:,} keys")
    rows = [
        ("synchronous: one transaction per write", writes / sync_time),
        ("write-behind put (what a request waits for)", writes / put_time),
        (f"write-behind drain (batches of {batch})", writes / drain_time),
        ("write-behind put + drain, end to end", writes / (put_time + drain_time)),
        (f"write-behind drain (batches of {batch * 10}, coalesced)", writes / coalesced_time),
    ]
    for label, rate in rows:
        suffix = "(baseline)" if rate == base else ""
        print(f"  {label:<46} {rate:12,.0f} writes/s   {rate / base:6.2f}x {suffix}")


@contextmanager
def postgres() -> Iterator[str | None]:
    """A throwaway PostgreSQL server's connection string, or None if one cannot be run."""
    initdb = shutil.which("initdb") or "/usr/lib/postgresql/15/bin/initdb"
    pg_ctl = shutil.which("pg_ctl") or "/usr/lib/postgresql/15/bin/pg_ctl"
    if os.geteuid() != 0 or not Path(initdb).exists():
        yield None
        return
    data = Path(tempfile.mkdtemp(prefix="cacheplug-pg-"))
    shutil.chown(data, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def as_postgres(*command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True
        )

    try:
        as_postgres(initdb, "-D", str(data / "db"), "-A", "trust", "-U", "postgres")
        options = f"-p {port} -k {data} -c fsync=on -c listen_addresses=127.0.0.1"
        as_postgres(
            pg_ctl, "-D", str(data / "db"), "-o", options, "-l", str(data / "log"), "-w", "start"
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        yield None
        return
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        as_postgres(pg_ctl, "-D", str(data / "db"), "-m", "fast", "stop")
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}")
    with RedisServer(extra_args=("--appendonly", "yes", "--appendfsync", "always")) as server:
        print(
            "Redis with appendonly yes, appendfsync always (every put is on disk when it returns)"
        )
        folder = Path(tempfile.mkdtemp(prefix="cacheplug-wb-"))
        sqlite_db = Database(lambda: sqlite3.connect(folder / "totals.sqlite3"), "?")
        report("SQLite (a file)", sqlite_db, server.url, args.writes, args.keys, args.batch)
        shutil.rmtree(folder, ignore_errors=True)
        if args.no_postgres:
            return
        with postgres() as dsn:
            if dsn is None:
                print("\nPostgreSQL: not measured (needs root and an installed PostgreSQL)")
                return
            import psycopg

            pg_db = Database(lambda: psycopg.connect(dsn), "%s")
            report("PostgreSQL (fsync on)", pg_db, server.url, args.writes, args.keys, args.batch)


if __name__ == "__main__":
    main()
