"""A forked worker (gunicorn --preload, multiprocessing) inherits a working cache."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest
from _instrumented import CountingRedisStore

from cacheplug import Cache, MemoryStore, RedisStore

SECRET = "fork-test-secret"
fork = multiprocessing.get_context("fork")


def _child_waits_for_a_fill(cache: Cache, store: CountingRedisStore, url: str) -> None:
    inherited_live = store.fills.live  # the parent's subscriber thread is not in this process
    store.gets = 0
    holder = Cache(url, namespace="fork", secret=SECRET)
    loading = threading.Event()

    def slow() -> str:
        loading.set()
        time.sleep(0.3)
        return "from the child's holder"

    thread = threading.Thread(target=holder.get_or_load, args=("k", slow))
    thread.start()
    loading.wait(5)
    value = cache.get_or_load("k", lambda: "waiter loaded")
    thread.join()
    ok = value == "from the child's holder" and store.gets <= 3
    os._exit(0 if ok and not inherited_live and store.fills.live else 1)


def test_a_forked_child_gets_its_own_fill_subscription(redis_url: str) -> None:
    store = CountingRedisStore(redis_url)
    cache = Cache(store, namespace="fork", secret=SECRET)
    store.fills.start()
    assert store.fills.live
    child = fork.Process(target=_child_waits_for_a_fill, args=(cache, store, redis_url))
    child.start()
    child.join(30)
    assert child.exitcode == 0  # woken by an announcement received in the child
    cache.close()


def _child_reads_the_key(cache: Cache) -> None:
    value = cache.get_or_load("k", lambda: "loaded in the child")
    os._exit(0 if value == "loaded in the child" else 1)


@pytest.mark.parametrize("store_kind", ["memory", "redis"])
def test_a_load_under_way_at_fork_time_does_not_hang_the_child(
    store_kind: str, redis_url: str
) -> None:
    store = MemoryStore() if store_kind == "memory" else RedisStore(redis_url)
    secret = SECRET if store.shared else None
    cache = Cache(store, namespace="fork2", secret=secret, lock_timeout=0.5)
    loading, finish = threading.Event(), threading.Event()

    def parent_load() -> str:
        loading.set()
        finish.wait(10)
        return "loaded in the parent"

    thread = threading.Thread(target=cache.get_or_load, args=("k", parent_load))
    thread.start()
    loading.wait(5)
    child = fork.Process(target=_child_reads_the_key, args=(cache,))
    child.start()
    child.join(20)
    finish.set()
    thread.join()
    # The child did not wait for a flight whose thread stayed in the parent; it waited for
    # the parent's lease to expire (0.5 s) and loaded itself.
    assert child.exitcode == 0
    cache.close()


def _child_reads_through_its_own_l1(cache: Cache, url: str) -> None:
    served_blind = cache.get_or_load("k", lambda: "child loaded") != "from the parent"
    assert cache._engine._local is not None
    inherited = len(cache._engine._local)  # the parent's copies: dropped once the child subscribes
    cache.get_or_load("k", lambda: "child loaded")  # kept in the child's L1 from now on
    other = Cache(url, namespace="forkl1", secret=SECRET)
    heard = threading.Event()
    unsubscribe = cache.store.fills.on_change(lambda key: heard.set())
    other.set("k", "changed after the fork")
    ok = heard.wait(5) and cache.get_or_load("k", lambda: "x") == "changed after the fork"
    unsubscribe()
    os._exit(0 if ok and not served_blind and inherited == 0 else 1)


def test_a_forked_child_starts_with_an_empty_l1_and_its_own_subscription(redis_url: str) -> None:
    from cacheplug import LocalTier

    cache = Cache(redis_url, namespace="forkl1", secret=SECRET, l1=LocalTier())
    filled = threading.Event()
    unsubscribe = cache.store.fills.on_change(lambda key: filled.set())
    cache.get_or_load("k", lambda: "from the parent")
    assert filled.wait(5)  # the fill's own announcement is back: it will not drop the copy
    unsubscribe()
    cache.get_or_load("k", lambda: "from the parent")
    assert cache._engine._local is not None
    assert len(cache._engine._local) == 1  # in the parent's L1
    child = fork.Process(target=_child_reads_through_its_own_l1, args=(cache, redis_url))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    cache.close()
