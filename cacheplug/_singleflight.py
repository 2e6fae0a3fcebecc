"""In-process single-flight: concurrent callers for one key share one call.

The first caller for a key runs the function; callers that arrive while it runs wait and get
the same result, or the same exception. Nothing is kept once the call is over, whatever its
outcome, so a failed call is retried by the next caller.

Threads and asyncio tasks have separate tables (a thread cannot await a task's future); the
store lease coordinates between them and across processes. A forked child starts with an
empty table: the calls it would inherit run in threads that did not survive the fork.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SingleFlight:
    """Thread single-flight, keyed by string."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[Any]] = {}
        self._pid = os.getpid()
        self.joined = 0
        """Callers that got another caller's result."""

    def __len__(self) -> int:
        return len(self._flights)

    def run(self, key: str, fn: Callable[[], T]) -> T:
        """``fn()``, or the result of the call for ``key`` already under way."""
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            else:
                self.joined += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.result  # type: ignore[return-value]
        try:
            flight.result = fn()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                if self._flights.get(key) is flight:  # not detached and replaced meanwhile
                    del self._flights[key]
            flight.done.set()

    def detach(self, key: str) -> None:
        """Let callers arriving from now on start a new call for ``key`` (its value was just
        invalidated); the call under way still answers those already waiting for it."""
        with self._lock:
            self._flights.pop(key, None)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._flights = {}
        self._pid = os.getpid()


class AsyncSingleFlight:
    """asyncio single-flight, keyed by string, with one table per event loop."""

    def __init__(self) -> None:
        self._tables: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Future[Any]]
        ] = weakref.WeakKeyDictionary()
        self.joined = 0
        """Callers that got another caller's result."""

    def pending(self) -> int:
        """How many calls are under way in the running loop."""
        return len(self._tables.get(asyncio.get_running_loop(), {}))

    async def run(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        """``await fn()``, or the result of the call for ``key`` already under way."""
        loop = asyncio.get_running_loop()
        table = self._tables.get(loop)
        if table is None:
            table = self._tables[loop] = {}
        while (future := table.get(key)) is not None:
            self.joined += 1
            try:
                # shield: a waiter being cancelled must not cancel the shared call.
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not future.cancelled() or (task is not None and task.cancelling()):
                    raise
                self.joined -= 1  # the leader was cancelled, not us: run it ourselves
        future = table[key] = loop.create_future()
        try:
            result = await fn()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(result)
            return result
        finally:
            if table.get(key) is future:  # not detached and replaced meanwhile
                del table[key]

    def detach(self, key: str) -> None:
        """:meth:`SingleFlight.detach`, in every event loop's table."""
        for table in list(self._tables.values()):
            table.pop(key, None)
