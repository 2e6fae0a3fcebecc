"""``max_staleness`` (a bound on an entry's age for one read, ``0`` bypassing the cache) and
negative caching (``negative_ttl``: how long a ``None`` from the loader is cached)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from _loaders import Loader

from cacheplug import Cache, ConfigurationError, MemoryStore, Store
from cacheplug.testing import FakeClock

SECRET = "negative-test-secret"


class Database:
    """A dict standing in for a table; ``load(id)`` is the query a loader runs."""

    def __init__(self) -> None:
        self.rows: dict[int, str] = {}
        self.queries = 0

    def load(self, row_id: int) -> str | None:
        self.queries += 1
        return self.rows.get(row_id)


@pytest.fixture
def clocked_store(store: Store, clock: FakeClock) -> Store:
    """The store of ``clocked_cache``: a MemoryStore on the fake clock, or Redis."""
    return MemoryStore(clock=clock.monotonic) if isinstance(store, MemoryStore) else store


@pytest.fixture
def make_cache(clocked_store: Store, clock: FakeClock) -> Iterator[Callable[..., Cache]]:
    """Build caches with a ``negative_ttl`` option over the clocked store."""
    made: list[Cache] = []

    def make(negative_ttl: float | None = None) -> Cache:
        secret = SECRET if clocked_store.shared else None
        cache = Cache(
            clocked_store, namespace="neg", secret=secret, clock=clock, negative_ttl=negative_ttl
        )
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.close()


@pytest.fixture
def local_cache(clock: FakeClock) -> Iterator[Cache]:
    """A cache on the embedded store and the fake clock, for rules the cache decides alone
    (the store plays no part in them)."""
    cache = Cache(MemoryStore(clock=clock.monotonic), namespace="local", clock=clock)
    yield cache
    cache.close()


# -- max_staleness -----------------------------------------------------------------------------


def test_max_staleness_turns_an_older_entry_into_a_miss(
    clocked_cache: Cache, clock: FakeClock
) -> None:
    load = Loader("v")
    assert clocked_cache.get_or_load("k", load, ttl=1000, max_staleness=5.0) == "v1"
    clock.advance(4)
    assert clocked_cache.get_or_load("k", load, ttl=1000, max_staleness=5.0) == "v1"
    clock.advance(2)  # written 6 s ago: fresh by its ttl, too old for this read
    assert clocked_cache.get_or_load("k", load, ttl=1000, max_staleness=5.0) == "v2"
    # The reloaded value was stored: the next read within the bound hits.
    clock.advance(1)
    assert clocked_cache.get_or_load("k", load, ttl=1000, max_staleness=5.0) == "v2"
    assert clocked_cache.get("k") == "v2"
    assert load.calls == 2


def test_max_staleness_is_per_read(local_cache: Cache, clock: FakeClock) -> None:
    load = Loader("v")
    assert local_cache.get_or_load("k", load, ttl=1000) == "v1"
    clock.advance(30)
    assert local_cache.get_or_load("k", load, ttl=1000) == "v1"  # no bound: a hit
    assert local_cache.get_or_load("k", load, ttl=1000, max_staleness=60) == "v1"
    assert local_cache.get_or_load("k", load, ttl=1000, max_staleness=10) == "v2"
    assert local_cache.get_or_load("k", load, ttl=1000, max_staleness=10) == "v2"
    assert load.calls == 2


def test_max_staleness_counts_from_when_the_entry_was_written(
    local_cache: Cache, clock: FakeClock
) -> None:
    local_cache.set("k", "set", ttl=None)
    clock.advance(10)
    load = Loader("loaded")
    assert local_cache.get_or_load("k", load, max_staleness=20) == "set"
    assert local_cache.get_or_load("k", load, max_staleness=5) == "loaded1"
    assert load.calls == 1


def test_async_max_staleness(local_cache: Cache, clock: FakeClock) -> None:
    load = Loader("v")

    async def scenario() -> list[str]:
        seen = [await local_cache.aget_or_load("k", load, ttl=1000, max_staleness=5)]
        clock.advance(6)
        seen.append(await local_cache.aget_or_load("k", load, ttl=1000, max_staleness=5))
        seen.append(await local_cache.aget_or_load("k", load, ttl=1000, max_staleness=5))
        return seen

    assert asyncio.run(scenario()) == ["v1", "v2", "v2"]
    assert load.calls == 2


def test_max_staleness_zero_bypasses_the_cache(cache: Cache) -> None:
    cache.set("cached", "in the cache", ttl=60)
    load = Loader("loaded")
    before = cache.stats()
    assert cache.get_or_load("cached", load, ttl=60, max_staleness=0) == "loaded1"
    assert cache.get_or_load("cached", load, ttl=60, max_staleness=0) == "loaded2"
    assert cache.get_or_load("absent", load, ttl=60, max_staleness=0.0) == "loaded3"
    assert load.calls == 3
    # Nothing was read ...
    after = cache.stats()
    assert (after.hits, after.misses) == (before.hits, before.misses)
    assert after.bytes_read == before.bytes_read
    assert after.bypassed == before.bypassed + 3
    # ... and nothing was stored.
    assert cache.get("cached") == "in the cache"
    assert cache.get("absent", "miss") == "miss"


def test_max_staleness_zero_bypasses_the_cache_in_async_code(cache: Cache) -> None:
    cache.set("cached", "in the cache", ttl=60)
    calls: list[int] = []

    async def fetch() -> str:
        calls.append(1)
        return f"fetched{len(calls)}"

    async def scenario() -> list[str]:
        return [
            await cache.aget_or_load("cached", fetch, ttl=60, max_staleness=0),
            await cache.aget_or_load("absent", fetch, ttl=60, max_staleness=0),
            await cache.aget_or_load("absent", lambda: "plain", ttl=60, max_staleness=0),
        ]

    assert asyncio.run(scenario()) == ["fetched1", "fetched2", "plain"]
    assert cache.stats().bypassed == 3
    assert cache.get("cached") == "in the cache"
    assert cache.get("absent", "miss") == "miss"


def test_a_bypassing_read_counts_its_loader_call(cache: Cache) -> None:
    # ``loads`` counts loader calls, whichever path made them.
    cache.get_or_load("k", lambda: "v", ttl=60, max_staleness=0)
    cache.get_or_load("k", lambda: "v", ttl=60, max_staleness=0)
    assert cache.stats().loads == 2


def test_a_negative_max_staleness_is_refused(cache: Cache) -> None:
    with pytest.raises(ConfigurationError, match="max_staleness"):
        cache.get_or_load("k", lambda: "v", max_staleness=-1)
    assert cache.get("k", "miss") == "miss"


# -- negative caching --------------------------------------------------------------------------


def test_by_default_a_none_result_is_cached_like_any_value(cache: Cache) -> None:
    db = Database()
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=60) is None
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=60) is None
    assert db.queries == 1
    assert cache.get("user:42", "miss") is None  # a hit on a cached None


def test_an_insert_after_a_cached_miss_is_seen_once_the_key_is_invalidated(
    cache: Cache,
) -> None:
    db = Database()
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=60) is None
    db.rows[42] = "Ada"  # the insert commits ...
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=60) is None  # (cached miss)
    cache.invalidate("user:42")  # ... and is followed by the invalidation of its key
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=60) == "Ada"
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=60) == "Ada"
    assert db.queries == 2


def test_an_insert_after_a_cached_miss_is_seen_once_its_tag_is_invalidated(
    cache: Cache,
) -> None:
    db = Database()

    def read(row_id: int) -> str | None:
        return cache.get_or_load(
            f"user:{row_id}", lambda: db.load(row_id), ttl=60, tags=["users", f"user:{row_id}"]
        )

    assert read(42) is None
    assert read(7) is None
    db.rows[42] = "Ada"
    db.rows[7] = "Grace"
    assert read(42) is None
    cache.invalidate_tags("user:42")
    assert read(42) == "Ada"
    assert read(7) is None  # its own tag was not invalidated
    cache.invalidate_tags("users")
    assert read(7) == "Grace"
    assert read(42) == "Ada"
    assert db.queries == 5


def test_a_negative_ttl_caches_none_for_that_long_only(
    clocked_cache: Cache, clock: FakeClock
) -> None:
    db = Database()

    def read(row_id: int) -> str | None:
        return clocked_cache.get_or_load(
            f"user:{row_id}", lambda: db.load(row_id), ttl=600, negative_ttl=5
        )

    db.rows[1] = "Ada"
    assert read(1) == "Ada"
    assert read(42) is None
    assert db.queries == 2
    clock.advance(4)
    db.rows[42] = "Grace"  # inserted without an invalidation
    assert read(42) is None  # still the cached miss
    assert db.queries == 2
    clock.advance(2)  # the cached None expired; the value lives on (ttl=600)
    assert read(42) == "Grace"
    assert read(1) == "Ada"
    assert db.queries == 3
    clock.advance(100)
    assert read(42) == "Grace"  # a value found is cached for ttl, not negative_ttl
    assert db.queries == 3


def test_negative_ttl_zero_never_caches_none(cache: Cache) -> None:
    db = Database()
    for _ in range(3):
        assert cache.get_or_load("user:42", lambda: db.load(42), ttl=60, negative_ttl=0) is None
    assert db.queries == 3
    assert cache.get("user:42", "miss") == "miss"
    db.rows[42] = "Ada"  # no invalidation needed: the miss was not cached
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=60, negative_ttl=0) == "Ada"
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=60, negative_ttl=0) == "Ada"
    assert db.queries == 4


def test_negative_ttl_zero_in_async_code(local_cache: Cache) -> None:
    db = Database()

    async def fetch() -> str | None:
        return db.load(42)

    async def scenario() -> list[str | None]:
        seen = [await local_cache.aget_or_load("user:42", fetch, ttl=60, negative_ttl=0)]
        seen.append(await local_cache.aget_or_load("user:42", fetch, ttl=60, negative_ttl=0))
        db.rows[42] = "Ada"
        seen.append(await local_cache.aget_or_load("user:42", fetch, ttl=60, negative_ttl=0))
        seen.append(await local_cache.aget_or_load("user:42", fetch, ttl=60, negative_ttl=0))
        return seen

    assert asyncio.run(scenario()) == [None, None, "Ada", "Ada"]
    assert db.queries == 3


def test_a_none_set_explicitly_is_cached_whatever_the_negative_ttl(
    make_cache: Callable[..., Cache],
) -> None:
    cache = make_cache(negative_ttl=0)
    cache.set("k", None, ttl=60)
    assert cache.get("k", "miss") is None
    load = Loader("loaded")
    assert cache.get_or_load("k", load, ttl=60) is None
    assert load.calls == 0


def test_the_cache_option_negative_ttl_zero_never_caches_none(clock: FakeClock) -> None:
    cache = Cache(MemoryStore(clock=clock.monotonic), clock=clock, negative_ttl=0)
    db = Database()
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=60) is None
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=60) is None
    assert db.queries == 2
    # A call may override it: cache this miss for a minute, or like any value (None).
    assert cache.get_or_load("user:1", lambda: db.load(1), ttl=60, negative_ttl=60) is None
    assert cache.get_or_load("user:1", lambda: db.load(1), ttl=60, negative_ttl=60) is None
    assert cache.get_or_load("user:2", lambda: db.load(2), ttl=60, negative_ttl=None) is None
    assert cache.get_or_load("user:2", lambda: db.load(2), ttl=60, negative_ttl=None) is None
    assert db.queries == 4
    cache.close()


def test_the_cache_option_negative_ttl_bounds_cached_misses(
    make_cache: Callable[..., Cache], clock: FakeClock
) -> None:
    cache = make_cache(negative_ttl=5)
    assert cache.negative_ttl == 5.0
    db = Database()

    def read(row_id: int, **options: float | None) -> str | None:
        return cache.get_or_load(f"user:{row_id}", lambda: db.load(row_id), ttl=600, **options)

    db.rows[1] = "Ada"
    assert read(1) == "Ada"
    assert read(42) is None
    assert read(7, negative_ttl=100) is None  # this call's own bound
    assert db.queries == 3
    db.rows[42] = "Grace"
    db.rows[7] = "Linus"
    clock.advance(6)
    assert read(42) == "Grace"
    assert read(7, negative_ttl=100) is None
    assert read(1) == "Ada"
    assert db.queries == 4
    clock.advance(100)
    assert read(7, negative_ttl=100) == "Linus"
    assert db.queries == 5


def test_the_cache_option_negative_ttl_applies_to_async_loads(clock: FakeClock) -> None:
    cache = Cache(MemoryStore(clock=clock.monotonic), clock=clock, negative_ttl=5)
    db = Database()

    async def fetch() -> str | None:
        return db.load(42)

    async def scenario() -> list[str | None]:
        seen = [await cache.aget_or_load("user:42", fetch, ttl=600)]
        db.rows[42] = "Ada"
        seen.append(await cache.aget_or_load("user:42", fetch, ttl=600))
        clock.advance(6)
        seen.append(await cache.aget_or_load("user:42", fetch, ttl=600))
        return seen

    assert asyncio.run(scenario()) == [None, None, "Ada"]
    assert db.queries == 2
    cache.close()


def test_the_cached_miss_survives_only_until_invalidated_with_a_negative_ttl(
    clock: FakeClock,
) -> None:
    cache = Cache(MemoryStore(clock=clock.monotonic), clock=clock, negative_ttl=300)
    db = Database()
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=600, tags="users") is None
    db.rows[42] = "Ada"
    cache.invalidate_tags("users")
    assert cache.get_or_load("user:42", lambda: db.load(42), ttl=600, tags="users") == "Ada"
    assert db.queries == 2
    cache.close()


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), "5", True])
def test_a_bad_negative_ttl_is_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="negative_ttl"):
        Cache(negative_ttl=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, -0.001, "5"])
def test_a_bad_negative_ttl_for_one_call_is_refused(cache: Cache, bad: object) -> None:
    load = Loader("v")
    with pytest.raises(ConfigurationError, match="negative_ttl"):
        cache.get_or_load("k", load, ttl=60, negative_ttl=bad)  # type: ignore[arg-type]
    assert load.calls == 0
    assert cache.get("k", "miss") == "miss"


def test_negative_ttl_accepts_zero_and_positive_numbers() -> None:
    for good, expected in [(0, 0.0), (0.5, 0.5), (30, 30.0), (None, None)]:
        with Cache(negative_ttl=good) as cache:
            assert cache.negative_ttl == expected
