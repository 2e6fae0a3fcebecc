"""The L1 tier: hits without a round trip, dropped by every invalidation or write from any
process, never served blind (bus down), never refilled by a read an invalidation overtook."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from cacheplug import Cache, LocalTier, MemoryStore, RedisStore
from cacheplug._engine.local import LocalCache
from cacheplug._types import NOTHING
from cacheplug.testing.round_trips import RoundTrips

SECRET = "l1-secret"


@pytest.fixture
def pair(redis_url: str) -> Iterator[tuple[Cache, Cache, RoundTrips]]:
    """Cache A (with L1) and cache B, as two processes would have them: own connections, own
    bus subscriptions, one Redis."""
    store = RedisStore(redis_url)
    trips = RoundTrips(store)
    a = Cache(store, namespace="l1", secret=SECRET, l1=LocalTier(max_entries=100, ttl=30))
    b = Cache(redis_url, namespace="l1", secret=SECRET)
    assert store.fills.live or _wait_live(store)
    yield a, b, trips
    a.close()
    b.close()


def _wait_live(store: RedisStore) -> bool:
    store.fills.start()
    return store.fills.live


def _heard(cache: Cache) -> threading.Event:
    """An event set when cache's bus has delivered the next change."""
    event = threading.Event()
    unsubscribe = cache.store.fills.on_change(lambda key: event.set())
    event.unsubscribe = unsubscribe  # type: ignore[attr-defined]
    return event


def test_an_l1_hit_makes_no_round_trip(pair: tuple[Cache, Cache, RoundTrips]) -> None:
    a, _, trips = pair
    heard = _heard(a)
    assert a.get_or_load("k", lambda: "v") == "v"
    assert heard.wait(5)  # the fill's own announcement came back (it drops L1 once)
    assert a.get_or_load("k", lambda: "reloaded") == "v"  # from Redis: now kept in L1
    before = trips.count
    for _ in range(10):
        assert a.get_or_load("k", lambda: "reloaded") == "v"
        assert a.get("k") == "v"
    assert trips.count == before
    assert a.stats().l1_hits == 20


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        (lambda b: b.invalidate("k"), "reloaded"),
        (lambda b: b.invalidate_tags("t"), "reloaded"),
        (lambda b: b.bump(), "reloaded"),
        (lambda b: b.set("k", "written by B", tags="t"), "written by B"),
    ],
    ids=["key", "tag", "namespace", "write"],
)
def test_a_change_made_elsewhere_drops_the_local_copy(
    pair: tuple[Cache, Cache, RoundTrips], write: object, expected: str
) -> None:
    a, b, _ = pair
    assert a.get_or_load("k", lambda: "old", tags="t") == "old"
    assert a.get_or_load("k", lambda: "old", tags="t") == "old"  # kept in L1
    heard = _heard(a)
    write(b)  # type: ignore[operator]
    assert heard.wait(5)
    assert a.get_or_load("k", lambda: "reloaded", tags="t") == expected


def test_this_processs_own_invalidations_drop_the_copy_at_once(
    pair: tuple[Cache, Cache, RoundTrips],
) -> None:
    a, _, _ = pair
    for invalidate in (
        lambda: a.invalidate("k"),
        lambda: a.invalidate_tags("t"),
        lambda: a.set("k", "new", tags="t"),
        lambda: a.delete("k"),
    ):
        a.set("k", "old", tags="t")
        assert a.get_or_load("k", lambda: "loaded", tags="t") == "old"
        assert a.get_or_load("k", lambda: "loaded", tags="t") == "old"  # from L1
        invalidate()
        # No waiting for the bus: the very next read in this process misses L1.
        assert a.get_or_load("k", lambda: "loaded", tags="t") in ("new", "loaded")


def test_nothing_is_served_from_l1_while_the_bus_is_down(
    pair: tuple[Cache, Cache, RoundTrips],
) -> None:
    a, b, trips = pair
    heard = _heard(a)
    a.get_or_load("k", lambda: "old")
    assert heard.wait(5)  # the fill's own announcement (it drops L1 once)
    a.get_or_load("k", lambda: "old")  # now kept in L1
    before = trips.count
    assert a.get_or_load("k", lambda: "reloaded") == "old"
    assert trips.count == before  # an L1 hit
    a.store.fills.stop()  # as if the subscription had dropped
    before = trips.count
    b.invalidate("k")  # a message A cannot hear
    assert a.get_or_load("k", lambda: "reloaded") == "reloaded"
    assert trips.count > before


def test_a_closed_cache_keeps_nothing_in_l1(pair: tuple[Cache, Cache, RoundTrips]) -> None:
    a, b, _ = pair
    heard = _heard(a)
    a.get_or_load("k", lambda: "old")
    assert heard.wait(5)
    a.get_or_load("k", lambda: "old")  # kept in L1
    a.close()  # no bus from now on: the copy must go
    b.invalidate("k")
    assert a.get_or_load("k", lambda: "reloaded") == "reloaded"


