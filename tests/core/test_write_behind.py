"""Write-behind: queued writes reach the sink in batches, acknowledged only after it
returns; a worker killed mid-batch loses nothing and (with an idempotent sink) counts nothing
twice; full queues refuse instead of dropping; poison entries end in the dead letters."""

from __future__ import annotations

import operator
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from cacheplug import Cache, ConfigurationError, QueuedWrite, QueueFull
from cacheplug.encoding._keys import Purpose

SECRET = "write-behind-secret"
WORKER = Path(__file__).with_name("_wb_worker.py")


@pytest.fixture
def shared(redis_url: str) -> Cache:
    cache = Cache(redis_url, namespace="wb", secret=SECRET)
    yield cache  # type: ignore[misc]
    cache.close()


def test_batches_reach_the_sink_and_are_acknowledged(shared: Cache) -> None:
    received: list[QueuedWrite] = []
    queue = shared.write_behind("q", received.extend, batch_size=4)
    ids = [queue.put(f"k{i}", {"n": i}) for i in range(10)]
    assert queue.length() == 10
    assert [queue.drain() for _ in range(4)] == [4, 4, 2, 0]
    assert [entry.id for entry in received] == ids
    assert received[3] == QueuedWrite(ids[3], "k3", {"n": 3})
    assert queue.length() == 0


def test_a_failing_sink_gets_the_batch_again_then_dead_letters_it(shared: Cache) -> None:
    calls: list[int] = []

    def sink(entries: list[QueuedWrite]) -> None:
        calls.append(len(entries))
        raise RuntimeError("the database is down")

    queue = shared.write_behind("q", sink, claim_idle=0.0, max_deliveries=3)
    queue.put("k", 1)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            queue.drain()
    assert queue.drain() == 1  # the fourth delivery goes to the dead letters instead
    assert calls == [1, 1, 1]
    assert [key for _, key in queue.dead_letters()] == ["k"]
    assert queue.length() == 0


def test_a_tampered_entry_is_dead_lettered_not_unpickled(shared: Cache, redis_url: str) -> None:
    received: list[QueuedWrite] = []
    queue = shared.write_behind("q", received.extend)
    queue.put("good", 1)
    client = redis.Redis.from_url(redis_url)
    # Where the queue lives, to forge an entry.
    stream = shared._engine._keys.build(Purpose.QUEUE, "q")
    client.xadd(stream, {"k": "evil", "v": b"\x80\x04forged"})
    assert queue.drain() == 2
    assert [entry.key for entry in received] == ["good"]
    assert [key for _, key in queue.dead_letters()] == ["evil"]
    client.close()


def test_a_full_queue_refuses_instead_of_dropping(shared: Cache) -> None:
    queue = shared.write_behind("q", lambda entries: None, max_length=3)
    for i in range(3):
        queue.put("k", i)
    with pytest.raises(QueueFull):
        queue.put("k", 3)
    assert queue.length() == 3


def test_the_embedded_store_is_not_durable_and_says_so() -> None:
    cache = Cache()
    with pytest.raises(ConfigurationError, match="durable=False"):
        cache.write_behind("q", lambda entries: None)
    received: list[QueuedWrite] = []
    queue = cache.write_behind("q", received.extend, durable=False)
    queue.put("k", 1)
    assert queue.drain() == 1
    assert received[0].value == 1


def worker(redis_url: str, database: Path) -> list[str]:
    return [sys.executable, str(WORKER), redis_url, str(database)]


def test_a_worker_killed_mid_batch_loses_nothing_and_counts_nothing_twice(
    shared: Cache, redis_url: str, tmp_path: Path
) -> None:
    """The dying worker reads batches of 5,000 increments (1,000 keys, 5 each, summed into one
    write per key); the one that reclaims its batch reads 3,000 at a time, yet gets the dead
    worker's batch back whole, so the writes the sink already applied have the same ids."""
    database = tmp_path / "totals.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE applied (id TEXT PRIMARY KEY)")
        connection.execute("CREATE TABLE totals (key TEXT PRIMARY KEY, total INTEGER)")
    queue = shared.write_behind("counts", lambda entries: None, merge=operator.add)
    for i in range(100_000):
        queue.put(f"article:{i % 1000}", 1)
    killed = subprocess.run(
        [*worker(redis_url, database), "--die-mid-batch", "--batch-size", "5000"],
        capture_output=True,
        timeout=120,
    )
    # SIGKILL, after committing part of its first batch
    assert killed.returncode == -9, killed.stderr.decode()[-3000:]
    with sqlite3.connect(database) as connection:
        partial = connection.execute("SELECT COALESCE(SUM(total), 0) FROM totals").fetchone()[0]
        rows = connection.execute("SELECT COUNT(*) FROM totals").fetchone()[0]
    assert 0 < partial < 5000  # part of the batch was written, none of it acknowledged
    assert partial == rows * 5  # each write carried five increments
    finished = subprocess.run(
        [*worker(redis_url, database), "--claim-idle", "0.2", "--batch-size", "3000"],
        capture_output=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    with sqlite3.connect(database) as connection:
        totals = dict(connection.execute("SELECT key, total FROM totals").fetchall())
    assert len(totals) == 1000
    assert set(totals.values()) == {100}
    assert queue.length() == 0


def test_a_redis_crash_and_restart_with_aof_loses_nothing_acknowledged() -> None:
    from cacheplug.testing import RedisServer

    with RedisServer(extra_args=("--appendonly", "yes", "--appendfsync", "always")) as server:
        cache = Cache(server.url, namespace="wb", secret=SECRET)
        received: list[QueuedWrite] = []
        queue = cache.write_behind("durable", received.extend, batch_size=300)
        ids = [queue.put(f"k{i}", i) for i in range(1000)]  # each one acknowledged to us
        assert queue.drain("first") == 300  # one batch handed over and acknowledged...
        queue._queue.read("second", 0)  # ...one more read by a worker that then dies
        server.kill()  # SIGKILL: only what the AOF holds survives
        server.start()
        queue.claim_idle = 0.0
        while queue.length():
            queue.drain("after-restart")
        assert sorted(entry.id for entry in received) == sorted(ids)
        assert len(received) == 1000
        cache.close()


@pytest.mark.parametrize("where", ["redis", "memory"])
def test_read_your_writes_until_the_sink_has_them(
    where: str, request: pytest.FixtureRequest
) -> None:
    from cacheplug import MISSING

    cache = request.getfixturevalue("shared") if where == "redis" else Cache()
    database: dict[str, object] = {}
    queue = cache.write_behind(
        "profile",
        lambda entries: database.update({e.key: e.value for e in entries}),
        batch_size=1,
        durable=where == "redis",
    )
    queue.put("user:1", {"name": "old"})
    queue.put("user:1", {"name": "new"})
    assert queue.pending("user:1") == {"name": "new"}
    assert queue.get_or_load("user:1", lambda: database.get("user:1")) == {"name": "new"}
    assert queue.drain() == 1  # the older write reaches the sink: the newer is still pending
    assert queue.pending("user:1") == {"name": "new"}
    assert queue.drain() == 1
    assert queue.pending("user:1") is MISSING
    assert database["user:1"] == {"name": "new"}
    assert queue.get_or_load("user:1", lambda: database["user:1"]) == {"name": "new"}
