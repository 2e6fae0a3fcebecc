"""In-process single-flight: concurrent callers for one key share one call.

The first caller for a key runs the function; callers that arrive while it runs wait and get
the same result, or the same exception. Nothing is kept once the call is over, whatever its
outcome, so a failed call is retried by the next caller.

The function returns ``(result, shareable)``. A result that is not shareable (a load whose
fill an invalidation refused: it may predate that invalidation) goes to the caller that ran
it only; the callers waiting for it run the call again (joining a newer call, or leading one).
An invalidation also *detaches* the calls under way for its key or tag: callers arriving from
then on start a new call instead of joining the old one.

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
    __slots__ = ("done", "error", "result", "shareable", "tags")

    def __init__(self, tags: tuple[str, ...]) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.shareable = True
        self.error: BaseException | None = None
        self.tags = tags


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

    def run(self, key: str, fn: Callable[[], tuple[T, bool]], tags: tuple[str, ...] = ()) -> T:
        """``fn()``'s result, or that of the call for ``key`` already under way (when
        shareable). ``tags``: version keys whose invalidation detaches this call."""
        if self._pid != os.getpid():
            self._after_fork()
        while True:
            with self._lock:
                flight = self._flights.get(key)
                leader = flight is None
                if flight is None:
                    flight = self._flights[key] = _Flight(tags)
                else:
                    self.joined += 1
            if leader:
                break
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            if flight.shareable:
                return flight.result  # type: ignore[return-value]
            self.joined -= 1
        try:
            flight.result, flight.shareable = fn()
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

    def detach_tagged(self, tag: str) -> None:
        """:meth:`detach` every call carrying the version key ``tag``."""
        with self._lock:
            for key in [k for k, f in self._flights.items() if tag in f.tags]:
                del self._flights[key]

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._flights = {}
        self._pid = os.getpid()


class AsyncSingleFlight:
    """asyncio single-flight, keyed by string, with one table per event loop."""

    def __init__(self) -> None:
        self._tables: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop,
            dict[str, tuple[asyncio.Future[Any], tuple[str, ...]]],
        ] = weakref.WeakKeyDictionary()
        self.joined = 0
        """Callers that got another caller's result."""

    def pending(self) -> int:
        """How many calls are under way in the running loop."""
        return len(self._tables.get(asyncio.get_running_loop(), {}))

    async def run(
        self,
        key: str,
        fn: Callable[[], Awaitable[tuple[T, bool]]],
        tags: tuple[str, ...] = (),
    ) -> T:
        """``(await fn())``'s result, or that of the call for ``key`` already under way
        (when shareable); see :meth:`SingleFlight.run`."""
        loop = asyncio.get_running_loop()
        table = self._tables.get(loop)
        if table is None:
            table = self._tables[loop] = {}
        while (entry := table.get(key)) is not None:
            future = entry[0]
            self.joined += 1
            try:
                # shield: a waiter being cancelled must not cancel the shared call.
                result, shareable = await asyncio.shield(future)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not future.cancelled() or (task is not None and task.cancelling()):
                    raise
                self.joined -= 1  # the leader was cancelled, not us: run it ourselves
                continue
            if shareable:
                return result  # type: ignore[no-any-return]
            self.joined -= 1
            if table.get(key) is entry:  # let the finished call's own cleanup catch up
                del table[key]
        future = loop.create_future()
        entry = table[key] = (future, tags)
        try:
            result, shareable = await fn()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result((result, shareable))
            return result
        finally:
            if table.get(key) is entry:  # not detached and replaced meanwhile
                del table[key]

    def detach(self, key: str) -> None:
        """:meth:`SingleFlight.detach`, in every event loop's table."""
        for table in list(self._tables.values()):
            table.pop(key, None)

    def detach_tagged(self, tag: str) -> None:
        """:meth:`SingleFlight.detach_tagged`, in every event loop's table."""
        for table in list(self._tables.values()):
            for key in [k for k, (_, tags) in list(table.items()) if tag in tags]:
                table.pop(key, None)
