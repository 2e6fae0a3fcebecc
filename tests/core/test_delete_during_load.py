"""Deleting a key while it is being loaded: the old load can neither store its result nor
hand it to callers who arrive after the delete."""

from __future__ import annotations

import threading

from cacheplug import Cache, Store

SECRET = "delete-test-secret"


def _cache(store: Store, **options: float) -> Cache:
    return Cache(store, namespace="del", secret=SECRET if store.shared else None, **options)


def test_a_load_that_started_before_a_delete_does_not_store_its_result(store: Store) -> None:
    cache = _cache(store)
    loading, finish = threading.Event(), threading.Event()
    results: list[str] = []

    def old_read() -> str:
        loading.set()
        finish.wait(10)
        return "read before the write"

    thread = threading.Thread(target=lambda: results.append(cache.get_or_load("k", old_read)))
    thread.start()
    loading.wait(5)
    cache.delete("k")  # the write committed; its invalidation returns
    finish.set()
    thread.join()
    assert results == ["read before the write"]  # its own caller started before the delete
    assert cache.get("k", default="nothing cached") == "nothing cached"
    assert cache.get_or_load("k", lambda: "fresh") == "fresh"


def test_a_caller_arriving_after_a_delete_does_not_join_the_old_load(store: Store) -> None:
    cache = _cache(store)
    loading, finish = threading.Event(), threading.Event()

    def old_read() -> str:
        loading.set()
        finish.wait(10)
        return "old"

    thread = threading.Thread(target=cache.get_or_load, args=("k", old_read))
    thread.start()
    loading.wait(5)
    cache.delete("k")
    assert cache.get_or_load("k", lambda: "new") == "new"
    finish.set()
    thread.join()
    assert cache.get("k") == "new"  # the old load's fill was refused


def test_a_waiter_in_another_process_is_woken_by_the_delete(redis_url: str) -> None:
    holder = Cache(redis_url, namespace="del", secret=SECRET, lock_timeout=60)
    waiter = Cache(redis_url, namespace="del", secret=SECRET, lock_timeout=60, wait_timeout=60)
    loading, finish = threading.Event(), threading.Event()
    got: list[str] = []

    def stuck() -> str:
        loading.set()
        finish.wait(30)
        return "old"

    holding = threading.Thread(target=holder.get_or_load, args=("k", stuck))
    holding.start()
    loading.wait(5)
    waiting = threading.Thread(
        target=lambda: got.append(waiter.get_or_load("k", lambda: "loaded after the delete"))
    )
    waiting.start()
    holder.delete("k")
    # Without the announcement the waiter would sleep until the 60 s lease ran out.
    waiting.join(20)
    finish.set()
    holding.join()
    assert got == ["loaded after the delete"]
    holder.close()
    waiter.close()


def test_delete_many_removes_entries_and_leases(store: Store) -> None:
    cache = _cache(store)
    cache.set_many({"a": 1, "b": 2})
    lease = cache.store_key("c").replace(":d:", ":l:", 1)
    store.set(lease, b"someone's token", 60_000)
    assert cache.delete_many(["a", "b", "c"]) == 2
    assert cache.get_many(["a", "b"]) == {}
    assert store.get(lease) is None
