"""Redis Cluster (3 masters, 3 replicas, real redis-server processes): the store conformance
suite, invalidation and stampede behaviour, and a master killed under load."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _race_harness import RaceConfig, Strategy, run_race

from cacheplug import Cache
from cacheplug.stores import RedisClusterStore
from cacheplug.testing.cluster import RedisClusterSetup
from cacheplug.testing.conformance import StoreConformance

SECRET = "cluster-secret"


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterSetup]:
    with RedisClusterSetup() as setup:
        yield setup


class TestClusterStoreConformance(StoreConformance):
    @pytest.fixture
    def store(self, cluster: RedisClusterSetup) -> Iterator[RedisClusterStore]:
        store = RedisClusterStore(cluster.url)
        store.client.flushdb(target_nodes="primaries")
        yield store
        store.close()


@pytest.fixture
def cluster_cache(cluster: RedisClusterSetup) -> Iterator[Cache]:
    cache = Cache(cluster.url, namespace="cl", secret=SECRET)
    yield cache
    cache.close()


def test_tags_and_namespaces_work_across_slots(cluster_cache: Cache) -> None:
    cache = cluster_cache
    for i in range(50):  # keys all over the slot space, one tag in yet another slot
        assert cache.get_or_load(f"item:{i}", lambda i=i: i, tags=["catalog"]) == i
    assert cache.get_many([f"item:{i}" for i in range(50)]) == {f"item:{i}": i for i in range(50)}
    cache.invalidate_tags("catalog")
    assert cache.get_many([f"item:{i}" for i in range(50)]) == {}
    cache.set("a", 1)
    cache.bump()
    assert cache.get("a", "gone") == "gone"


def test_a_load_that_started_before_an_invalidation_does_not_store_its_result(
    cluster_cache: Cache,
) -> None:
    cache = cluster_cache
    loading, finish = threading.Event(), threading.Event()

    def old_read() -> str:
        loading.set()
        finish.wait(10)
        return "old"

    thread = threading.Thread(target=cache.get_or_load, args=("k", old_read), kwargs={"tags": "t"})
    thread.start()
    assert loading.wait(5)
    cache.invalidate_tags("t")
    finish.set()
    thread.join()
    assert cache.get_or_load("k", lambda: "new", tags="t") == "new"


@pytest.mark.parametrize("strategy", [Strategy.LEASES, Strategy.TAGS])
def test_no_read_after_an_invalidation_sees_an_older_version_on_a_cluster(
    cluster: RedisClusterSetup, tmp_path: Path, strategy: Strategy
) -> None:
    result = run_race(strategy, cluster.url, tmp_path, RaceConfig())
    assert result.errors == []
    assert result.reads > 50
    assert result.stale == 0


def test_a_master_killed_under_load(cluster: RedisClusterSetup) -> None:
    cache = Cache(cluster.url, namespace="failover", secret=SECRET)
    errors: list[BaseException] = []
    stop = threading.Event()

    def traffic(worker: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                cache.get_or_load(f"w{worker}:{i % 30}", lambda: "loaded", ttl=60)
                cache.set(f"w{worker}:last", i, ttl=60)
            except BaseException as exc:  # anything reaching the caller is a failure
                errors.append(exc)

    try:
        assert cache.get_or_load("victim", lambda: "old", ttl=600) == "old"
        cache.invalidate("victim")  # returned before the kill: must survive it
        assert cache.get("victim", "gone") == "gone"
        workers = [threading.Thread(target=traffic, args=(n,)) for n in range(8)]
        for thread in workers:
            thread.start()
        cluster.kill_master_of(cache.store_key("victim"))
        stop.set()
        for thread in workers:
            thread.join()
        assert errors == []
        assert cache.get("victim", "gone") == "gone"
        assert cache.get_or_load("after", lambda: "works", ttl=60) == "works"
        # Writes land again once the client has the new slot map; on a loaded machine the
        # first one may still time out (and fail open), so allow a few tries.
        for _ in range(50):
            if cache.get("after") == "works":
                break
            cache.get_or_load("after", lambda: "works", ttl=60)
            threading.Event().wait(0.1)
        assert cache.get("after") == "works"
    finally:
        stop.set()
        cache.close(flush_timeout=10)


def test_a_cold_key_is_loaded_once_by_many_callers_in_several_caches(
    cluster: RedisClusterSetup,
) -> None:
    caches = [
        Cache(cluster.url, namespace="stampede", secret=SECRET, wait_timeout=10) for _ in range(3)
    ]
    calls: list[int] = []
    start = threading.Barrier(24)
    results: list[str] = []

    def loader() -> str:
        calls.append(1)
        threading.Event().wait(0.2)
        return "loaded once"

    def call(cache: Cache) -> None:
        start.wait()
        results.append(cache.get_or_load("cold", loader, ttl=60))

    threads = [threading.Thread(target=call, args=(caches[i % 3],)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for cache in caches:
        cache.close()
    assert results == ["loaded once"] * 24
    assert len(calls) == 1


def test_a_cluster_that_is_down_at_start_does_not_stop_the_application() -> None:
    from cacheplug.testing import free_port

    cache = Cache(f"redis+cluster://127.0.0.1:{free_port()}", namespace="down", secret=SECRET)
    assert cache.get_or_load("k", lambda: "from the database") == "from the database"
    assert cache.get("k", "default") == "default"
    cache.close(flush_timeout=0.1)


def test_a_cluster_without_replicas_lands_its_invalidations() -> None:
    """There is no replica to acknowledge them: they must not wait for one (and time out,
    leaving every invalidation queued and other processes on the old value)."""
    with RedisClusterSetup(masters=3, replicas=0) as bare:
        writer = Cache(bare.url, namespace="bare", secret="cluster-secret")
        reader = Cache(bare.url, namespace="bare", secret="cluster-secret")
        try:
            writer.set("k", "old", tags=["t"])
            writer.set("other", "old")
            writer.invalidate("other")
            writer.invalidate_tags("t")
            assert writer.pending_invalidations() == []
            assert reader.get("k") is None
            assert reader.get("other") is None
        finally:
            writer.close()
            reader.close()
