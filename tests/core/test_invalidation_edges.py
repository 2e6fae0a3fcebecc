"""Corners of invalidation found in review: counters, mismatched tags, nested namespace names,
get_many during a pending tag invalidation, and the pending queue's overflow under a retry."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest

from cacheplug import Cache, CacheUnavailable, MemoryStore, RedisStore, Store
from cacheplug._engine.pending import PendingInvalidations

SECRET = "edges-secret"


def _cache(store: Store, **options: object) -> Cache:
    options.setdefault("namespace", "edges")
    return Cache(store, secret=SECRET if store.shared else None, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("signed", [True, False])
def test_an_invalidated_integer_does_not_come_back_through_incr(
    redis_url: str, signed: bool
) -> None:
    cache = Cache(redis_url, namespace="edges", secret=SECRET if signed else None)
    try:
        cache.set("hits", 5, tags="T")
        cache.invalidate_tags("T")
        assert cache.get("hits") is None
        assert cache.incr("hits") == 1  # starts over, not 6
        assert cache.get("hits") == 1
        cache.set("n", 10)
        cache.bump()
        assert cache.incr("n", 2) == 2
        cache.set("kept", 7, tags="other")
        assert cache.incr("kept") == 8  # a current integer is still counted on
    finally:
        cache.close()


def test_an_invalidated_integer_does_not_come_back_in_process() -> None:
    cache = Cache(MemoryStore())
    cache.set("hits", 5, tags="T")
    cache.invalidate_tags("T")
    assert cache.incr("hits", 3) == 3


def test_callers_with_other_tags_do_not_join_a_load(store: Store) -> None:
    cache = _cache(store, wait_timeout=0.2)  # B's reader waits this long for A's lease
    started, release = threading.Event(), threading.Event()

    def slow_a() -> str:
        started.set()
        release.wait(10)
        return "loaded with tag A"

    thread = threading.Thread(target=cache.get_or_load, args=("k", slow_a), kwargs={"tags": "A"})
    thread.start()
    try:
        assert started.wait(5)
        cache.invalidate_tags("B")
        # Tag B was just invalidated: a load carrying only A must not answer for B's reader.
        assert cache.get_or_load("k", lambda: "loaded with tag B", tags="B") == "loaded with tag B"
    finally:
        release.set()
        thread.join()
        cache.close()


def test_a_nested_namespace_never_shares_keys_with_a_dotted_one(store: Store) -> None:
    dotted = _cache(store, namespace="app.catalog")
    nested = _cache(store, namespace="app").namespace("catalog")
    dotted.set("k", "dotted")
    assert nested.get("k", "miss") == "miss"
    nested.set("k", "nested")
    assert dotted.get("k") == "dotted"
    assert nested.namespace_name == "app/catalog"


class BumpsFailStore(RedisStore):
    """A real RedisStore whose tag and namespace invalidations cannot get through."""

    def bump_versions(
        self, version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int
    ) -> None:
        raise CacheUnavailable("redis went away")


@pytest.fixture
def failing_bumps(redis_url: str) -> Iterator[Cache]:
    cache = Cache(BumpsFailStore(redis_url), namespace="edges", secret=SECRET)
    yield cache
    cache.close(flush_timeout=0.1)


def test_get_many_hides_every_entry_of_a_tag_whose_invalidation_is_pending(
    failing_bumps: Cache,
) -> None:
    cache = failing_bumps
    cache.set("k1", "old1", tags="T")
    cache.set("k2", "old2", tags="T")
    assert cache.get("k2") == "old2"  # the cache learns k2's tags, not k1's
    cache.invalidate_tags("T")
    assert [item.kind for item in cache.pending_invalidations()] == ["tag"]
    assert cache.get_many(["k1", "k2"]) == {}
    assert cache.get("k1", "bypassed") == "bypassed"


def test_an_overflow_during_a_retry_keeps_the_namespace_bump_pending() -> None:
    applying, release = threading.Event(), threading.Event()
    applied: list[list[str]] = []

    def slow_apply(entries: list[tuple[str, str]], version_keys: list[str]) -> None:
        applying.set()
        release.wait(10)
        applied.append(version_keys)

    pending = PendingInvalidations(slow_apply, "ns:0:n:{*}", max_items=1)
    pending.stop()  # no retry thread: this test makes the attempts itself
    pending.add([("a", "la"), ("b", "lb")], [])  # overflow: a namespace bump is pending
    attempt = threading.Thread(target=pending.try_apply)
    attempt.start()
    assert applying.wait(5)
    # The bump is on its way; two more invalidations overflow again meanwhile.
    pending.add([("c", "lc"), ("d", "ld")], [])
    release.set()
    attempt.join()
    assert applied == [["ns:0:n:{*}"]]
    assert [(item.kind, item.store_key) for item in pending.items()] == [
        ("namespace", "ns:0:n:{*}")
    ]
    assert pending.active
    assert pending.try_apply()  # the next attempt applies it, after the second overflow
    assert applied == [["ns:0:n:{*}"], ["ns:0:n:{*}"]]
    assert not pending.active


def test_an_invalidation_may_name_any_number_of_tags(store: Store) -> None:
    # An entry carries at most 64 tags; an invalidation names what a transaction wrote, which
    # can be hundreds of rows. Refusing it lost the invalidation (and, after a commit, every
    # later one queued behind it).
    cache = _cache(store)
    try:
        for i in range(0, 500, 50):
            cache.set(f"row:{i}", i, tags=[f"row:{i}"])
        cache.set("untouched", 1, tags=["other"])
        cache.invalidate_tags(*[f"row:{i}" for i in range(500)])
        assert all(cache.get(f"row:{i}") is None for i in range(0, 500, 50))
        assert cache.get("untouched") == 1
        with pytest.raises(ValueError, match="at most 64 tags"):
            cache.set("k", 1, tags=[f"t{i}" for i in range(65)])  # an entry's bound stays
    finally:
        cache.close()


def test_an_async_invalidation_may_name_any_number_of_tags(store: Store) -> None:
    import asyncio

    cache = _cache(store)
    try:
        cache.set("row:7", 7, tags=["row:7"])
        asyncio.run(cache.ainvalidate_tags(*[f"row:{i}" for i in range(200)]))
        assert cache.get("row:7") is None
    finally:
        cache.close()
