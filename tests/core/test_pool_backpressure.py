"""A full connection pool is back-pressure, not an outage.

Thousands of concurrent reads of warm keys must all be answered from the cache: a caller that
finds every pooled connection busy waits for one, instead of failing, running the loader and
opening the circuit breaker. On a real redis-server and a real Redis Cluster, async (one event
loop, 2,000 tasks at once) and sync (256 threads at once).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from cacheplug import Cache, RedisStore
from cacheplug.stores import RedisClusterStore
from cacheplug.testing import RedisServer
from cacheplug.testing.cluster import RedisClusterSetup

SECRET = "pool-backpressure-secret"
KEYS = 200
WAVES = 5
TASKS = 2_000
THREADS = 256
ROUNDS = 4  # reads per thread and per round: 256 threads x 4 rounds x 4 reads
STALLS = 4  # waves whose event loop stops once


class Loader:
    """Counts its calls (thread-safe: threads share it)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            self.calls += 1
        return "from-the-loader"


def warm(cache: Cache) -> None:
    for i in range(KEYS):
        assert cache.get_or_load(f"k{i}", lambda i=i: f"v{i}", ttl=600) == f"v{i}"
    for i in range(KEYS):  # every key is in the cache now
        assert cache.get(f"k{i}") == f"v{i}"


def expected(i: int) -> str:
    return f"v{i % KEYS}"


async def async_waves(cache: Cache, loader: Loader) -> list[list[object]]:
    results = []
    for _ in range(WAVES):
        wave = await asyncio.gather(
            *(cache.aget_or_load(f"k{i % KEYS}", loader, ttl=600) for i in range(TASKS))
        )
        results.append(list(wave))
    await cache.aclose()
    return results


def thread_storm(cache: Cache, loader: Loader) -> list[list[object]]:
    """``THREADS`` threads released at once, each reading ``ROUNDS`` x 4 warm keys."""
    start = threading.Barrier(THREADS)
    got: list[list[object]] = [[] for _ in range(THREADS)]

    def reader(n: int) -> None:
        start.wait()
        for r in range(ROUNDS):
            for j in range(4):
                got[n].append(cache.get_or_load(f"k{(n * 4 + j + r) % KEYS}", loader, ttl=600))

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got


def check_async(cache: Cache) -> None:
    warm(cache)
    loader = Loader()
    results = asyncio.run(async_waves(cache, loader))
    stats = cache.stats()
    assert loader.calls == 0, f"{loader.calls} of {WAVES * TASKS} reads ran the loader"
    assert not cache.breaker.tripped
    assert stats.errors == 0
    for wave in results:
        assert wave == [expected(i) for i in range(TASKS)]


def check_threads(cache: Cache) -> None:
    warm(cache)
    loader = Loader()
    got = thread_storm(cache, loader)
    assert loader.calls == 0, f"{loader.calls} of {THREADS * ROUNDS * 4} reads ran the loader"
    assert not cache.breaker.tripped
    assert cache.stats().errors == 0
    for n, values in enumerate(got):
        assert values == [expected(n * 4 + j + r) for r in range(ROUNDS) for j in range(4)]


# -- one redis-server --------------------------------------------------------------------------


@pytest.fixture
def redis_cache(redis_url: str) -> Iterator[Cache]:
    cache = Cache(RedisStore(redis_url), namespace="bp", secret=SECRET)
    yield cache
    cache.close()


def test_2000_concurrent_async_reads_of_warm_keys_never_load(redis_cache: Cache) -> None:
    check_async(redis_cache)


def test_256_threads_reading_warm_keys_never_load(redis_cache: Cache) -> None:
    check_threads(redis_cache)


def test_a_small_pool_makes_callers_wait_not_fail(redis_url: str) -> None:
    """Five connections for 2,000 tasks: slower, but every read is a hit."""
    store = RedisStore(f"{redis_url}?max_connections=5")
    cache = Cache(store, namespace="bp", secret=SECRET)
    try:
        check_async(cache)
        check_threads(cache)
    finally:
        cache.close()


