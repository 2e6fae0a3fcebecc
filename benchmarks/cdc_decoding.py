"""Which logical decoding the CDC consumer reads (issue 18): commit-to-invalidation latency at
about 1,000 writes/s, for each candidate this machine can run, as ratios to the best.

    python benchmarks/cdc_decoding.py [--rate 1000] [--seconds 5] [--poll 0.02]

A throwaway PostgreSQL 15 (``cacheplug.testing.PostgresServer``) takes one-row INSERTs, each
its own transaction, from a writer paced at ``--rate``; the latency of a write is the time from
its COMMIT returning to the consumer having the row's key in hand (invalidated, for the real
consumer). Candidates:

- ``PostgresChangeFeed``: ``cacheplug.integration.PostgresChangeFeed`` itself (test_decoding), the
  consumer: a replication connection (``START_REPLICATION``) driven through libpq's COPY BOTH
  with psycopg's low-level ``pq`` module (psycopg 3 has no replication API); it parses each
  change, invalidates, then confirms.
- ``test_decoding, streamed bare`` / ``pgoutput, streamed bare``: the same connection driven
  by this file, only finding each row's key (pgoutput: in its binary messages, which need a
  publication): the plugins compared without the consumer's own work.
- ``test_decoding, polled`` / ``pgoutput, polled``: SQL polling, ``pg_logical_slot_peek_changes``
  (or ``_binary_changes``) then ``pg_replication_slot_advance``, sleeping ``--poll`` seconds
  when the slot had less than a batch: at-least-once for free, but the latency is the period.

wal2json is not built into PostgreSQL and not installed here (``ls $(pg_config --pkglibdir)``):
not measured. ``cpu ms/s`` is the consumer's own CPU plus its server backend's,
per second of run.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import statistics
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import pq

from cacheplug.integration import PostgresChangeFeed
from cacheplug.testing import PostgresServer

TABLE_ROW = re.compile(r"id\[bigint\]:(\d+)")
Seen = Callable[[int], None]


def backend_cpu(pid: int) -> float:
    """Seconds of CPU a server process used (user + system)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Run:
    """One candidate's run: the writer's commit times and the consumer's sighting times."""

    def __init__(self, first: int) -> None:
        self.first = first
        self.committed: dict[int, float] = {}
        self.seen: dict[int, float] = {}
        self.cpu = 0.0

    def saw(self, key: int) -> None:
        if key >= self.first and key not in self.seen:
            self.seen[key] = time.monotonic()


def pgoutput_keys(messages: Sequence[bytes], relations: dict[int, int], saw: Seen) -> None:
    """The inserted keys in pgoutput (protocol 1) messages; ``relations``: relation id -> the
    position of its key column, learnt from Relation messages."""
    for message in messages:
        kind = message[:1]
        if kind == b"R":
            relid = struct.unpack_from(">I", message, 1)[0]
            pos = message.index(b"\0", 5) + 1  # namespace
            pos = message.index(b"\0", pos) + 1 + 1  # name, replica identity
            ncols = struct.unpack_from(">H", message, pos)[0]
            pos += 2
            for column in range(ncols):
                if message[pos] & 1:
                    relations[relid] = column
                pos = message.index(b"\0", pos + 1) + 1 + 8
        elif kind == b"I":
            relid = struct.unpack_from(">I", message, 1)[0]
            pos = 1 + 4 + 1 + 2  # relid, 'N', column count
            for column in range(relations[relid] + 1):
                if message[pos : pos + 1] == b"t":
                    size = struct.unpack_from(">I", message, pos + 1)[0]
                    if column == relations[relid]:
                        saw(int(message[pos + 5 : pos + 5 + size]))
                    pos += 5 + size
                else:
                    pos += 1


def polled(dsn: str, slot: str, options: str, run: Run, stop: threading.Event, poll: float) -> None:
    """Peek (test_decoding text, or pgoutput's binary messages with ``options``), then
    advance: past what was read, or to the WAL flushed before an empty or partial peek."""
    relations: dict[int, int] = {}
    peek = "pg_logical_slot_peek_binary_changes" if options else "pg_logical_slot_peek_changes"
    start = time.thread_time()
    with psycopg.connect(dsn, autocommit=True) as conn:
        pid = conn.info.backend_pid
        server = backend_cpu(pid)
        while not stop.is_set():
            flushed = conn.execute("SELECT pg_current_wal_flush_lsn()").fetchone()[0]
            rows = conn.execute(
                f"SELECT lsn, data FROM {peek}(%s, NULL, 2000{options})", (slot,)
            ).fetchall()
            if options:
                pgoutput_keys([bytes(row[1]) for row in rows], relations, run.saw)
            else:
                for row in rows:
                    found = TABLE_ROW.search(row[1])
                    if found:
                        run.saw(int(found.group(1)))
            target = rows[-1][0] if rows and len(rows) >= 2000 else flushed
            conn.execute(
                "SELECT pg_replication_slot_advance(%s, %s::pg_lsn) FROM pg_replication_slots"
                " WHERE slot_name = %s AND confirmed_flush_lsn < %s::pg_lsn",
                (slot, target, slot, target),
            )
            if len(rows) < 2000:
                stop.wait(poll)
        run.cpu = time.thread_time() - start + backend_cpu(pid) - server


