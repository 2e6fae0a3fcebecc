"""In-process single-flight: concurrent callers for one key share one call.

The first caller for a key runs the function; callers that arrive while it runs wait and get
the same result, or the same exception. Nothing is kept once the call is over, whatever its
outcome, so a failed call is retried by the next caller.

The function returns ``(result, valid_at)``: the moment until which the result is known to be
current (``math.inf``: for every caller who joined; ``-math.inf``: for the caller that ran it
only). A caller that joined after ``valid_at`` does not take the result (an invalidation may
have come in between, from another process, before this one heard of it): it runs the call
again, joining a newer call or leading one. An invalidation this process knows of also
*detaches* the calls under way for its key or tag: callers arriving from then on start a new
call instead of joining the old one.

Threads and asyncio tasks have separate tables (a thread cannot await a task's future); the
store lease coordinates between them and across processes. A forked child starts with an
empty table: the calls it would inherit run in threads that did not survive the fork.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final, Generic, NamedTuple, TypeVar

T = TypeVar("T")


def reentered(key: str) -> RuntimeError:
    """The error for a caller that would wait for its own call (a loader reading its own key):
    it would wait forever."""
    shown = key.split(FLIGHT_SEPARATOR, 1)[0]
    return RuntimeError(
        f"{shown!r} is being loaded by this very caller: get_or_load() of a key was called "
        "from inside that key's own loader"
    )


class _Flight(Generic[T]):
    __slots__ = ("done", "error", "joiners", "leader", "result", "tags", "valid_at")

    def __init__(self, tags: tuple[str, ...]) -> None:
        self.leader = threading.get_ident()
        self.done = threading.Event()
        self.result: T | None = None
        self.valid_at = math.inf
        self.error: BaseException | None = None
        self.tags = tags
        self.joiners = 0  # callers that took this call's result (what a load's trace reports)


class SingleFlight:
    """Thread single-flight, keyed by string."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[Any]] = {}
        self._pid = os.getpid()
        self.joined = 0
        """Callers that got another caller's result."""

    def __len__(self) -> int:
        return len(self._flights)

    def run(
        self,
        key: str,
        fn: Callable[[], tuple[T, float]],
        tags: tuple[str, ...] = (),
        joined: Callable[[int], None] | None = None,
    ) -> T:
        """``fn()``'s result, or that of the call for ``key`` already under way (if still
        valid when this caller joined). ``tags``: version keys whose invalidation detaches
        this call. ``joined``: told, once the call this caller ran is over, how many others
        took its result."""
        if self._pid != os.getpid():
            self._after_fork()
        while True:
            with self._lock:
                flight = self._flights.get(key)
                leader = flight is None
                if flight is None:
                    flight = self._flights[key] = _Flight(tags)
                elif flight.leader == threading.get_ident():
                    raise reentered(key)
                else:
                    self.joined += 1
                    flight.joiners += 1
                    joined_at = self._monotonic()
            if leader:
                break
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if joined_at <= flight.valid_at:
                return flight.result  # type: ignore[return-value]
            self.joined -= 1
            flight.joiners -= 1
        try:
            flight.result, flight.valid_at = fn()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                if self._flights.get(key) is flight:  # not detached and replaced meanwhile
                    del self._flights[key]
            flight.done.set()
            if joined is not None:  # nobody joins from here on: the count is final
                joined(flight.joiners)

    def detach(self, key: str) -> None:
        """Let callers arriving from now on start a new call for ``key`` (its value was just
        invalidated); the call under way still answers those already waiting for it. Calls
        keyed ``key`` plus ``FLIGHT_SEPARATOR`` and more (other tags) are detached too."""
        with self._lock:
            _detach(self._flights, key)

    def detach_tagged(self, tag: str) -> None:
        """:meth:`detach` every call carrying the version key ``tag``."""
        with self._lock:
            for key in [k for k, f in self._flights.items() if tag in f.tags]:
                del self._flights[key]

    def detach_all(self) -> None:
        """:meth:`detach` every call (invalidations may have been missed)."""
        with self._lock:
            self._flights.clear()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._flights = {}
        self._pid = os.getpid()


class _AsyncFlight(NamedTuple):
    """A call under way in one event loop: its result to come, its tags, the task running it,
    and (one item) how many callers took its result."""

    future: asyncio.Future[Any]
    tags: tuple[str, ...]
    task: object
    joiners: list[int]


class AsyncSingleFlight:
    """asyncio single-flight, keyed by string, with one table per event loop."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._tables: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop,
            dict[str, _AsyncFlight],
        ] = weakref.WeakKeyDictionary()
        self.joined = 0
        """Callers that got another caller's result."""

    def pending(self) -> int:
        """How many calls are under way in the running loop."""
        return len(self._tables.get(asyncio.get_running_loop(), {}))

    async def run(
        self,
        key: str,
        fn: Callable[[], Awaitable[tuple[T, float]]],
        tags: tuple[str, ...] = (),
        joined: Callable[[int], None] | None = None,
    ) -> T:
        """``(await fn())``'s result, or that of the call for ``key`` already under way
        (if still valid when this caller joined); see :meth:`SingleFlight.run`."""
        loop = asyncio.get_running_loop()
        table = self._tables.get(loop)
        if table is None:
            table = self._tables[loop] = {}
        task = asyncio.current_task()
        while (flight := table.get(key)) is not None:
            future = flight.future
            if flight.task is task and task is not None:
                raise reentered(key)
            self.joined += 1
            flight.joiners[0] += 1
            joined_at = self._monotonic()
            try:
                # shield: a waiter being cancelled must not cancel the shared call.
                result, valid_at = await asyncio.shield(future)
            except asyncio.CancelledError:
                if not future.cancelled() or (task is not None and task.cancelling()):
                    raise
                self.joined -= 1  # the leader was cancelled, not us: run it ourselves
                flight.joiners[0] -= 1
                continue
            if joined_at <= valid_at:
                return result  # type: ignore[no-any-return]
            self.joined -= 1
            flight.joiners[0] -= 1
            if table.get(key) is flight:  # let the finished call's own cleanup catch up
                table.pop(key, None)
        future = loop.create_future()
        flight = table[key] = _AsyncFlight(future, tags, task, [0])
        try:
            result, valid_at = await fn()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result((result, valid_at))
            return result
        finally:
            # pop, not del: another thread may detach it between the check and the removal.
            if table.get(key) is flight:  # not detached and replaced meanwhile
                table.pop(key, None)
            if joined is not None:  # nobody joins from here on: the count is final
                joined(flight.joiners[0])

    def detach(self, key: str) -> None:
        """:meth:`SingleFlight.detach`, in every event loop's table."""
        for table in list(self._tables.values()):
            _detach(table, key)

    def detach_tagged(self, tag: str) -> None:
        """:meth:`SingleFlight.detach_tagged`, in every event loop's table."""
        for table in list(self._tables.values()):
            for key in [k for k, flight in list(table.items()) if tag in flight.tags]:
                table.pop(key, None)

    def detach_all(self) -> None:
        """:meth:`SingleFlight.detach_all`, in every event loop's table."""
        for table in list(self._tables.values()):
            table.clear()


FLIGHT_SEPARATOR: Final = "\x00"
"""Separates a data key from the tags in the key of a call carrying other tags than the
namespace's: callers passing other tags for a key do not share its calls."""


def _detach(flights: dict[str, Any], key: str) -> None:
    flights.pop(key, None)
    prefix = key + FLIGHT_SEPARATOR
    for other in [k for k in list(flights) if k.startswith(prefix)]:
        flights.pop(other, None)
