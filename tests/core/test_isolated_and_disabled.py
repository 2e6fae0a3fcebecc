"""``Cache.isolated()`` and ``Cache.disabled()`` (the switches behind the pytest fixtures),
the ``NullStore`` under the second, and ``count_calls``: on each store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from cacheplug import Cache, LocalTier, Store
from cacheplug.stores import NullStore, store_from_url
from cacheplug.testing import count_calls

SECRET = "switches-secret"


class Loader:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"value {self.calls}"


@pytest.fixture
def l1_cache(store: Store) -> Iterator[Cache]:
    cache = Cache(
        store,
        namespace="switches",
        secret=SECRET if store.shared else None,
        l1=LocalTier(max_entries=100, ttl=30),
    )
    yield cache
    cache.close()


def test_isolated_sees_nothing_from_before_and_leaves_nothing_after(cache: Cache) -> None:
    cache.set("kept", "before")
    with cache.isolated():
        assert cache.namespace_name.startswith("test/t")
        assert cache.get("kept") is None
        cache.set("kept", "inside")
        cache.set("new", "inside")
        assert cache.get("kept") == "inside"
    assert cache.namespace_name == "test"
    assert cache.get("kept") == "before"
    assert cache.get("new") is None


def test_an_isolated_namespace_is_dropped_on_exit(cache: Cache) -> None:
    with cache.isolated("fixed"):
        cache.set("key", 1)
    with cache.isolated("fixed"):  # the same name again: its entries were orphaned
        assert cache.get("key") is None


def test_isolated_over_an_l1_tier(l1_cache: Cache) -> None:
    l1_cache.set("key", "outside")
    assert l1_cache.get("key") == "outside"  # now in L1 too
    with l1_cache.isolated():
        assert l1_cache.get("key") is None
        l1_cache.set("key", "inside")
        assert l1_cache.get("key") == "inside"
    assert l1_cache.get("key") == "outside"


def test_disabled_misses_every_read_and_stores_nothing(cache: Cache) -> None:
    cache.set("kept", "before")
    load = Loader()
    with cache.disabled():
        assert cache.get("kept") is None
        assert cache.set("new", 1) is False
        assert cache.add("new", 1) is False
        assert cache.get("new", "absent") == "absent"
        assert cache.get_many(["kept", "new"]) == {}
        assert [cache.get_or_load("kept", load) for _ in range(3)] == [
            "value 1",
            "value 2",
            "value 3",
        ]
        cache.invalidate("kept")
        cache.invalidate_tags("tag")
        cache.bump()
        assert cache.pending_invalidations() == []
        stats = cache.stats()
        assert (stats.hits, stats.loads) == (0, 3)
    # The store was never touched: what was there is there, nothing was added or removed.
    assert cache.get("kept") == "before"
    assert cache.get("new") is None


def test_disabled_runs_a_decorated_function_every_time(cache: Cache) -> None:
    load = Loader()

    @cache.cached(ttl=60, key="fixed")
    def compute() -> str:
        return load()

    compute()
    with cache.disabled():
        assert [compute(), compute()] == ["value 2", "value 3"]
    assert compute() == "value 1"


def test_disabled_async_reads_miss(cache: Cache) -> None:
    load = Loader()

    async def scenario() -> list[str]:
        return [await cache.aget_or_load("key", load) for _ in range(2)]

    with cache.disabled():
        assert asyncio.run(scenario()) == ["value 1", "value 2"]


def test_disabled_skips_the_l1_tier(l1_cache: Cache) -> None:
    l1_cache.set("key", "outside")
    assert l1_cache.get("key") == "outside"
    with l1_cache.disabled():
        assert l1_cache.get("key") is None
        assert l1_cache.get_or_load("key", Loader()) == "value 1"
    assert l1_cache.get("key") == "outside"


def test_a_disabled_namespace_view_keeps_its_keys(cache: Cache) -> None:
    view = cache.namespace("catalog")
    before = view.store_key("product:1")
    with view.disabled():
        assert view.store_key("product:1") == before
        assert view.namespace_name == "test/catalog"


def test_the_switches_nest(cache: Cache) -> None:
    cache.set("key", "outside")
    with cache.isolated():
        cache.set("key", "isolated")
        with cache.disabled():
            assert cache.get("key") is None
        assert cache.get("key") == "isolated"
        with cache.disabled(), cache.isolated():
            assert cache.get_or_load("key", Loader()) == "value 1"
            assert cache.get("key") is None
    assert cache.get("key") == "outside"


def test_null_store_by_url() -> None:
    assert isinstance(store_from_url("null://"), NullStore)
    with Cache("null://") as cache:
        load = Loader()
        assert [cache.get_or_load("key", load) for _ in range(2)] == ["value 1", "value 2"]
        assert cache.incr("counter") == 1
        assert cache.incr("counter") == 1
        with cache.lock("job", blocking_timeout=0):
            pass


def test_count_calls_counts_the_block_alone(cache: Cache) -> None:
    load = Loader()
    cache.get_or_load("a", load)  # before the block
    with count_calls(cache) as calls:
        cache.get_or_load("a", load)
        cache.get_or_load("b", load)
        assert (calls.hits, calls.misses, calls.loads) == (1, 1, 1)
        cache.get_or_load("b", load)
        cache.get("absent")
    cache.get_or_load("c", load)  # after the block
    assert (calls.hits, calls.misses, calls.loads) == (2, 2, 1)
    assert calls.as_dict()["hits"] == 2
    assert "hits=2" in repr(calls)


def test_count_calls_sums_over_caches(cache: Cache) -> None:
    other = cache.namespace("other")  # a view: shares the counters, so counted once
    with Cache(namespace="second") as second, count_calls(cache, second) as calls:
        other.get_or_load("a", Loader())
        second.get_or_load("a", Loader())
        second.get_or_load("a", Loader())
    assert (calls.hits, calls.misses, calls.loads) == (1, 2, 2)


def test_what_a_disabled_cache_publishes_leaves_the_shared_totals_alone(cache: Cache) -> None:
    cache.get_or_load("a", Loader())
    cache.get_or_load("a", Loader())
    cache.publish_stats()
    with cache.disabled():
        for _ in range(5):
            cache.get_or_load("a", Loader())
        cache.publish_stats()
    cache.get("a")
    cache.publish_stats()
    shared, _ = cache.shared_stats()
    assert (shared.hits, shared.misses, shared.loads) == (2, 1, 1)
