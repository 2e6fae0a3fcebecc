"""MemoryStore specifics: bounds, LRU order, lazy and periodic expiry, URL options."""

from __future__ import annotations

import threading

import pytest

from cacheplug import Cache, ConfigurationError, MemoryStore
from cacheplug.testing import FakeClock


def test_evicts_least_recently_used_past_max_entries() -> None:
    store = MemoryStore(max_entries=3)
    for key in ("a", "b", "c"):
        store.set(key, b"x", None)
    assert store.get("a") == b"x"  # "a" is now the most recently used
    store.set("d", b"x", None)
    assert store.get("b") is None
    assert [store.get(k) for k in ("a", "c", "d")] == [b"x", b"x", b"x"]
    assert len(store) == 3


def test_evicts_past_max_bytes_and_never_holds_an_oversize_value() -> None:
    store = MemoryStore(max_bytes=100)
    store.set("a", b"x" * 40, None)
    store.set("b", b"x" * 40, None)
    store.set("c", b"x" * 40, None)
    assert store.get("a") is None
    assert store.used_bytes <= 100
    store.set("huge", b"x" * 500, None)
    assert store.get("huge") is None
    assert store.used_bytes <= 100


def test_replacing_a_value_keeps_the_byte_count_right() -> None:
    store = MemoryStore()
    store.set("k", b"x" * 10, None)
    store.set("k", b"x" * 30, None)
    assert store.used_bytes == len("k") + 30
    store.delete("k")
    assert store.used_bytes == 0


def test_expired_entries_are_dropped_lazily_and_swept_periodically() -> None:
    clock = FakeClock()
    store = MemoryStore(sweep_interval=10, clock=clock.monotonic)
    store.set("short", b"x", 1_000)
    store.set("other", b"x", 1_000)
    store.set("long", b"x", 60_000)
    clock.advance(2)
    assert store.get("short") is None  # lazy: dropped when touched
    assert len(store) == 2  # "other" expired but not touched yet
    clock.advance(10)
    store.set("trigger", b"x", None)  # a write past the sweep interval sweeps
    assert len(store) == 2  # "long" and "trigger"
    assert store.get("long") == b"x"


def test_from_url_options() -> None:
    store = MemoryStore.from_url("memory://?max_entries=5&max_bytes=1000")
    assert (store.max_entries, store.max_bytes) == (5, 1000)
    with pytest.raises(ConfigurationError, match="unknown"):
        MemoryStore.from_url("memory://?size=3")
    with pytest.raises(ConfigurationError, match="integers"):
        MemoryStore.from_url("memory://?max_entries=many")
    with pytest.raises(ConfigurationError):
        MemoryStore(max_entries=0)


def test_threads_do_not_corrupt_the_store() -> None:
    store = MemoryStore(max_entries=50)

    def churn(worker: int) -> None:
        for i in range(500):
            store.set(f"{worker}:{i % 80}", b"v" * (i % 7), None)
            store.get(f"{(worker + 1) % 4}:{i % 80}")
            store.incr("shared", 1, None)

    threads = [threading.Thread(target=churn, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store) <= 50
    assert store.get("shared") in (b"2000", None)  # exact, unless evicted as LRU
    recount = sum(len(k) + len(v) for k, (v, _) in store._data.items())
    assert store.used_bytes == recount


def test_a_value_larger_than_the_whole_store_is_reported_as_not_stored() -> None:
    store = MemoryStore(max_bytes=100)
    store.set("k", b"small", None)
    assert store.put("k", b"x" * 500, None, "k:lease") is False
    assert store.get("k") is None  # and the older value is gone too
    assert store.add("other", b"x" * 500, None) is False
    store.set("c", b"v", None)
    assert store.compare_and_swap("c", b"v", b"x" * 500) is False
    assert store.acquire_lease("f:lease", b"token", 10_000) == 0
    assert store.fill_with_lease("f", b"x" * 500, None, "f:lease", b"token") is False
    assert store.get("f") is None
    assert store.used_bytes <= 100

    cache = Cache(MemoryStore(max_bytes=2_000), max_value_bytes=10_000)
    assert cache.set("big", "x" * 5_000) is False
    assert cache.get("big", "absent") == "absent"
    assert cache.set("fits", "x" * 10) is True
