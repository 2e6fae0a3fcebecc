"""Cache.inspect: what is stored under a key, as a person debugging would want it."""

from __future__ import annotations

from cacheplug import Cache
from cacheplug.testing import FakeClock


def test_a_fresh_entry_with_its_tags(clocked_cache: Cache, clock: FakeClock) -> None:
    clocked_cache.set("k", {"a": 1}, ttl=60, tags=["catalog", "product:1"])
    clock.advance(10)
    info = clocked_cache.inspect("k")
    assert info is not None
    assert info.state == "fresh"
    assert info.tags == ("catalog", "product:1")
    assert info.age == 10
    assert info.fresh_for == 50
    assert info.value_type == "dict"
    assert info.size > 0
    assert info.store_key == clocked_cache.store_key("k")
    assert info.as_dict()["state"] == "fresh"


def test_stale_outdated_and_absent(clocked_cache: Cache, clock: FakeClock) -> None:
    clocked_cache.set("k", 1, ttl=60, tags="t")
    clocked_cache.set("forever", 1, ttl=None)
    assert clocked_cache.inspect("missing") is None
    info = clocked_cache.inspect("forever")
    assert info is not None
    assert info.fresh_for is None
    assert info.ttl_left is None
    clocked_cache.invalidate_tags("t")
    info = clocked_cache.inspect("k")
    assert info is not None
    assert info.state == "outdated"
    clocked_cache.set("s", 1, ttl=1)
    clock.advance(2)
    info = clocked_cache.inspect("s")
    if clocked_cache.store.shared:  # Redis keeps it by real time: stale by the cache's clock
        assert info is not None
        assert info.state == "stale"
        assert info.fresh_for == -1
    else:  # the in-process store runs on the same fake clock: already dropped
        assert info is None


def test_a_tampered_entry_is_reported_discarded(redis_url: str) -> None:
    import redis

    cache = Cache(redis_url, namespace="inspect", secret="s3cret")
    try:
        cache.set("k", "v")
        client = redis.Redis.from_url(redis_url)
        client.set(cache.store_key("k"), b"garbage" * 3)
        info = cache.inspect("k")
        assert info is not None
        assert info.state == "discarded"
        assert info.size == 21
        client.close()
    finally:
        cache.close()


def test_stats_are_summed_over_processes(redis_url: str) -> None:
    """Two caches stand for two processes; a third reads what they published."""
    first = Cache(redis_url, namespace="shared", secret="s")
    second = Cache(redis_url, namespace="shared", secret="s")
    reader = Cache(redis_url, namespace="shared", secret="s")
    try:
        first.get_or_load("a", lambda: 1)
        first.get_or_load("a", lambda: 1)
        second.get_or_load("b", lambda: 2)
        first.publish_stats()
        second.publish_stats()
        second.publish_stats()  # nothing new: nothing added twice
        totals, _ = reader.shared_stats()
        assert (totals.hits, totals.misses, totals.loads) == (1, 2, 2)
        first.get_or_load("a", lambda: 1)
        first.publish_stats()
        totals, _ = reader.shared_stats()
        assert totals.hits == 2
        assert reader.stats().hits == 0  # its own counters are its own
    finally:
        for cache in (first, second, reader):
            cache.close()
