"""Issue 18's acceptance numbers: the change data capture consumer's commit-to-invalidation
latency at 1,000 writes/s (goal: p99 at most 100 ms), then what the transactional outbox costs
a write.

    python benchmarks/cdc.py [--rate 1000] [--seconds 5] [--skip-outbox]
                             [--outbox-rounds 9] [--outbox-ops 100]

1. A throwaway PostgreSQL (``cacheplug.testing.PostgresServer``, ``fsync`` and
   ``synchronous_commit`` on, as in production) and a throwaway Redis
   (``cacheplug.testing.RedisServer``). A writer process, with its own autocommitted
   connection, commits one-row UPDATEs paced by a schedule (write ``n`` is due at
   ``start + n / rate``, so a slow commit is caught up on, not added to every later one), each
   to a row of its own, for ``--seconds``. The consumer is the real one:
   ``cacheplug.integration.change_feed`` (a ``PostgresChangeFeed`` invalidating through
   ``landed_invalidation``) running in a thread of this process. Its ``invalidate`` is wrapped:
   once the real invalidation returned True (landed in Redis), every row tag of the batch is
   stamped. A write's latency is that stamp minus the time its ``COMMIT`` returned in the writer
   (``time.time``: the two are different processes).

   The floor row is the same invalidation called by the writer right after each commit, as
   the ORM hooks do (no CDC), in the same run: the CDC row is printed as a ratio to it, and
   its p99 as a fraction of the goal. A write whose invalidation the consumer never delivered
   (within 10 s after the last write) is counted as unseen: it must be 0.

2. ``benchmarks/outbox_cost.py --rounds 9 --ops 100`` (SQLite, then PostgreSQL with fsync on)
   in a subprocess, its output printed as is (``--skip-outbox`` leaves it out).

The writer is a process of its own so that it and the consumer do not share a GIL: each
would otherwise hold up the other, and the numbers would be Python's, not the pipeline's.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import psycopg

from cacheplug import Cache
from cacheplug.integration import change_feed, change_tags, landed_invalidation, row_tag
from cacheplug.testing import PostgresServer, RedisServer

HERE = Path(__file__).resolve().parent
TABLE = "cdc_bench"
NAMESPACE = "cdc-bench"
SLOT = "cdc_bench"
GOAL_MS = 100.0
DRAIN_SECONDS = 10.0  # how long the consumer may take after the last write before "unseen"


@dataclass
class Writes:
    """What the writer reports, for each write ``n`` in order (row key ``first + n``): when
    its COMMIT returned (wall clock, compared with the consumer's), how long the statement
    took, how long the direct invalidation took after it (monotonic, same process), and how
    late on its schedule the write started."""

    committed: list[float]
    commit_ms: list[float]
    direct_ms: list[float]
    behind_ms: list[float]

    def rate(self) -> float:
        """Writes per second achieved: between the first commit and the last."""
        span = self.committed[-1] - self.committed[0]
        return (len(self.committed) - 1) / span if span > 0 else math.nan


def write(
    dsn: str, redis_url: str, first: int, rate: float, seconds: float, out: Connection
) -> None:
    """The writer process: paced one-row UPDATEs, each followed by the ORM hook's invalidation
    of its tags (the floor), on a cache of its own."""
    cache = Cache(redis_url, namespace=NAMESPACE)
    invalidate = landed_invalidation(cache)
    count = int(rate * seconds)
    committed: list[float] = []
    commit_ms: list[float] = []
    direct_ms: list[float] = []
    behind_ms: list[float] = []
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            # A first statement outside the schedule: the connection's own warm-up (the
            # prepared statement, the first round trip to Redis) is not a write's latency.
            conn.execute(f"UPDATE {TABLE} SET n = n WHERE id = %s", (first - 1,), prepare=True)
            invalidate(change_tags(TABLE, (str(first - 1),)))
            began = time.monotonic()
            for n in range(count):
                due = began + n / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                started = time.monotonic()
                behind_ms.append(max(0.0, started - due) * 1000)
                key = first + n
                conn.execute(f"UPDATE {TABLE} SET n = n + 1 WHERE id = %s", (key,), prepare=True)
                done = time.monotonic()
                committed.append(time.time())
                commit_ms.append((done - started) * 1000)
                # The tags the hooks would give this write: the feed's, computed the same way.
                if not invalidate(change_tags(TABLE, (str(key),))):
                    raise RuntimeError(f"the direct invalidation of row {key} did not land")
                direct_ms.append((time.monotonic() - done) * 1000)
    finally:
        cache.close()
    out.send(Writes(committed, commit_ms, direct_ms, behind_ms))
    out.close()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value at least ``fraction`` of ``values`` are not above."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def drop_slot(drop: Callable[[], bool]) -> None:
    """Drop the slot; its WAL sender may take a moment to let go after the feed stopped."""
    deadline = time.monotonic() + 5
    while True:
        try:
            drop()
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def cdc_latency(rate: float, seconds: float) -> None:
    count = int(rate * seconds)
    first = 1
    with (
        PostgresServer(settings={"fsync": "on", "synchronous_commit": "on"}) as server,
        RedisServer() as redis_server,
        psycopg.connect(server.dsn, autocommit=True) as conn,
    ):
        row = conn.execute("SHOW server_version").fetchone()
        version = str(row[0]).split()[0] if row else "?"
        # One row per write (and one for the writer's warm-up): every row tag names one write.
        conn.execute(f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, n bigint NOT NULL)")
        conn.execute(
            f"INSERT INTO {TABLE} SELECT i, 0 FROM generate_series(%s::bigint, %s::bigint) i",
            (first - 1, first + count - 1),
        )
        landed: dict[str, float] = {}
        cache = Cache(redis_server.url, namespace=NAMESPACE)
        feed = change_feed(cache, server.dsn, slot=SLOT, tags_for=change_tags)
        real = feed.invalidate

        def stamped(tags: list[str]) -> bool:
            done = real(tags)
            if done:  # only an invalidation that landed counts; a retried one lands later
                now = time.time()
                for tag in tags:
                    landed.setdefault(tag, now)  # at-least-once: the first landing counts
            return done

        feed.invalidate = stamped
        feed.poll()  # connects and creates the slot now: the table's rows are before it
        consumer = threading.Thread(target=feed.run, name="cdc-consumer")
        consumer.start()
        try:
            context = multiprocessing.get_context("spawn")  # no fork of a threaded process
            receive, send = context.Pipe(duplex=False)
            writer = context.Process(
                target=write, args=(server.dsn, redis_server.url, first, rate, seconds, send)
            )
            writer.start()
            send.close()
            writes: Writes = receive.recv()
            writer.join()
            tags = [row_tag(TABLE, str(first + n)) for n in range(count)]
            deadline = time.monotonic() + DRAIN_SECONDS
            while time.monotonic() < deadline and not all(tag in landed for tag in tags):
                time.sleep(0.05)
        finally:
            feed.stop()
            consumer.join()
            drop_slot(feed.drop_slot)
            cache.close()
    latencies = [
        (landed[tag] - at) * 1000
        for tag, at in zip(tags, writes.committed, strict=True)
        if tag in landed
    ]
    unseen = count - len(latencies)
    print(
        f"1. Commit-to-invalidation latency through the CDC consumer (PostgreSQL"
        f" {version}, fsync on; Redis)"
    )
    print(
        f"   {count} one-row UPDATEs scheduled at {rate:.0f}/s for {seconds:g} s:"
        f" {writes.rate():.1f} writes/s achieved"
    )
    # Why a run may miss its rate: slow commits (fsync), or a writer kept off the CPU.
    print(
        f"   writer: UPDATE+COMMIT p50 {statistics.median(writes.commit_ms):.2f} ms,"
        f" p99 {percentile(writes.commit_ms, 0.99):.2f} ms, max {max(writes.commit_ms):.2f} ms;"
        f" behind schedule p99"
        f" {percentile(writes.behind_ms, 0.99):.2f} ms, max {max(writes.behind_ms):.2f} ms"
    )
    floor50, floor99 = statistics.median(writes.direct_ms), percentile(writes.direct_ms, 0.99)
    print(
        f"   {'path':<36} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'unseen':>7}"
        f" {'p50/floor':>10} {'p99/floor':>10}"
    )
    if latencies:
        p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
        print(
            f"   {'CDC (PostgresChangeFeed)':<36} {p50:8.2f} {p99:8.2f} {max(latencies):8.2f}"
            f" {unseen:7d} {p50 / floor50:9.1f}x {p99 / floor99:9.1f}x"
        )
    else:
        p99 = math.inf
        print(f"   {'CDC (PostgresChangeFeed)':<36} {'-':>8} {'-':>8} {'-':>8} {unseen:7d}")
    print(
        f"   {'floor: invalidated by the writer':<36} {floor50:8.2f} {floor99:8.2f}"
        f" {max(writes.direct_ms):8.2f} {0:7d} {1:9.1f}x {1:9.1f}x"
    )
    print(f"   CDC p99 / goal ({GOAL_MS:.0f} ms): {p99 / GOAL_MS:.3f}; unseen writes: {unseen}")


def outbox_cost(rounds: int, ops: int) -> None:
    print(f"\n2. The outbox's cost (benchmarks/outbox_cost.py --rounds {rounds} --ops {ops})")
    sys.stdout.flush()  # before the subprocess writes to the same stream
    subprocess.run(
        [
            sys.executable,
            str(HERE / "outbox_cost.py"),
            "--rounds",
            str(rounds),
            "--ops",
            str(ops),
        ],
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000, help="writes per second")
    parser.add_argument("--seconds", type=float, default=5, help="how long the writer writes")
    parser.add_argument("--skip-outbox", action="store_true", help="leave out part 2")
    parser.add_argument("--outbox-rounds", type=int, default=9)
    parser.add_argument("--outbox-ops", type=int, default=100)
    options = parser.parse_args()
    cdc_latency(options.rate, options.seconds)
    if not options.skip_outbox:
        outbox_cost(options.outbox_rounds, options.outbox_ops)


if __name__ == "__main__":
    main()
