"""Write-behind on a real Redis Cluster (3 masters, 3 replicas): the queue's keys share one
slot, so its scripts and transactions run, and a failed batch comes back whole."""

from __future__ import annotations

import operator
from collections.abc import Iterator

import pytest
import redis.cluster
from redis.cluster import key_slot

from cacheplug import Cache, QueuedWrite
from cacheplug.testing.cluster import RedisClusterSetup

SECRET = "write-behind-cluster-secret"


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterSetup]:
    with RedisClusterSetup() as setup:
        yield setup


@pytest.fixture
def cache(cluster: RedisClusterSetup) -> Iterator[Cache]:
    client = redis.cluster.RedisCluster.from_url("redis://" + cluster.url.split("://", 1)[1])
    client.flushdb(target_nodes="primaries")
    client.close()
    made = Cache(cluster.url, namespace="wbcl", secret=SECRET)
    yield made
    made.close()


def test_queues_work_on_a_cluster_and_their_keys_share_a_slot(cache: Cache) -> None:
    calls: list[list[QueuedWrite]] = []

    def sink(writes: list[QueuedWrite]) -> None:
        calls.append(writes)
        if len(calls) == 1:
            raise RuntimeError("the database went away")

    queue = cache.write_behind("views", sink, merge=operator.add, claim_idle=0.0)
    for i in range(9):
        queue.put(f"article:{i % 3}", 1)
    with pytest.raises(RuntimeError):
        queue.drain("first")
    assert queue.drain("second") == 9
    assert calls[1] == calls[0]
    assert sorted((w.key, w.value) for w in calls[1]) == [
        ("article:0", 3),
        ("article:1", 3),
        ("article:2", 3),
    ]
    assert queue.length() == 0
    stream = queue._queue._stream  # type: ignore[attr-defined]
    names = [stream, f"{stream}:dead", f"{stream}:pending", f"{stream}:batches"]
    assert len({key_slot(name.encode()) for name in names}) == 1


def test_read_your_writes_and_dead_letters_on_a_cluster(cache: Cache) -> None:
    def sink(writes: list[QueuedWrite]) -> None:
        raise RuntimeError("poison")

    queue = cache.write_behind("profiles", sink, claim_idle=0.0, max_deliveries=1)
    entry = queue.put("user:1", {"name": "new"})
    assert cache.get("user:1") == {"name": "new"}
    assert queue.pending("user:1") == {"name": "new"}
    with pytest.raises(RuntimeError):
        queue.drain()
    assert queue.drain() == 1
    assert queue.dead_letters() == [(entry, "user:1")]
    assert cache.get("user:1") is None
