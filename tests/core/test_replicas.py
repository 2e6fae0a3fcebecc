"""Replicas of hot keys on a real Redis Cluster (3 masters, 3 replicas): reads spread over the
masters, and every invalidation reaches every replica."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.cluster

from cacheplug import Cache, LocalTier
from cacheplug.testing import FakeClock
from cacheplug.testing.cluster import RedisClusterSetup

SECRET = "replica-secret"
READS = 300  # enough that every one of 8 replicas is read (each missed with p = (7/8)**300)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterSetup]:
    with RedisClusterSetup() as setup:
        yield setup


@pytest.fixture
def client(cluster: RedisClusterSetup) -> Iterator[redis.cluster.RedisCluster]:
    client = redis.cluster.RedisCluster.from_url("redis://" + cluster.url.split("://", 1)[1])
    client.flushdb(target_nodes="primaries")
    yield client
    client.close()


@pytest.fixture
def cache(cluster: RedisClusterSetup, client: redis.cluster.RedisCluster) -> Iterator[Cache]:
    cache = Cache(cluster.url, namespace="rep", secret=SECRET)
    yield cache
    cache.close()


def replica_keys_by_master(client: redis.cluster.RedisCluster) -> dict[str, list[bytes]]:
    """The replica entries (``{~shard}...:d:...`` keys) each master holds."""
    found: dict[str, list[bytes]] = {}
    for node in client.get_primaries():
        connection = client.get_redis_connection(node)
        found[node.name] = [k for k in connection.scan_iter(match="{~*:d:*") if b":d:" in k]
    return found


def counting(value: object) -> tuple[Callable[[], object], list[int]]:
    calls = [0]

    def load() -> object:
        calls[0] += 1
        return value

    return load, calls


def test_a_replicated_key_is_loaded_once_and_spread_over_every_master(
    cache: Cache, client: redis.cluster.RedisCluster
) -> None:
    load, calls = counting({"name": "celebrity"})
    for _ in range(READS):
        assert cache.get_or_load("celebrity", load, replicas=8) == {"name": "celebrity"}
    assert calls[0] == 1  # replicas are filled from the entry, not by loading again
    by_master = replica_keys_by_master(client)
    assert sum(len(keys) for keys in by_master.values()) == 8
    assert all(keys for keys in by_master.values()), by_master


def read_all(cache: Cache, load: Callable[[], object], **kwargs: object) -> set[object]:
    return {cache.get_or_load("k", load, replicas=8, **kwargs) for _ in range(READS)}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "invalidate",
    [
        lambda cache: cache.delete("k"),
        lambda cache: cache.invalidate("k"),
        lambda cache: cache.invalidate_tags("t"),
        lambda cache: cache.bump(),
    ],
    ids=["delete", "invalidate", "invalidate_tags", "bump"],
)
def test_every_invalidation_reaches_every_replica(
    cache: Cache, invalidate: Callable[[Cache], None]
) -> None:
    assert read_all(cache, lambda: "old", tags=["t"]) == {"old"}
    invalidate(cache)
    assert read_all(cache, lambda: "new", tags=["t"]) == {"new"}


def test_set_replaces_the_value_in_every_replica(cache: Cache) -> None:
    assert read_all(cache, lambda: "old") == {"old"}
    assert cache.set("k", "new")
    assert read_all(cache, lambda: "unused") == {"new"}


def test_a_replica_fill_that_read_before_an_invalidation_never_stores(cache: Cache) -> None:
    assert read_all(cache, lambda: "old") == {"old"}
    cache.delete("k")  # every replica now misses; the next read refills one of them
    loading, finish = threading.Event(), threading.Event()

    def old_read() -> str:
        loading.set()
        finish.wait(10)
        return "old"  # read from the database before the write below

    reader = threading.Thread(
        target=cache.get_or_load, args=("k", old_read), kwargs={"replicas": 8}
    )
    reader.start()
    assert loading.wait(5)
    cache.invalidate("k")  # the write is committed: invalidate
    finish.set()
    reader.join()
    assert read_all(cache, lambda: "new") == {"new"}


def test_l1_in_front_of_replicas_drops_invalidated_values(cluster: RedisClusterSetup) -> None:
    cache = Cache(cluster.url, namespace="rep-l1", secret=SECRET, l1=LocalTier(max_entries=100))
    other = Cache(cluster.url, namespace="rep-l1", secret=SECRET)
    try:
        cache.get_or_load("warm", lambda: 0)  # the bus is live before the reads below
        assert read_all(cache, lambda: "old") == {"old"}
        other.invalidate("k")
        for _ in range(200):
            if cache.get_or_load("k", lambda: "new", replicas=8) == "new":
                break
            threading.Event().wait(0.01)
        assert read_all(cache, lambda: "unused") == {"new"}
    finally:
        cache.close()
        other.close()


def test_async_replicated_reads_and_invalidation(cache: Cache) -> None:
    async def scenario() -> tuple[set[object], set[object]]:
        first = {await cache.aget_or_load("k", lambda: "old", replicas=8) for _ in range(READS)}
        await cache.ainvalidate("k")

        async def load() -> str:
            return "new"

        second = {await cache.aget_or_load("k", load, replicas=8) for _ in range(READS)}
        return first, second

    assert asyncio.run(scenario()) == ({"old"}, {"new"})


def test_keys_detected_hot_are_replicated_automatically(
    cluster: RedisClusterSetup, client: redis.cluster.RedisCluster
) -> None:
    clock = FakeClock()
    cache = Cache(
        cluster.url,
        namespace="rep-auto",
        secret=SECRET,
        clock=clock,
        hot_key_replicas=8,
        hot_key_qps=1.0,
    )
    try:
        for _ in range(200):
            cache.get_or_load("cold-at-first", lambda: "v")
        assert sum(len(k) for k in replica_keys_by_master(client).values()) == 0
        clock.advance(2.0)  # the hot set is recomputed about once a second
        for _ in range(READS):
            assert cache.get_or_load("cold-at-first", lambda: "v") == "v"
        assert [key for key, _ in cache.hot_keys()] == ["cold-at-first"]
        assert sum(len(k) for k in replica_keys_by_master(client).values()) == 8
    finally:
        cache.close()


def test_namespace_version_reads_spread_over_the_masters(
    cache: Cache, client: redis.cluster.RedisCluster
) -> None:
    for i in range(200):
        cache.get_or_load(f"item:{i}", lambda i=i: i)  # type: ignore[misc]
    before = mget_calls(client)
    for i in range(200):
        assert cache.get_or_load(f"item:{i}", lambda: None) == i
    served = {name: calls - before[name] for name, calls in mget_calls(client).items()}
    # Each read's MGETs go to the entry's master: no master serves (nearly) every read.
    assert max(served.values()) < 0.6 * sum(served.values()), served


def mget_calls(client: redis.cluster.RedisCluster) -> dict[str, int]:
    calls = {}
    for node in client.get_primaries():
        stats = client.get_redis_connection(node).info("commandstats")
        calls[node.name] = int(stats.get("cmdstat_mget", {}).get("calls", 0))
    return calls


@pytest.mark.parametrize("bad", [-1, True, 2.5, "8"])
def test_replicas_must_be_a_count(cache: Cache, bad: object) -> None:
    with pytest.raises(ValueError, match="replicas"):
        cache.get_or_load("k", lambda: 1, replicas=bad)  # type: ignore[arg-type]


def test_a_single_redis_ignores_replicas(redis_url: str, redis_client: redis.Redis) -> None:
    cache = Cache(redis_url, namespace="rep-single", secret=SECRET)
    try:
        load, calls = counting("v")
        assert {cache.get_or_load("k", load, replicas=8) for _ in range(50)} == {"v"}
        assert calls[0] == 1
        assert list(redis_client.scan_iter(match="{~*")) == []
        cache.delete("k")
        assert cache.get_or_load("k", lambda: "new", replicas=8) == "new"
    finally:
        cache.close()


def test_stats_count_replica_hits_and_hot_keys(cluster: RedisClusterSetup) -> None:
    clock = FakeClock()
    cache = Cache(cluster.url, namespace="rep-stats", secret=SECRET, clock=clock, hot_key_qps=1.0)
    try:
        for _ in range(50):
            cache.get_or_load("k", lambda: "v", replicas=8)
        assert cache.stats().replica_hits > 30  # the first read of each replica fills it
        assert cache.stats().hot_keys == 0
        clock.advance(2.0)
        for _ in range(50):
            cache.get_or_load("k", lambda: "v", replicas=8)
        assert cache.stats().hot_keys == 1
    finally:
        cache.close()
