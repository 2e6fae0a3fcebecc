"""Write-through and write-around: the cache never ends up holding a value older than the
database's, however writers and readers interleave."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from cacheplug import Cache

ROUNDS = 1000


class Database:
    """A dict with a commit point: what a writer stores is visible from then on."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.lock = threading.Lock()

    def write(
        self, key: str, value: int, delay: float, returns_after: float = 0.0
    ) -> Callable[[], int]:
        def commit() -> int:
            time.sleep(delay)
            with self.lock:
                self.rows[key] = value
            time.sleep(returns_after)  # the writer returns a while after its commit
            return value

        return commit

    def read(self, key: str) -> int | None:
        with self.lock:
            return self.rows.get(key)


def test_write_through_caches_what_it_wrote(cache: Cache) -> None:
    db = Database()
    assert cache.write_through("k", 1, db.write("k", 1, 0), tags=["t"]) == 1
    assert db.read("k") == 1
    assert cache.get("k") == 1
    assert cache.get_or_load("k", lambda: pytest.fail("cached"), tags=["t"]) == 1  # type: ignore[func-returns-value]
    cache.invalidate_tags("t")
    assert cache.get("k") is None


def test_a_writer_that_raises_leaves_the_key_invalidated(cache: Cache) -> None:
    cache.set("k", "old")

    def broken() -> None:
        raise RuntimeError("the database said no")

    with pytest.raises(RuntimeError):
        cache.write_through("k", "new", broken)
    assert cache.get("k") is None


Strategy = Callable[[Cache, Database, str, int, float, float], None]


def race(cache: Cache, strategy: Strategy) -> int:
    """Two writers and a reader race on one key for ROUNDS rounds; how many rounds ended with
    the cache holding something other than the database's final value."""
    db = Database()
    stale = 0
    rng = random.Random(7)
    for round_number in range(ROUNDS):
        key = f"k{round_number % 20}"
        delays = [rng.uniform(0, 0.002) for _ in range(5)]

        def reader(delay: float = delays[2], key: str = key) -> None:
            def load() -> int | None:
                value = db.read(key)
                time.sleep(delay)  # a slow load that read before a write
                return value

            cache.get_or_load(key, load, ttl=60)

        threads = [
            threading.Thread(
                target=strategy,
                args=(cache, db, key, round_number * 2 + i, delays[i], delays[3 + i]),
            )
            for i in range(2)
        ]
        threads.append(threading.Thread(target=reader))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        cached = cache.get(key)
        if cached is not None and cached != db.read(key):
            stale += 1
    return stale


def write_through(
    cache: Cache, db: Database, key: str, value: int, delay: float, returns_after: float
) -> None:
    cache.write_through(key, value, db.write(key, value, delay, returns_after), ttl=60)


def naive(
    cache: Cache, db: Database, key: str, value: int, delay: float, returns_after: float
) -> None:
    db.write(key, value, delay, returns_after)()
    cache.set(key, value, ttl=60)


def test_racing_writers_never_leave_an_older_value_cached(cache: Cache) -> None:
    assert race(cache, write_through) == 0


def test_the_race_is_real_a_naive_write_through_loses_it(cache: Cache) -> None:
    assert race(cache, naive) > 0


def test_write_around_invalidates_after_the_writer(cache: Cache) -> None:
    db = Database()
    cache.set("k", 0, tags="t")
    cache.set("other", 0, tags="t")
    assert cache.write_around("k", db.write("k", 1, 0), tags=["t"]) == 1
    assert cache.get("k") is None
    assert cache.get("other") is None
    assert cache.get_or_load("k", lambda: db.read("k")) == 1


def test_the_async_twins(cache: Cache) -> None:
    import asyncio

    db = Database()

    async def scenario() -> tuple[object, object, object]:
        async def commit() -> int:
            return db.write("k", 3, 0)()

        written = await cache.awrite_through("k", 3, commit, ttl=60)
        cached = await cache.aget("k")
        await cache.awrite_around("k", db.write("k", 4, 0))
        return written, cached, await cache.aget("k")

    assert asyncio.run(scenario()) == (3, 3, None)
    assert db.read("k") == 4
