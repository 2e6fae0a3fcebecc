"""``cache.lock()``: mutual exclusion, token-checked release, extension, wake-up."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cacheplug import Cache, LockError, Store


def test_only_one_holder_at_a_time(store: Store) -> None:
    secret = "s" if store.shared else None
    caches = [Cache(store, namespace="jobs", secret=secret) for _ in range(4)]
    inside = 0
    most_inside = 0
    guard = threading.Lock()
    order: list[int] = []

    def job(index: int) -> None:
        nonlocal inside, most_inside
        for _ in range(5):
            with caches[index].lock("report:daily", timeout=10):
                with guard:
                    inside += 1
                    most_inside = max(most_inside, inside)
                time.sleep(0.005)
                order.append(index)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most_inside == 1
    assert len(order) == 20


def test_non_blocking_and_timed_acquire(cache: Cache) -> None:
    holder = cache.lock("exclusive", timeout=30)
    assert holder.acquire() is True
    assert holder.held
    other = cache.lock("exclusive", timeout=30)
    assert other.acquire(blocking=False) is False
    assert other.acquire(timeout=0.05) is False
    with (
        pytest.raises(LockError, match="could not acquire"),
        cache.lock("exclusive", blocking_timeout=0.05),
    ):
        pass
    holder.release()
    assert other.acquire(blocking=False) is True
    other.release()


def test_an_expired_lock_is_not_released_by_its_former_holder(cache: Cache) -> None:
    first = cache.lock("short", timeout=0.05)
    assert first.acquire()
    time.sleep(0.15)  # first's lock expires
    second = cache.lock("short", timeout=30)
    assert second.acquire(blocking=False)
    with pytest.raises(LockError, match="expired"):
        first.release()
    assert cache.lock("short").acquire(blocking=False) is False  # second still holds it
    second.release()


def test_extend_keeps_the_lock(cache: Cache) -> None:
    lock = cache.lock("long-job", timeout=0.2)
    assert lock.acquire()
    lock.extend(30)
    time.sleep(0.3)
    assert cache.lock("long-job").acquire(blocking=False) is False
    lock.release()
    with pytest.raises(LockError, match="not held"):
        lock.extend()
    with pytest.raises(LockError, match="not held"):
        lock.release()


def test_a_waiter_is_woken_when_the_lock_is_released(cache: Cache) -> None:
    holder = cache.lock("handoff", timeout=30)
    assert holder.acquire()
    got_it = threading.Event()

    def wait_for_it() -> None:
        with cache.lock("handoff", timeout=30, blocking_timeout=20):
            got_it.set()

    thread = threading.Thread(target=wait_for_it)
    thread.start()
    time.sleep(0.1)
    assert not got_it.is_set()
    holder.release()
    assert got_it.wait(5)  # not after the 30 s lock timeout: the release woke it
    thread.join()


def test_async_lock(cache: Cache) -> None:
    async def scenario() -> list[str]:
        events: list[str] = []

        async def job(name: str) -> None:
            async with cache.lock("async-job", timeout=10):
                events.append(f"{name} in")
                await asyncio.sleep(0.02)
                events.append(f"{name} out")

        await asyncio.gather(job("a"), job("b"), job("c"))
        return events

    events = asyncio.run(scenario())
    assert len(events) == 6
    for index in range(0, 6, 2):  # never two jobs inside at once
        assert events[index].endswith(" in")
        assert events[index + 1] == events[index].replace(" in", " out")


def test_lock_names_must_be_strings() -> None:
    with pytest.raises(TypeError, match="str"):
        Cache().lock(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        Cache().lock("x", timeout=0)
