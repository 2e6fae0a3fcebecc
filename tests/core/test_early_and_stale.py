"""XFetch early recomputation, stale-while-revalidate and refresh-ahead."""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time

import pytest

from cacheplug import Cache, ConfigurationError, MemoryStore, XFetch
from cacheplug.testing import FakeClock


def test_xfetch_rate_matches_the_paper() -> None:
    # P(recompute) at remaining time r is exp(-r / (delta * beta)).
    draws = 100_000
    for delta, beta, remaining in [(1.0, 1.0, 1.0), (0.5, 2.0, 0.25), (2.0, 1.0, 5.0)]:
        rng = random.Random(20151114)
        xfetch = XFetch(beta=beta, rand=lambda rng=rng: 1.0 - rng.random())
        now, expiry = 1000.0, 1000.0 + remaining
        early = sum(xfetch.should_recompute(now, expiry, delta) for _ in range(draws))
        expected = math.exp(-remaining / (delta * beta))
        sigma = math.sqrt(expected * (1 - expected) / draws)
        assert abs(early / draws - expected) <= 4 * sigma, (delta, beta, remaining)


def test_xfetch_rate_at_one_loader_time_left_is_about_37_percent() -> None:
    rng = random.Random(7)
    xfetch = XFetch(rand=lambda: 1.0 - rng.random())
    rate = sum(xfetch.should_recompute(0.0, 1.0, 1.0) for _ in range(100_000)) / 100_000
    assert abs(rate - 0.368) < 0.006


def test_default_draws_are_never_zero() -> None:
    xfetch = XFetch()
    draws = [xfetch.rand() for _ in range(100_000)]
    assert all(0.0 < d <= 1.0 for d in draws)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        XFetch(rand=lambda: 0.0).should_recompute(0.0, 1.0, 1.0)


def test_a_draw_of_one_degenerates_to_a_plain_ttl() -> None:
    xfetch = XFetch(beta=5.0, rand=lambda: 1.0)
    assert not xfetch.should_recompute(now=9.999, fresh_until=10.0, delta=100.0)
    assert xfetch.should_recompute(now=10.0, fresh_until=10.0, delta=100.0)
    with pytest.raises(ValueError, match="beta"):
        XFetch(beta=0)


def test_with_xfetch_a_hot_key_never_blocks_after_warm_up() -> None:
    clock = FakeClock()
    rng = random.Random(3)
    cache = Cache(
        MemoryStore(clock=clock.monotonic),
        clock=clock,
        early=XFetch(beta=1.0, rand=lambda: 1.0 - rng.random()),
    )
    versions: list[int] = []

    async def load() -> int:
        clock.advance(0.2)  # the load takes 200 ms (of the fake clock)
        versions.append(len(versions) + 1)
        return versions[-1]

    async def scenario() -> list[int]:
        seen = []
        for _ in range(3000):  # 30 s of reads every 10 ms, ttl 1 s
            seen.append(await cache.aget_or_load("hot", load, ttl=1.0))
            clock.advance(0.01)
            for _ in range(3):
                await asyncio.sleep(0)  # let a background refresh run
        return seen

    seen = asyncio.run(scenario())
    stats = cache.stats()
    assert stats.misses == 1  # the warm-up; every later read was a hit
    assert stats.refreshes >= 20  # about one refresh per second of reads
    assert seen == sorted(seen)  # never an older value after a newer one
    assert len(versions) == stats.loads


def test_stale_while_revalidate_serves_stale_and_refreshes_once(cache: Cache) -> None:
    clock = FakeClock()
    store = cache.store if cache.store.shared else MemoryStore(clock=clock.monotonic)
    secret = "s" if store.shared else None
    swr = Cache(store, namespace="swr", secret=secret, clock=clock, stale_ttl=60)
    loads: list[int] = []
    gate = threading.Event()

    def load() -> str:
        loads.append(1)
        version = len(loads)
        if version > 1:
            gate.wait(10)  # the refresh lands only when the test says so
        return f"v{version}"

    assert swr.get_or_load("page", load, ttl=10) == "v1"
    clock.advance(15)  # stale, but within stale_ttl
    results = [swr.get_or_load("page", load, ttl=10) for _ in range(20)]
    assert results == ["v1"] * 20  # served at once, stale, while one refresh runs
    gate.set()
    deadline = time.monotonic() + 10
    while swr.get_or_load("page", load, ttl=10) != "v2" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert swr.get_or_load("page", load, ttl=10) == "v2"
    assert len(loads) == 2  # one background refresh for twenty stale reads
    # The refresh is counted once its store call returns, which may be just after a reader
    # already sees v2: wait for the count as for the value.
    while swr.stats().refreshes < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = swr.stats()
    assert stats.stale_hits >= 20
    assert stats.refreshes == 1
    swr.close()


