"""In-process single-flight: one call per key, shared results and errors, nothing left over."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

from cacheplug import Cache
from cacheplug._engine.flights import AsyncSingleFlight, SingleFlight


def test_threads_share_one_call_and_leave_nothing_behind() -> None:
    flights = SingleFlight()
    calls: list[int] = []
    barrier = threading.Barrier(10)
    results: list[int] = []

    def work() -> None:
        barrier.wait()
        results.append(
            flights.run("k", lambda: calls.append(1) or time.sleep(0.1) or (7, math.inf))
        )

    threads = [threading.Thread(target=work) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1]
    assert results == [7] * 10
    assert len(flights) == 0
    assert flights.joined == 9


def test_an_error_reaches_every_waiter_and_the_next_call_retries() -> None:
    flights = SingleFlight()
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []

    def fail() -> tuple[int, float]:
        time.sleep(0.1)
        raise KeyError("gone")

    def work() -> None:
        barrier.wait()
        try:
            flights.run("k", fail)
        except KeyError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 5
    assert len(flights) == 0
    assert flights.run("k", lambda: (1, math.inf)) == 1


def test_asyncio_tasks_share_one_call() -> None:
    flights = AsyncSingleFlight()
    calls: list[int] = []

    async def load() -> tuple[str, float]:
        calls.append(1)
        await asyncio.sleep(0.05)
        return "v", math.inf

    async def scenario() -> list[str]:
        results = await asyncio.gather(*(flights.run("k", load) for _ in range(50)))
        assert flights.pending() == 0
        return list(results)

    assert asyncio.run(scenario()) == ["v"] * 50
    assert calls == [1]


def test_a_cancelled_waiter_does_not_cancel_the_shared_call() -> None:
    flights = AsyncSingleFlight()

    async def load() -> tuple[str, float]:
        await asyncio.sleep(0.05)
        return "done", math.inf

    async def scenario() -> str:
        leader = asyncio.ensure_future(flights.run("k", load))
        await asyncio.sleep(0)
        impatient = asyncio.ensure_future(flights.run("k", load))
        await asyncio.sleep(0)
        impatient.cancel()
        with pytest.raises(asyncio.CancelledError):
            await impatient
        return await leader

    assert asyncio.run(scenario()) == "done"


def test_waiters_of_a_cancelled_leader_run_the_call_themselves() -> None:
    flights = AsyncSingleFlight()
    calls: list[int] = []

    async def load() -> tuple[str, float]:
        calls.append(1)
        await asyncio.sleep(0.05)
        return "value", math.inf

    async def scenario() -> str:
        leader = asyncio.ensure_future(flights.run("k", load))
        await asyncio.sleep(0)
        follower = asyncio.ensure_future(flights.run("k", load))
        await asyncio.sleep(0)
        leader.cancel()
        return await follower

    assert asyncio.run(scenario()) == "value"
    assert calls == [1, 1]


def test_a_result_that_is_not_shareable_goes_to_its_own_caller_only() -> None:
    # A load whose fill an invalidation refused: callers who joined it load again.
    flights = SingleFlight()
    started = threading.Event()
    joined = threading.Event()
    calls: list[str] = []
    results: dict[str, str] = {}

    def refused_load() -> tuple[str, float]:
        calls.append("leader")
        started.set()
        joined.wait(5)
        time.sleep(0.05)  # let the joiner block on the flight
        return "read before the write", -math.inf

    def fresh_load() -> tuple[str, float]:
        calls.append("joiner")
        return "fresh", math.inf

    leader = threading.Thread(target=lambda: results.update(a=flights.run("k", refused_load)))
    leader.start()
    started.wait(5)

    def join() -> None:
        joined.set()
        results["b"] = flights.run("k", fresh_load)

    joiner = threading.Thread(target=join)
    joiner.start()
    leader.join()
    joiner.join()
    assert results == {"a": "read before the write", "b": "fresh"}
    assert calls == ["leader", "joiner"]
    assert flights.joined == 0


def test_detaching_by_tag_lets_new_callers_start_a_new_call() -> None:
    flights = SingleFlight()
    started, finish = threading.Event(), threading.Event()

    def slow() -> tuple[str, float]:
        started.set()
        finish.wait(5)
        return "old", math.inf

    thread = threading.Thread(target=flights.run, args=("k", slow, ("tag:a",)))
    thread.start()
    started.wait(5)
    flights.detach_tagged("tag:other")
    assert len(flights) == 1
    flights.detach_tagged("tag:a")
    assert flights.run("k", lambda: ("new", math.inf)) == "new"
    finish.set()
    thread.join()


def test_async_results_that_are_not_shareable_are_loaded_again() -> None:
    flights = AsyncSingleFlight()
    calls: list[str] = []

    async def refused() -> tuple[str, float]:
        calls.append("leader")
        await asyncio.sleep(0.05)
        return "old", -math.inf

    async def fresh() -> tuple[str, float]:
        calls.append("joiner")
        return "fresh", math.inf

    async def scenario() -> list[str]:
        leader = asyncio.ensure_future(flights.run("k", refused))
        await asyncio.sleep(0)
        joiner = asyncio.ensure_future(flights.run("k", fresh))
        return [await leader, await joiner]

    assert asyncio.run(scenario()) == ["old", "fresh"]
    assert calls == ["leader", "joiner"]


def test_a_caller_that_joined_after_the_result_was_read_loads_again() -> None:
    # The result was read at t=10 (say, from the store); a caller that joined at t=11 may
    # have arrived after an invalidation this process has not heard of yet.
    now = [9.0]
    flights = SingleFlight(monotonic=lambda: now[0])
    started, joined = threading.Event(), threading.Event()
    results: dict[str, str] = {}

    def read_at_ten() -> tuple[str, float]:
        started.set()
        joined.wait(5)
        time.sleep(0.05)
        return "read at 10", 10.0

    leader = threading.Thread(target=lambda: results.update(a=flights.run("k", read_at_ten)))
    leader.start()
    started.wait(5)
    now[0] = 11.0

    def join() -> None:
        joined.set()
        results["b"] = flights.run("k", lambda: ("own load", math.inf))

    joiner = threading.Thread(target=join)
    joiner.start()
    leader.join()
    joiner.join()
    assert results == {"a": "read at 10", "b": "own load"}


def test_a_loader_reading_its_own_key_is_told_so_instead_of_waiting_forever(
    cache: Cache,
) -> None:
    def loader() -> int:
        return cache.get_or_load("self", loader) + 1

    outcome: list[BaseException] = []

    def call() -> None:
        try:
            cache.get_or_load("self", loader)
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(30)  # not a timing assertion: without the check it never returns
    assert not caller.is_alive(), "the loader waited for itself"
    assert isinstance(outcome[0], RuntimeError)
    assert "inside that key's own loader" in str(outcome[0])
    assert cache.get_or_load("self", lambda: 1) == 1  # nothing was left stuck


def test_an_async_loader_reading_its_own_key_is_told_so(cache: Cache) -> None:
    async def loader() -> int:
        return await cache.aget_or_load("self", loader) + 1

    async def main() -> None:
        with pytest.raises(RuntimeError, match="inside that key's own loader"):
            # wait_for: without the check it would wait forever (then TimeoutError fails it)
            await asyncio.wait_for(cache.aget_or_load("self", loader), 30)
        assert await cache.aget_or_load("self", lambda: 1) == 1

    asyncio.run(main())