def test_a_stalled_event_loop_is_not_an_outage(redis_url: str) -> None:
    """The process stops for longer than the pool's timeout while 2,000 reads wait for its five
    connections (a long garbage collection, a busy host). When it resumes, every waiter's
    timeout is past, and many run out before the replies already waiting in the sockets are
    read: the store was never stuck, so no read may give up on it. (Under the old rule, which
    gave up after one wait with nothing handed back, nearly every read of the first stalled
    wave ran its loader.)"""
    store = RedisStore(f"{redis_url}?max_connections=5", pool_timeout=0.3)
    cache = Cache(store, namespace="bp", secret=SECRET)
    warm(cache)
    loader = Loader()

    async def stall_the_loop() -> None:
        for _ in range(20):  # the reads start: they take the connections, and queue for them
            await asyncio.sleep(0)
        time.sleep(0.6)  # blocks the event loop: no task runs, no reply is read

    async def wave() -> list[object]:
        got = await asyncio.gather(
            stall_the_loop(),
            *(cache.aget_or_load(f"k{i % KEYS}", loader, ttl=600) for i in range(TASKS)),
        )
        await cache.aclose()
        return list(got[1:])

    try:
        # An event loop each: its connections are new, so some are still being made at the stall.
        results = [asyncio.run(wave()) for _ in range(STALLS)]
        assert loader.calls == 0, f"{loader.calls} of {STALLS * TASKS} reads ran the loader"
        assert not cache.breaker.tripped
        assert cache.stats().errors == 0
        for wave in results:
            assert wave == [expected(i) for i in range(TASKS)]
    finally:
        cache.close()


def test_a_stuck_store_is_still_an_outage() -> None:
    """A server of its own stops answering (``CLIENT PAUSE`` for a minute) while 50 reads
    queue for a pool of two: waiting is not back-pressure any more. The calls holding
    connections time out and hand them back broken, and every queued read fails over to its
    loader within the pause instead of waiting it out to be served from the cache."""
    with RedisServer() as server:
        store = RedisStore(f"{server.url}?max_connections=2", socket_timeout=0.3, pool_timeout=0.2)
        cache = Cache(store, namespace="bp", secret=SECRET)
        warm(cache)
        loader = Loader()
        admin = redis.Redis.from_url(server.url)

        async def reads() -> list[object]:
            admin.client_pause(60_000, all=True)
            got = await asyncio.gather(
                *(cache.aget_or_load(f"k{i}", loader, ttl=600) for i in range(50))
            )
            await cache.aclose()
            return list(got)

        try:
            results = asyncio.run(reads())
        finally:
            admin.close()
            cache.close()
    assert results == ["from-the-loader"] * 50
    assert loader.calls == 50


def test_the_pool_size_is_an_option_and_a_url_parameter(redis_url: str) -> None:
    default = RedisStore(redis_url)
    by_url = RedisStore(f"{redis_url}?max_connections=7")
    by_option = RedisStore(redis_url, max_connections=9)
    try:
        for store, size in (
            (default, RedisStore.DEFAULT_MAX_CONNECTIONS),
            (by_url, 7),
            (by_option, 9),
        ):
            for client in store.clients():
                pool = client.connection_pool
                assert isinstance(pool, redis.BlockingConnectionPool)  # callers wait
                assert pool.max_connections == size
    finally:
        for store in (default, by_url, by_option):
            store.close()


# -- a Redis Cluster ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterSetup]:
    with RedisClusterSetup() as setup:
        yield setup


@pytest.fixture
def cluster_cache(cluster: RedisClusterSetup) -> Iterator[Cache]:
    store = RedisClusterStore(cluster.url)
    store.client.flushdb(target_nodes="primaries")
    cache = Cache(store, namespace="bp", secret=SECRET)
    yield cache
    cache.close()


def test_2000_concurrent_async_reads_of_warm_keys_never_load_on_a_cluster(
    cluster_cache: Cache,
) -> None:
    check_async(cluster_cache)


def test_256_threads_reading_warm_keys_never_load_on_a_cluster(cluster_cache: Cache) -> None:
    check_threads(cluster_cache)


def test_a_small_cluster_pool_makes_callers_wait_not_fail(cluster: RedisClusterSetup) -> None:
    store = RedisClusterStore(f"{cluster.url}?max_connections=3")
    store.client.flushdb(target_nodes="primaries")
    cache = Cache(store, namespace="bp", secret=SECRET)
    try:
        check_threads(cache)
    finally:
        cache.close()