def streamed(dsn: str, slot: str, options: str, run: Run, stop: threading.Event) -> None:
    """A replication connection driven by hand, as the consumer does, but only finding the
    key: pgoutput's binary messages (``options``: its protocol and publication) or
    test_decoding's text (no options)."""
    relations: dict[int, int] = {}
    conn = pq.PGconn.connect(f"{dsn} replication=database".encode())
    assert conn.status == pq.ConnStatus.OK, conn.error_message
    result = conn.exec_(f"START_REPLICATION SLOT {slot} LOGICAL 0/0 {options}".encode())
    assert result.status == pq.ExecStatus.COPY_BOTH, conn.error_message
    start, server = time.thread_time(), backend_cpu(conn.backend_pid)
    received = 0
    while not stop.is_set():
        size, data = conn.get_copy_data(1)
        if size == 0:
            select.select([conn.socket], [], [], 0.1)
            conn.consume_input()
            continue
        assert size > 0, conn.error_message
        message = bytes(data)
        if message[:1] == b"w":  # XLogData: start, end, time, then the plugin's output
            received = struct.unpack_from(">Q", message, 1)[0]
            payload = message[25:]
            if options:
                pgoutput_keys([payload], relations, run.saw)
            else:
                found = TABLE_ROW.search(payload.decode())
                if found:
                    run.saw(int(found.group(1)))
        elif message[:1] == b"k" and message[17]:  # a keepalive asking for an answer
            conn.put_copy_data(b"r" + struct.pack(">QQQQB", received, received, received, 0, 0))
            conn.flush()
    run.cpu = time.thread_time() - start + backend_cpu(conn.backend_pid) - server
    conn.finish()


def feed(dsn: str, slot: str, run: Run, stop: threading.Event) -> None:
    """The consumer itself: cacheplug.integration.PostgresChangeFeed (test_decoding, streamed)."""

    def invalidate(tags: Sequence[str]) -> bool:
        for tag in tags:
            run.saw(int(tag))
        return True

    changes = PostgresChangeFeed(dsn, invalidate, slot=slot, tags_for=lambda table, key: key or ())
    changes.poll()
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_replication WHERE application_name = 'cacheplug-cdc'"
        ).fetchone()
        assert row is not None
        pid = row[0]
    start, server = time.thread_time(), backend_cpu(pid)
    stopper = threading.Thread(target=lambda: (stop.wait(), changes.stop()))
    stopper.start()
    changes.run()
    run.cpu = time.thread_time() - start + backend_cpu(pid) - server
    stopper.join()


def measure(
    server: PostgresServer,
    name: str,
    plugin: str,
    consume: Callable[..., None],
    args: dict[str, Any],
) -> Run:
    slot = re.sub(r"\W+", "_", name).lower()
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot(%s, %s)", (slot, plugin))
        first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM bench").fetchone()[0]
        run, stop = Run(first), threading.Event()
        consumer = threading.Thread(
            target=consume, args=(server.dsn, slot, *args["args"], run, stop, *args["after"])
        )
        consumer.start()
        time.sleep(0.5)
        rate, seconds = args["rate"], args["seconds"]
        began = time.monotonic()
        for n in range(int(rate * seconds)):
            delay = began + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.execute("INSERT INTO bench (id) VALUES (%s)", (first + n,))
            run.committed[first + n] = time.monotonic()
        deadline = time.monotonic() + 10
        while len(run.seen) < len(run.committed) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        consumer.join()
        run.cpu /= time.monotonic() - began
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--poll", type=float, default=0.02)
    options = parser.parse_args()
    common = {"rate": options.rate, "seconds": options.seconds}
    pgoutput = "(proto_version '1', publication_names 'bench')"
    candidates = [
        ("PostgresChangeFeed", "test_decoding", feed, (), ()),
        ("test_decoding, streamed bare", "test_decoding", streamed, ("",), ()),
        ("pgoutput, streamed bare", "pgoutput", streamed, (pgoutput,), ()),
        ("test_decoding, polled", "test_decoding", polled, ("",), (options.poll,)),
        (
            "pgoutput, polled",
            "pgoutput",
            polled,
            (", 'proto_version', '1', 'publication_names', 'bench'",),
            (options.poll,),
        ),
    ]
    results: dict[str, tuple[float, float, float, float]] = {}
    with PostgresServer() as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
            conn.execute("CREATE PUBLICATION bench FOR TABLE bench")
        print(
            f"{options.rate:.0f} commits/s for {options.seconds:.0f} s,"
            f" poll {options.poll * 1000:.0f} ms"
        )
        for name, plugin, consume, before, after in candidates:
            run = measure(server, name, plugin, consume, {**common, "args": before, "after": after})
            latencies = sorted(
                (run.seen[k] - t) * 1000 for k, t in run.committed.items() if k in run.seen
            )
            p50 = statistics.median(latencies)
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            results[name] = (p50, p99, len(run.seen) / len(run.committed), run.cpu * 1000)
    best50 = min(r[0] for r in results.values())
    best99 = min(r[1] for r in results.values())
    print(
        f"{'candidate':29} {'p50 ms':>8} {'p99 ms':>8} {'p50/best':>9} {'p99/best':>9}"
        f" {'seen':>6} {'cpu ms/s':>9}"
    )
    for name, (p50, p99, seen, cpu) in results.items():
        print(
            f"{name:29} {p50:8.2f} {p99:8.2f} {p50 / best50:9.2f} {p99 / best99:9.2f}"
            f" {seen:6.0%} {cpu:9.1f}"
        )


if __name__ == "__main__":
    main()
