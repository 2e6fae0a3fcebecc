"""The embedded store's hit path (``cacheplug/_engine/embedded.py``): a hit read the short way
still answers only what the general read path would — outdated, expired, replaced, tampered
or mutated entries included."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from _loaders import Loader

from cacheplug import Cache, MemoryStore
from cacheplug.testing import FakeClock

Read = Callable[[Cache, str], Any]


def _get(cache: Cache, key: str) -> Any:
    return cache.get(key, "miss")


def _get_or_load(cache: Cache, key: str) -> Any:
    return cache.get_or_load(key, lambda: "miss", ttl=60)


READS = pytest.mark.parametrize("read", [_get, _get_or_load], ids=["get", "get_or_load"])


class CountingStore(MemoryStore):
    """Counts ``get_many``, the general path's read (the short path reads otherwise)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.general_reads = 0

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.general_reads += 1
        return super().get_many(keys)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock.monotonic)


@pytest.fixture
def cache(store: MemoryStore, clock: FakeClock) -> Iterator[Cache]:
    cache = Cache(store, namespace="embedded", clock=clock)
    yield cache
    cache.close()


def _general_reads(cache: Cache, read: Read, key: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many reads of the general path (``get_many``) ``read(cache, key)`` made."""
    store = cache.store
    original = store.get_many
    seen: list[Sequence[str]] = []

    def get_many(keys: Sequence[str]) -> list[bytes | None]:
        seen.append(keys)
        return original(keys)

    with monkeypatch.context() as patch:
        patch.setattr(store, "get_many", get_many)
        read(cache, key)
    return len(seen)


@READS
def test_a_repeated_hit_takes_the_short_path(
    cache: Cache, read: Read, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.set("k", {"a": 1}, ttl=60)
    assert _general_reads(cache, read, "k", monkeypatch) == 1  # verifies the record
    assert _general_reads(cache, read, "k", monkeypatch) == 0
    assert read(cache, "k") == {"a": 1}
    assert cache.stats().hits == 3


@READS
def test_a_subclass_of_memory_store_takes_the_general_path(clock: FakeClock, read: Read) -> None:
    store = CountingStore(clock=clock.monotonic)
    cache = Cache(store, namespace="embedded", clock=clock)
    cache.set("k", "v", ttl=60)
    store.general_reads = 0
    assert read(cache, "k") == "v"
    assert read(cache, "k") == "v"
    assert store.general_reads == 2
    cache.close()


@READS
def test_a_bumped_namespace_makes_the_hit_a_miss(cache: Cache, read: Read) -> None:
    cache.set("k", "v", ttl=60)
    assert read(cache, "k") == "v"
    cache.bump()
    assert read(cache, "k") == "miss"


@READS
def test_a_version_key_lost_makes_the_hit_a_miss(
    cache: Cache, store: MemoryStore, read: Read
) -> None:
    cache.set("k", "v", ttl=60)
    assert read(cache, "k") == "v"
    (version_key,) = cache._engine._implicit
    store.delete(version_key)  # evicted, say: the entry can no longer be checked
    assert read(cache, "k") == "miss"


@READS
def test_an_invalidated_tag_makes_the_hit_a_miss(cache: Cache, read: Read) -> None:
    cache.set("k", "v", ttl=60, tags=["product:1"])
    assert read(cache, "k") == "v"
    assert read(cache, "k") == "v"
    cache.invalidate_tags("product:1")
    assert read(cache, "k") == "miss"


def test_an_invalidated_tag_makes_a_tagged_get_or_load_load(cache: Cache) -> None:
    load = Loader("v")
    assert cache.get_or_load("k", load, ttl=60, tags=["product:1"]) == "v1"
    assert cache.get_or_load("k", load, ttl=60, tags=["product:1"]) == "v1"
    cache.invalidate_tags("product:1")
    assert cache.get_or_load("k", load, ttl=60, tags=["product:1"]) == "v2"


@READS
def test_an_expired_entry_is_a_miss(cache: Cache, clock: FakeClock, read: Read) -> None:
    cache.set("k", "v", ttl=10)
    assert read(cache, "k") == "v"
    clock.advance(10.5)
    assert read(cache, "k") == "miss"


def test_a_stale_entry_is_still_served_within_stale_ttl(
    store: MemoryStore, clock: FakeClock
) -> None:
    cache = Cache(store, namespace="stale", clock=clock, stale_ttl=30)
    load = Loader("v")
    assert cache.get_or_load("k", load, ttl=10) == "v1"
    assert cache.get_or_load("k", load, ttl=10) == "v1"
    clock.advance(11)
    assert cache.get("k", "miss") == "miss"  # get serves fresh entries only
    assert cache.get_or_load("k", load, ttl=10) == "v1"  # stale, refreshed in the background
    cache.close()


@READS
def test_a_deleted_or_replaced_entry_is_not_served(cache: Cache, read: Read) -> None:
    cache.set("k", "old", ttl=60)
    assert read(cache, "k") == "old"
    cache.set("k", "new", ttl=60)
    assert read(cache, "k") == "new"
    cache.delete("k")
    assert read(cache, "k") == "miss"


@READS
def test_a_value_mutated_by_the_caller_does_not_change_the_next_hit(
    cache: Cache, read: Read
) -> None:
    cache.set("k", {"items": [1, 2]}, ttl=60)
    first = read(cache, "k")
    first["items"].append(3)
    first["added"] = True
    second = read(cache, "k")
    assert second == {"items": [1, 2]}
    assert second is not first
    second["items"].clear()
    assert read(cache, "k") == {"items": [1, 2]}


@READS
def test_a_tampered_record_is_discarded_on_a_signed_cache(
    store: MemoryStore, clock: FakeClock, read: Read
) -> None:
    cache = Cache(store, namespace="signed", clock=clock, secret="s" * 32)
    cache.set("k", "v", ttl=60)
    assert read(cache, "k") == "v"
    skey = cache.store_key("k")
    record = store.get(skey)
    assert record is not None
    store.set(skey, record[:-1] + bytes([record[-1] ^ 1]), 60_000)
    assert read(cache, "k") == "miss"
    assert cache.stats().discarded >= 1
    cache.close()


@READS
def test_a_namespace_view_bumped_by_its_parent_misses(cache: Cache, read: Read) -> None:
    catalog = cache.namespace("catalog")
    catalog.set("k", "v", ttl=60)
    assert read(catalog, "k") == "v"
    assert read(catalog, "k") == "v"
    cache.bump()
    assert read(catalog, "k") == "miss"


def test_hits_are_counted_as_on_the_general_path(cache: Cache) -> None:
    cache.set("k", "v", ttl=60)
    cache.get("k")
    general = cache.stats()
    cache.get("k")
    cache.get_or_load("k", lambda: "miss", ttl=60)
    short = cache.stats()
    assert short.hits == general.hits + 2
    assert short.bytes_read == general.bytes_read * 3
    assert short.misses == general.misses == 0
