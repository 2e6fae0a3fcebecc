"""Wake-ups for callers waiting on another caller's load.

A caller that finds a key being loaded under someone else's lease registers a
:class:`Waiter` for the key, checks the store once more (the value may have landed in
between), then waits. The store announces every fill and every released lease; the
announcement wakes the waiters of that key at once, so nobody sleeps through a fixed poll.
Waits are still bounded by the caller: a lost announcement only costs a re-check.

:class:`FillListener` is the in-process registry; the Redis store feeds it from a pub/sub
subscription so that announcements from other processes arrive too.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Waiter:
    """One caller's interest in one key; wait on it from a thread or a coroutine."""

    __slots__ = ("_event", "_futures", "_key", "_listener")

    def __init__(self, listener: FillListener, key: str) -> None:
        self._listener = listener
        self._key = key
        self._event = threading.Event()
        self._futures: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def wake(self) -> None:
        self._event.set()
        for loop, future in self._futures:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                loop.call_soon_threadsafe(_resolve, future)

    def wait(self, timeout: float) -> bool:
        """Block until woken or ``timeout`` seconds pass; True if woken."""
        return self._event.wait(max(0.0, timeout))

    async def wait_async(self, timeout: float) -> bool:
        """Await until woken or ``timeout`` seconds pass; True if woken."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._futures.append((loop, future))
        if self._event.is_set():
            return True
        try:
            await asyncio.wait_for(future, max(0.0, timeout))
        except TimeoutError:
            return self._event.is_set()
        return True

    def close(self) -> None:
        """Stop waiting (always call it: a waiter left open is never collected)."""
        self._listener._forget(self._key, self)

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class FillListener:
    """Registry of waiters by store key; :meth:`announce` wakes a key's waiters.

    ``live`` says whether announcements can be relied on right now (always for an in-process
    store; for a network store, while its subscription is up). Callers shorten their waits
    when it is not.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Waiter]] = {}

    @property
    def live(self) -> bool:
        return True

    def expect(self, key: str) -> Waiter:
        """Register interest in ``key`` *before* checking the store again."""
        self.start()
        waiter = Waiter(self, key)
        with self._lock:
            self._waiters.setdefault(key, set()).add(waiter)
        return waiter

    def start(self) -> None:
        """Make sure announcements are being received (nothing to do in-process)."""

    def stop(self) -> None:
        """Stop receiving announcements and wake every waiter."""
        with self._lock:
            waiters = [w for group in self._waiters.values() for w in group]
            self._waiters.clear()
        for waiter in waiters:
            waiter.wake()

    def announce(self, key: str) -> None:
        """``key`` was filled or its lease released: wake its waiters."""
        with self._lock:
            waiters = self._waiters.pop(key, None)
        if waiters:
            for waiter in waiters:
                waiter.wake()

    def wake_all(self) -> None:
        """Wake everybody (after a lost subscription: announcements may have been missed)."""
        with self._lock:
            groups = list(self._waiters.values())
            self._waiters.clear()
        for group in groups:
            for waiter in group:
                waiter.wake()

    def _forget(self, key: str, waiter: Waiter) -> None:
        with self._lock:
            group = self._waiters.get(key)
            if group is not None:
                group.discard(waiter)
                if not group:
                    del self._waiters[key]
