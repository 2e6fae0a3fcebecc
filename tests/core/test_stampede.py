"""A cold key under load sees one load: across threads, asyncio tasks and processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis
from _instrumented import CountingRedisStore

from cacheplug import Cache, CacheUnavailable, MemoryStore, RedisStore, Store
from cacheplug.stores.base import VersionCheck

SECRET = "stampede-test-secret"


def hammer(cache: Cache, key: str, workers: int, loader: Any) -> list[Any]:
    """``workers`` threads call ``get_or_load`` at once; their results."""
    barrier = threading.Barrier(workers)
    results: list[Any] = [None] * workers
    errors: list[BaseException] = []

    def work(index: int) -> None:
        barrier.wait()
        try:
            results[index] = cache.get_or_load(key, loader, ttl=60)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_64_threads_share_one_load(cache: Cache) -> None:
    calls: list[int] = []

    def slow_loader() -> dict[str, int]:
        calls.append(1)
        # Hold the load until every thread has missed: a fixed sleep let threads the
        # scheduler started late (a loaded CI machine) find the value stored, and count
        # as hits instead of joining the flight (seen in CI: 27 coalesced, 36 hits).
        deadline = time.monotonic() + 10
        while cache.stats().misses < 64 and time.monotonic() < deadline:
            time.sleep(0.005)
        return {"rows": 42}

    results = hammer(cache, "report", 64, slow_loader)
    assert len(calls) == 1
    assert results == [{"rows": 42}] * 64
    stats = cache.stats()
    assert stats.loads == 1
    assert stats.coalesced == 63


def test_separate_caches_on_one_redis_share_one_load(redis_url: str) -> None:
    # Different Cache objects do not share single-flight: only the store lease joins them.
    caches = [Cache(redis_url, namespace="shared", secret=SECRET) for _ in range(8)]
    calls: list[int] = []
    barrier = threading.Barrier(8)
    results: list[Any] = [None] * 8

    def slow_loader() -> str:
        calls.append(1)
        time.sleep(0.2)
        return "value"

    def work(index: int) -> None:
        barrier.wait()
        results[index] = caches[index].get_or_load("k", slow_loader, ttl=60)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert results == ["value"] * 8
    for cache in caches:
        cache.close()


def test_100_asyncio_tasks_share_one_load(cache: Cache) -> None:
    calls: list[int] = []

    async def slow_loader() -> list[int]:
        calls.append(1)
        await asyncio.sleep(0.2)
        return [1, 2, 3]

    async def scenario() -> list[Any]:
        return await asyncio.gather(
            *(cache.aget_or_load("async-report", slow_loader, ttl=60) for _ in range(100))
        )

    assert asyncio.run(scenario()) == [[1, 2, 3]] * 100
    assert len(calls) == 1


def _process_worker(url: str, counter_key: str, start_at: float, threads: int, queue: Any) -> None:
    client = redis.Redis.from_url(url)
    cache = Cache(url, namespace="procs", secret=SECRET)

    def loader() -> str:
        client.incr(counter_key)
        time.sleep(0.2)
        return "computed once"

    time.sleep(max(0.0, start_at - time.time()))
    results = hammer(cache, "hot", threads, loader)
    queue.put(results)
    cache.close()


def test_4_processes_of_16_threads_share_one_load(
    redis_url: str, redis_client: redis.Redis
) -> None:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 2.0  # every process is up and waiting by then
    processes = [
        context.Process(
            target=_process_worker, args=(redis_url, "loader-calls", start_at, 16, queue)
        )
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert redis_client.get("loader-calls") == b"1"
    assert results == [["computed once"] * 16] * 4


def test_waiters_are_woken_by_the_fill_not_by_polling(redis_url: str) -> None:
    holder = Cache(redis_url, namespace="wake", secret=SECRET)
    waiting_store = CountingRedisStore(redis_url)
    waiter = Cache(waiting_store, namespace="wake", secret=SECRET)
    loading = threading.Event()

    def slow_loader() -> str:
        loading.set()
        time.sleep(0.5)
        return "landed"

    holder_thread = threading.Thread(target=holder.get_or_load, args=("k", slow_loader))
    holder_thread.start()
    loading.wait(5)

    def must_not_load() -> str:
        raise AssertionError("the waiter must get the holder's value")

    assert waiter.get_or_load("k", must_not_load) == "landed"
    holder_thread.join()
    # First read, the re-check after registering for the announcement, the read once woken.
    # A poll (even one backing off from 20 ms) would read many more times in 500 ms.
    assert waiting_store.gets <= 3
    assert waiter.stats().coalesced == 1
    holder.close()
    waiter.close()


def test_a_failing_loader_releases_the_lease_and_caches_nothing(cache: Cache) -> None:
    attempts: list[int] = []
    lease_key = cache.store_key("fragile").replace(":d:", ":l:", 1)
    lease_seen: list[bytes | None] = []

    def broken() -> str:
        attempts.append(1)
        lease_seen.append(cache.store.get(lease_key))  # held while loading
        time.sleep(0.1)
        raise ConnectionRefusedError("database down")

    with pytest.raises(ConnectionRefusedError):
        hammer(cache, "fragile", 8, broken)
    assert len(attempts) == 1  # the waiters shared the failure instead of retrying at once
    assert lease_seen[0] is not None
    assert cache.store.get(lease_key) is None
    assert cache.get("fragile", default="nothing") == "nothing"
    # The next caller retries straight away: no lease left behind to wait for.
    assert cache.get_or_load("fragile", lambda: "recovered") == "recovered"


def test_an_entry_and_its_lease_share_a_cluster_slot(redis_url: str) -> None:
    from redis.crc import key_slot

    cache = Cache(redis_url, namespace="slots", secret=SECRET)
    for key in ["user:42", "a b c", "x" * 300, "}odd", "{braces}"]:
        seen: list[bytes] = []
        data_key = cache.store_key(key)

        def loader(data_key: str = data_key, seen: list[bytes] = seen) -> str:
            held = [k for k in cache.store.client.keys("slots:*") if b":n:" not in k]
            seen.extend(held)
            return "v"

        cache.get_or_load(key, loader)
        assert len(seen) == 1  # exactly the lease was held during the load (besides the
        # namespace's version key, which lives in a slot of its own)
        assert key_slot(seen[0]) == key_slot(data_key.encode())
        cache.delete(key)
    cache.close()


def test_a_waiter_in_another_cache_loads_itself_after_the_holder_fails(redis_url: str) -> None:
    holder = Cache(redis_url, namespace="fail", secret=SECRET)
    other = Cache(redis_url, namespace="fail", secret=SECRET)
    loading = threading.Event()

    def failing() -> str:
        loading.set()
        time.sleep(0.2)
        raise RuntimeError("boom")

    def run_holder() -> None:
        with pytest.raises(RuntimeError):
            holder.get_or_load("k", failing)

    thread = threading.Thread(target=run_holder)
    thread.start()
    loading.wait(5)
    assert other.get_or_load("k", lambda: "second try") == "second try"
    thread.join()
    assert holder.get("k") == "second try"
    holder.close()
    other.close()


def _hold_the_lease_and_hang(url: str, ready: Any) -> None:
    cache = Cache(url, namespace="crash", secret=SECRET, lock_timeout=1.0)

    def hang() -> str:
        ready.set()
        time.sleep(120)
        return "never"

    cache.get_or_load("k", hang)


def test_a_crashed_lease_holder_is_taken_over_after_the_lease_expires(redis_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    crashed = context.Process(target=_hold_the_lease_and_hang, args=(redis_url, ready))
    crashed.start()
    try:
        assert ready.wait(30)
        os.kill(crashed.pid or 0, signal.SIGKILL)  # dies mid-load, holding the lease
        crashed.join(10)
        survivor = Cache(
            redis_url, namespace="crash", secret=SECRET, lock_timeout=1.0, wait_timeout=60.0
        )
        calls: list[int] = []

        def loader() -> str:
            calls.append(1)
            return "taken over"

        assert survivor.get_or_load("k", loader) == "taken over"
        assert calls == [1]
        # It took the expired lease and stored the value, rather than giving up after
        # wait_timeout (60 s) and loading without storing.
        assert Cache(redis_url, namespace="crash", secret=SECRET).get("k") == "taken over"
        survivor.close()
    finally:
        if crashed.is_alive():
            crashed.kill()
        crashed.join(5)


def test_waiters_past_wait_timeout_load_themselves_without_storing(store: Store) -> None:
    secret = SECRET if store.shared else None
    holder = Cache(store, namespace="slow", secret=secret)
    impatient = Cache(store, namespace="slow", secret=secret, wait_timeout=0.05)
    loading = threading.Event()
    release = threading.Event()

    def stuck() -> str:
        loading.set()
        release.wait(10)
        return "from the holder"

    thread = threading.Thread(target=holder.get_or_load, args=("k", stuck))
    thread.start()
    loading.wait(5)
    assert impatient.get_or_load("k", lambda: "my own") == "my own"
    assert impatient.get("k") is None  # only the lease holder writes
    release.set()
    thread.join()
    assert impatient.get("k") == "from the holder"


@pytest.fixture
def memory_cache() -> Iterator[Cache]:
    cache = Cache(MemoryStore())
    yield cache
    cache.close()


def test_store_outage_during_a_miss_falls_back_to_the_loader() -> None:
    from cacheplug.testing import free_port

    cache = Cache(f"redis://127.0.0.1:{free_port()}/0", secret=SECRET)
    assert hammer(cache, "k", 8, lambda: "direct") == ["direct"] * 8
    cache.close()


def test_without_announcements_waiters_fall_back_to_backoff(redis_url: str) -> None:
    holder = Cache(redis_url, namespace="quiet", secret=SECRET)
    waiting_store = CountingRedisStore(redis_url)
    waiting_store.fills.stop()  # as if the subscription were down
    assert not waiting_store.fills.live
    waiter = Cache(waiting_store, namespace="quiet", secret=SECRET)
    loading = threading.Event()

    def slow_loader() -> str:
        loading.set()
        time.sleep(0.3)
        return "landed"

    thread = threading.Thread(target=holder.get_or_load, args=("k", slow_loader))
    thread.start()
    loading.wait(5)
    assert waiter.get_or_load("k", lambda: "not me") == "landed"
    thread.join()
    assert waiting_store.gets > 3  # it had to look again and again, in bounded slices
    holder.close()
    waiter.close()


class FirstReadRacesStore(RedisStore):
    """A real RedisStore whose first read answers as if it ran just before another caller's
    fill landed (the race every busy key sees); later reads are untouched."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.raced = False

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not self.raced:
            self.raced = True
            return [None, *super().get_many(keys[1:])]
        return super().get_many(keys)