def test_a_lost_subscription_empties_l1() -> None:
    local = LocalCache(LocalTier(), live=lambda: True)
    local.put("k", "v", 10.0, ("root",), 10, local.epoch)
    assert local.get("k", ("root",)) == "v"
    local.drop(None, "root")
    assert local.get("k", ("root",)) is NOTHING


def test_a_read_overtaken_by_an_invalidation_is_not_kept() -> None:
    local = LocalCache(LocalTier(), live=lambda: True)
    epoch = local.epoch  # a reader starts its store read...
    local.drop("k", "root")  # ...an invalidation arrives meanwhile...
    local.put("k", "read before it", 10.0, ("root",), 10, epoch)  # ...then the read lands
    assert local.get("k", ("root",)) is NOTHING


def test_entries_live_at_most_the_tier_ttl_and_within_bounds() -> None:
    now = [100.0]
    local = LocalCache(
        LocalTier(max_entries=2, max_bytes=1000, ttl=5.0, admission="lru"),
        live=lambda: True,
        monotonic=lambda: now[0],
    )
    local.put("a", 1, 60.0, ("root",), 10, local.epoch)
    now[0] += 5.1
    assert local.get("a", ("root",)) is NOTHING  # capped at the tier's 5 s, not the entry's 60
    for key in ("a", "b", "c"):
        local.put(key, key, 60.0, ("root",), 10, local.epoch)
    assert len(local) == 2
    assert local.get("a", ("root",)) is NOTHING  # least recently used went first
    local.put("big", "x", 60.0, ("root",), 2000, local.epoch)
    assert local.get("big", ("root",)) is NOTHING  # larger than the whole tier


def test_a_tag_drop_only_drops_the_entries_carrying_it() -> None:
    local = LocalCache(LocalTier(), live=lambda: True)
    local.put("a", 1, 60.0, ("root", "tag:x"), 10, local.epoch)
    local.put("b", 2, 60.0, ("root", "tag:y"), 10, local.epoch)
    local.drop("tag:x", "root")
    assert local.get("a", ("root", "tag:x")) is NOTHING
    assert local.get("b", ("root", "tag:y")) == 2
    local.drop("root", "root")
    assert len(local) == 0


def test_l1_on_the_embedded_store_follows_invalidations_synchronously() -> None:
    cache = Cache(MemoryStore(), l1=LocalTier())
    cache.get_or_load("k", lambda: "old", tags="t")
    assert cache.get_or_load("k", lambda: "x", tags="t") == "old"
    cache.invalidate_tags("t")
    assert cache.get_or_load("k", lambda: "new", tags="t") == "new"
    other = Cache(cache.store)  # another cache on the same in-process store
    other.set("k", "written by other", tags="t")
    assert cache.get_or_load("k", lambda: "x", tags="t") == "written by other"


def test_bad_l1_options_are_refused() -> None:
    with pytest.raises(TypeError):
        Cache(l1={"max_entries": 10})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        LocalTier(max_entries=0)


def test_tinylfu_admits_a_newcomer_only_if_it_was_missed_more_often_than_the_victim() -> None:
    local = LocalCache(LocalTier(max_entries=2, ttl=60), live=lambda: True)
    for key in ("hot", "warm"):
        for _ in range(3):  # missed (and stored) three times each
            local.put(key, key, 60.0, ("root",), 1, local.epoch)
    local.put("one-off", "x", 60.0, ("root",), 1, local.epoch)
    assert local.get("one-off", ("root",)) is NOTHING  # a single miss does not get in
    assert local.get("hot", ("root",)) == "hot"
    for _ in range(5):
        local.put("rising", "r", 60.0, ("root",), 1, local.epoch)
    assert local.get("rising", ("root",)) == "r"  # missed often enough: admitted
    assert len(local) == 2


def test_unknown_admission_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="admission"):
        LocalTier(admission="fifo")


def test_the_async_api_reads_through_l1_too() -> None:
    import asyncio

    cache = Cache(MemoryStore(), l1=LocalTier())

    async def scenario() -> list[object]:
        seen = [await cache.aget_or_load("k", lambda: "old", tags="t")]
        seen.append(await cache.aget_or_load("k", lambda: "x", tags="t"))  # from the store...
        seen.append(await cache.aget_or_load("k", lambda: "x", tags="t"))  # ...then from L1
        await cache.ainvalidate_tags("t")
        seen.append(await cache.aget_or_load("k", lambda: "new", tags="t"))
        seen.append(await cache.aget("k"))
        return seen

    assert asyncio.run(scenario()) == ["old", "old", "old", "new", "new"]
    assert cache._engine._local is not None
    assert cache._engine._local.hits == 1  # the third read
