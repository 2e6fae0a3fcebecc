"""In-process single-flight: one call per key, shared results and errors, nothing left over."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cacheplug._singleflight import AsyncSingleFlight, SingleFlight


def test_threads_share_one_call_and_leave_nothing_behind() -> None:
    flights = SingleFlight()
    calls: list[int] = []
    barrier = threading.Barrier(10)
    results: list[int] = []

    def work() -> None:
        barrier.wait()
        results.append(flights.run("k", lambda: calls.append(1) or time.sleep(0.1) or 7))

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

    def fail() -> int:
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
    assert flights.run("k", lambda: 1) == 1


def test_asyncio_tasks_share_one_call() -> None:
    flights = AsyncSingleFlight()
    calls: list[int] = []

    async def load() -> str:
        calls.append(1)
        await asyncio.sleep(0.05)
        return "v"

    async def scenario() -> list[str]:
        results = await asyncio.gather(*(flights.run("k", load) for _ in range(50)))
        assert flights.pending() == 0
        return list(results)

    assert asyncio.run(scenario()) == ["v"] * 50
    assert calls == [1]


def test_a_cancelled_waiter_does_not_cancel_the_shared_call() -> None:
    flights = AsyncSingleFlight()

    async def load() -> str:
        await asyncio.sleep(0.05)
        return "done"

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

    async def load() -> str:
        calls.append(1)
        await asyncio.sleep(0.05)
        return "value"

    async def scenario() -> str:
        leader = asyncio.ensure_future(flights.run("k", load))
        await asyncio.sleep(0)
        follower = asyncio.ensure_future(flights.run("k", load))
        await asyncio.sleep(0)
        leader.cancel()
        return await follower

    assert asyncio.run(scenario()) == "value"
    assert calls == [1, 1]