def test_a_read_that_raced_a_fill_does_not_load_again(redis_url: str) -> None:
    first = Cache(redis_url, namespace="race", secret=SECRET)
    assert first.get_or_load("k", lambda: "loaded once") == "loaded once"  # lease let go
    late = Cache(FirstReadRacesStore(redis_url), namespace="race", secret=SECRET)

    def must_not_load() -> str:
        raise AssertionError("the value was already there once the lease was taken")

    assert late.get_or_load("k", must_not_load) == "loaded once"
    first.close()
    late.close()


class FailingAfterLeaseStore(RedisStore):
    """A real RedisStore that goes down right after the lease is taken."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.down = False

    def acquire_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> int:
        remaining = super().acquire_lease(lease_key, token, ttl_ms)
        self.down = True
        return remaining

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if self.down:
            raise CacheUnavailable("redis went away")
        return super().get_many(keys)

    def fill_with_lease(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        token: bytes,
        versions: Sequence[VersionCheck] = (),
    ) -> bool:
        raise CacheUnavailable("redis went away")


def test_an_outage_in_the_middle_of_a_miss_still_returns_the_loaders_value(
    redis_url: str,
) -> None:
    cache = Cache(FailingAfterLeaseStore(redis_url), namespace="outage", secret=SECRET)
    assert cache.get_or_load("k", lambda: "from the database") == "from the database"
    assert cache.stats().errors >= 1  # the read after the lease; nothing is filled
    cache.close()
