"""The async API mirrors the sync one (over redis.asyncio for Redis)."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest
import redis

from cacheplug import Cache, NotACounter


def test_async_round_trip(cache: Cache) -> None:
    async def scenario() -> None:
        assert await cache.aget("absent", default="d") == "d"
        assert await cache.aset("k", {"a": (1, 2)}) is True
        assert await cache.aget("k") == {"a": (1, 2)}
        assert await cache.aadd("k", "other") is False
        assert await cache.aadd("k2", None) is True
        assert await cache.aget("k2", default="d") is None
        assert await cache.aset_many({"m1": 1, "m2": 2}) == []
        assert await cache.aget_many(["m1", "m2", "m3"]) == {"m1": 1, "m2": 2}
        assert await cache.adelete("k") is True
        assert await cache.adelete_many(["m1", "m2"]) == 2
        assert await cache.aincr("n", 5) == 5
        assert await cache.adecr("n") == 4
        await cache.aset("text", "x")
        with pytest.raises(NotACounter):
            await cache.aincr("text")

    asyncio.run(scenario())
    # What the async API wrote, the sync API reads.
    assert cache.get("k2", default="d") is None
    assert cache.get("n") == 4


def test_aget_or_load_with_coroutine_and_plain_loaders(cache: Cache) -> None:
    calls: list[str] = []

    async def fetch() -> list[int]:
        calls.append("async")
        await asyncio.sleep(0)
        return [1, 2, 3]

    def fetch_sync() -> str:
        calls.append("sync")
        return "plain"

    async def scenario() -> None:
        assert await cache.aget_or_load("a", fetch, ttl=30) == [1, 2, 3]
        assert await cache.aget_or_load("a", fetch, ttl=30) == [1, 2, 3]
        assert await cache.aget_or_load("b", fetch_sync) == "plain"
        assert await cache.aget_or_load("b", fetch_sync) == "plain"

    asyncio.run(scenario())
    assert calls == ["async", "sync"]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.loads) == (2, 2, 2)


def test_async_works_across_event_loops(redis_url: str) -> None:
    cache = Cache(redis_url, secret="s")
    for round_number in range(3):
        asyncio.run(cache.aset("loop", round_number))
        assert asyncio.run(cache.aget("loop")) == round_number
    asyncio.run(cache.aclose())


def test_a_loop_per_call_leaves_no_connection_behind(redis_url: str) -> None:
    # asyncio.run() per call, or asgiref's async_to_sync per request (an async view under
    # WSGI), runs each call on a loop of its own: once closed, its connections must go, or
    # a busy process runs out of sockets (and Redis of clients).
    watcher = redis.Redis.from_url(redis_url)
    cache = Cache(redis_url, secret="s", namespace="loop-per-call")
    try:
        cache.set("k", 1)
        asyncio.run(cache.aget("k"))
        with warnings.catch_warnings():
            # Closed with their loop's transports, which warn that nobody closed them.
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
            before = len(watcher.client_list())
            for _ in range(40):
                assert asyncio.run(cache.aget("k")) == 1
            gc.collect()
        assert len(watcher.client_list()) <= before + 2  # this loop's, nothing per loop
    finally:
        cache.close()
        watcher.close()


def test_many_concurrent_tasks(cache: Cache) -> None:
    async def scenario() -> list[int]:
        await asyncio.gather(*(cache.aset(f"t{i}", i) for i in range(50)))
        return await asyncio.gather(*(cache.aget(f"t{i}") for i in range(50)))

    assert asyncio.run(scenario()) == list(range(50))
