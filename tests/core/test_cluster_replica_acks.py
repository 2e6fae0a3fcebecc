"""A replica slow to acknowledge is not an outage (issue 18, part 5).

A real 3+3 Redis Cluster, under load from the moment it serves every slot (its replicas
still in their first sync), then a replica paused (SIGSTOP: connected, acknowledging
nothing), a master SIGKILLed and failed over, and the killed node restarted as a replica
(a full resync). One writer process commits a new version of a row to SQLite and
invalidates the row's entry; two reader processes read the rows through their own caches.
The oracle (as ``_race_harness``, across processes: ``time.monotonic`` is one clock for the
machine): a read that started after the invalidation of version ``v`` returned never
returns a version older than ``v``. Before the fix a ``WAIT 1`` that timed out failed the
invalidation, the writer's circuit breaker opened, and its later invalidations were queued
without being sent while the readers kept reading the old entries.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from _race_harness import Invalidation, Oracle, Read

from cacheplug import Cache
from cacheplug.stores import RedisClusterStore
from cacheplug.stores.redis._acks import AcknowledgedWrites
from cacheplug.testing.cluster import RedisClusterSetup

SECRET = "cluster-acks-secret"
ROWS = 6
TTL = 60


def _key(row: int) -> str:
    return f"row:{row}"


def _connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)


def _writer(url: str, path: str, go: Any, stop: Any, results: Any) -> None:
    cache = Cache(url, namespace="acks", secret=SECRET)
    conn = _connect(path)
    rng = random.Random()
    invalidations: list[tuple[int, int, float]] = []
    errors: list[str] = []
    go.wait(60)
    while not stop.is_set():
        row = rng.randrange(ROWS)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE rows SET version = version + 1 WHERE id = ?", (row,))
            (version,) = conn.execute("SELECT version FROM rows WHERE id = ?", (row,)).fetchone()
            conn.execute("COMMIT")
            if row % 2:  # half by tag (a version bump), half by key (a delete)
                cache.invalidate_tags(_key(row))
            else:
                cache.delete(_key(row))
            invalidations.append((row, version, time.monotonic()))
        except BaseException as exc:  # anything reaching the caller is a failure
            errors.append(repr(exc))
        time.sleep(rng.uniform(0.001, 0.004))
    store = cache.store
    assert isinstance(store, RedisClusterStore)
    confirmed = store.confirm_invalidations(20)
    stats = cache.stats()
    summary = {
        "invalidations": len(invalidations),
        "queued": stats.queued_invalidations,
        "pending": len(cache.pending_invalidations()),
        "kept_for_confirmation": store._acks.unconfirmed.kept,
        "unconfirmed": store.unconfirmed_invalidations(),
        "confirmed": confirmed,
    }
    cache.close(flush_timeout=10)
    results.put(("writer", invalidations, errors, summary))


def _reader(url: str, path: str, go: Any, stop: Any, results: Any) -> None:
    cache = Cache(url, namespace="acks", secret=SECRET)
    conn = _connect(path)
    rng = random.Random()
    reads: list[tuple[int, float, int]] = []
    errors: list[str] = []
    go.wait(60)
    while not stop.is_set():
        row = rng.randrange(ROWS)

        def loader(row: int = row) -> int:
            (version,) = conn.execute("SELECT version FROM rows WHERE id = ?", (row,)).fetchone()
            time.sleep(rng.uniform(0.0, 0.005))  # the race window: the row may change
            return int(version)

        started = time.monotonic()
        try:
            version = cache.get_or_load(_key(row), loader, ttl=TTL, tags=[_key(row)])
            reads.append((row, started, version))
        except BaseException as exc:
            errors.append(repr(exc))
        time.sleep(rng.uniform(0.0, 0.002))
    cache.close(flush_timeout=5)
    results.put(("reader", reads, errors, {}))


def test_a_slow_replica_stops_no_invalidation_through_sync_failover_and_resync(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "rows.sqlite3")
    conn = _connect(path)
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
    conn.executemany("INSERT INTO rows VALUES (?, 1)", [(i,) for i in range(ROWS)])
    conn.close()

    context = multiprocessing.get_context("spawn")
    go, stop, results = context.Event(), context.Event(), context.Queue()
    cluster = RedisClusterSetup()
    workers = [
        context.Process(target=target, args=(cluster.url, path, go, stop, results))
        for target in (_writer, _reader, _reader)
    ]
    for worker in workers:
        worker.start()
    phases: dict[str, Any] = {}
    try:
        time.sleep(1.5)  # the workers import and wait for ``go``
        cluster.start(in_sync=False)
        go.set()  # load from the moment every slot is served: the replicas join now
        started = time.monotonic()
        phases["replicas in sync at start"] = "{} of {}".format(*cluster.replicas_in_sync())
        cluster.wait_healthy()  # their first sync done
        phases["in sync after the first sync"] = "{} of {}".format(*cluster.replicas_in_sync())
        # A store trusts a master's replica count for 5 s: a master seen without replicas
        # (before they joined) is not waited on meanwhile.
        time.sleep(max(1.0, started + 6 - time.monotonic()))

        row_key = Cache(cluster.url, namespace="acks", secret=SECRET).store_key(_key(0))
        victim = cluster.master_of(row_key)  # its replica stops acknowledging
        replica = cluster.replica_of(victim)
        assert replica.pid is not None
        os.kill(replica.pid, signal.SIGSTOP)
        time.sleep(2)
        os.kill(replica.pid, signal.SIGCONT)
        time.sleep(2)

        killed = cluster.kill_master_of(row_key)  # SIGKILL, its replica takes over
        time.sleep(2)
        cluster.restart(killed)  # back as a replica, with a full resync
        phases["in sync after the restart"] = "{} of {}".format(*cluster.replicas_in_sync())
        time.sleep(2)
    finally:
        go.set()
        stop.set()
        outcomes = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(30)
        cluster.stop()
        cluster.discard()

    oracle = Oracle()
    errors: list[str] = []
    summary: dict[str, Any] = {}
    for kind, records, worker_errors, worker_summary in outcomes:
        errors += worker_errors
        if kind == "writer":
            oracle.invalidations = [Invalidation(*record) for record in records]
            summary = worker_summary
        else:
            oracle.reads += [Read(*record) for record in records]
    stale = oracle.stale_reads()
    print(
        f"\nstale reads: {len(stale)} of {len(oracle.reads)}; "
        f"invalidations sent: {summary['invalidations']} "
        f"(queued: {summary['queued']}, still pending: {summary['pending']}); "
        f"kept for replica confirmation: {summary['kept_for_confirmation']}, "
        f"unconfirmed at the end: {summary['unconfirmed']}; {phases}"
    )
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert errors == []
    assert len(oracle.reads) > 1000
    assert summary["invalidations"] > 300
    assert stale == []
    assert summary["pending"] == 0
    assert summary["queued"] == 0  # every invalidation was sent when it was made
    assert summary["confirmed"]
    assert summary["unconfirmed"] == 0
    # The paused replica made WAIT time out: the path under test was taken.
    assert summary["kept_for_confirmation"] > 0


def test_unacknowledged_invalidations_are_bounded_confirmed_and_stopped_on_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RedisClusterSetup() as cluster:
        store = RedisClusterStore(cluster.url)
        store._acks = AcknowledgedWrites(lambda: store._client, 50, max_unconfirmed=2)
        replica = cluster.replica_of(cluster.master_of("{t}"))
        assert replica.pid is not None
        os.kill(replica.pid, signal.SIGSTOP)  # connected, acknowledging nothing
        try:
            with caplog.at_level(logging.WARNING, logger="cacheplug"):
                for name in "abcd":
                    store.set(f"{{t}}{name}", b"old", None)
                    assert store.invalidate([(f"{{t}}{name}", f"{{t}}lease:{name}")]) == 1
            assert store.get("{t}a") is None  # on the master all the same
            assert store.unconfirmed_invalidations() == 2  # the two newest
            assert store._acks.unconfirmed.kept == 4
            assert len([r for r in caplog.records if "no longer tracked" in r.message]) == 1
        finally:
            os.kill(replica.pid, signal.SIGCONT)
        assert store.confirm_invalidations(30)
        thread = store._acks.unconfirmed._thread
        assert thread is not None
        assert thread.daemon
        store.close()
        assert not thread.is_alive()