def test_past_the_stale_window_a_read_blocks_and_loads() -> None:
    clock = FakeClock()
    cache = Cache(MemoryStore(clock=clock.monotonic), clock=clock, stale_ttl=5)
    assert cache.get_or_load("k", lambda: "old", ttl=10) == "old"
    clock.advance(16)  # 10 fresh + 5 stale have passed
    assert cache.get_or_load("k", lambda: "new", ttl=10) == "new"
    assert cache.stats().stale_hits == 0


def test_a_call_without_stale_ttl_does_not_serve_stale() -> None:
    clock = FakeClock()
    cache = Cache(MemoryStore(clock=clock.monotonic), clock=clock)
    assert cache.get_or_load("k", lambda: "old", ttl=10, stale_ttl=30) == "old"
    clock.advance(12)
    assert cache.get_or_load("k", lambda: "fresh", ttl=10, stale_ttl=0) == "fresh"


def test_refresh_ahead_refreshes_in_the_background_after_the_fraction() -> None:
    clock = FakeClock()
    cache = Cache(MemoryStore(clock=clock.monotonic), clock=clock)
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    async def scenario() -> list[int]:
        seen = [await cache.aget_or_load("k", load, ttl=10, refresh_ahead=0.8)]
        clock.advance(7)  # 70%: no refresh yet
        seen.append(await cache.aget_or_load("k", load, ttl=10, refresh_ahead=0.8))
        await asyncio.sleep(0)
        clock.advance(2)  # 90%: refresh in the background, current value served
        seen.append(await cache.aget_or_load("k", load, ttl=10, refresh_ahead=0.8))
        for _ in range(5):
            await asyncio.sleep(0)
        seen.append(await cache.aget_or_load("k", load, ttl=10, refresh_ahead=0.8))
        return seen

    assert asyncio.run(scenario()) == [1, 1, 1, 2]
    assert cache.stats().misses == 1


def test_decorator_accepts_read_options() -> None:
    clock = FakeClock()
    cache = Cache(MemoryStore(clock=clock.monotonic), clock=clock)
    calls: list[int] = []

    @cache.cached(ttl=10, stale_ttl=100)
    def report() -> int:
        calls.append(1)
        return len(calls)

    assert report() == 1
    clock.advance(20)
    assert report() == 1  # stale, served at once
    cache.close()  # waits for the background refresh
    assert calls == [1, 1]


def test_bad_read_options_are_refused() -> None:
    cache = Cache()
    with pytest.raises(ConfigurationError):
        cache.get_or_load("k", lambda: 1, refresh_ahead=1.5)
    with pytest.raises(ConfigurationError):
        cache.get_or_load("k", lambda: 1, stale_ttl=-1)
    with pytest.raises(ConfigurationError):
        Cache(lock_timeout=0)
    with pytest.raises(ConfigurationError):
        cache.cached(refresh_ahead=0)


def test_background_refreshes_do_not_outlive_close() -> None:
    clock = FakeClock()
    cache = Cache(MemoryStore(clock=clock.monotonic), clock=clock, stale_ttl=60)
    started, finished = threading.Event(), threading.Event()

    def slow_refresh() -> str:
        started.set()
        time.sleep(0.3)
        finished.set()
        return "refreshed"

    cache.set("k", "old", ttl=1)
    clock.advance(2)
    assert cache.get_or_load("k", slow_refresh, ttl=1) == "old"
    assert started.wait(5)
    cache.close()
    assert finished.is_set()  # close() waited for the refresh under way
    # After close, stale reads schedule nothing more.
    clock.advance(5)
    assert cache.get_or_load("k", slow_refresh, ttl=1) in ("old", "refreshed")
    assert cache.stats().refreshes == 1


def test_async_background_refreshes_are_cancelled_by_aclose() -> None:
    clock = FakeClock()
    cache = Cache(MemoryStore(clock=clock.monotonic), clock=clock, stale_ttl=60)
    cancelled = asyncio.Event

    async def scenario() -> bool:
        gate = asyncio.Event()
        flag = cancelled()

        async def never_finishes() -> str:
            try:
                await gate.wait()
            except asyncio.CancelledError:
                flag.set()
                raise
            return "unreachable"

        await cache.aset("k", "old", ttl=1)
        clock.advance(2)
        assert await cache.aget_or_load("k", never_finishes, ttl=1) == "old"
        await asyncio.sleep(0)
        await cache.aclose()
        return flag.is_set()

    assert asyncio.run(scenario()) is True
