"""Wake-ups for callers waiting on another caller's load.

A caller that finds a key being loaded under someone else's lease registers a
:class:`Waiter` for the key, checks the store once more (the value may have landed in
between), then waits. The store announces every fill and every released lease; the
announcement wakes the waiters of that key at once, so nobody sleeps through a fixed poll.
Waits are still bounded by the caller: a lost announcement only costs a re-check.

:class:`FillListener` is the in-process registry; the Redis store feeds it from a pub/sub
subscription so that announcements from other processes arrive too.

The same channel carries invalidations (of keys, tags and namespaces): they wake waiters like
a fill does, and are also handed to whoever subscribed with :meth:`FillListener.on_invalidation`
(single-flight detaching, and local copies that must be dropped). The invalidation bus is this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("cacheplug")

InvalidationCallback = Callable[[str | None], None]
"""Called with the store key of each invalidation (a data key, or a tag's or namespace's
version key), or with ``None`` when invalidations may have been missed (the subscription
dropped): then drop every local copy."""


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


def _call(callback: InvalidationCallback, key: str | None) -> None:
    try:
        callback(key)
    except Exception:  # one broken subscriber must not starve the others
        logger.exception("cacheplug: an invalidation subscriber failed")


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
        self._subscribers: tuple[InvalidationCallback, ...] = ()
        self._change_subscribers: tuple[InvalidationCallback, ...] = ()

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

    def catch_up(self) -> None:
        """Hand announcements that already reached this process, and not handled yet, to the
        :meth:`on_change` subscribers now, if that is quick. Called now and then by threads
        that serve local copies (an L1): a thread that never pauses would keep a busy
        interpreter from switching to the thread that hears the bus. Nothing to do
        in-process: an announcement is handled as it is made."""

    def stop(self) -> None:
        """Stop receiving announcements and wake every waiter; local copies (an L1) are
        dropped, since nothing would tell them of changes any more."""
        with self._lock:
            waiters = [w for group in self._waiters.values() for w in group]
            self._waiters.clear()
        for waiter in waiters:
            waiter.wake()
        self._notify(None)

    def announce(self, key: str) -> None:
        """``key`` was filled or its lease released: wake its waiters."""
        self._wake(key)
        self._changed(key)

    def _wake(self, key: str) -> None:
        with self._lock:
            waiters = self._waiters.pop(key, None)
        if waiters:
            for waiter in waiters:
                waiter.wake()

    def _changed(self, key: str | None) -> None:
        for callback in self._change_subscribers:
            _call(callback, key)

    def invalidated(self, key: str) -> None:
        """``key`` (a data key or a version key) was invalidated: wake its waiters and tell
        the subscribers."""
        self.announce(key)
        self._notify(key)

    def on_invalidation(self, callback: InvalidationCallback) -> Callable[[], None]:
        """Call ``callback`` for every invalidation from now on (see
        :data:`InvalidationCallback`), from this process or, on a shared store, any other.
        Returns a function that unsubscribes."""
        with self._lock:
            self._subscribers = (*self._subscribers, callback)
        self.start()

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def on_change(self, callback: InvalidationCallback) -> Callable[[], None]:
        """Like :meth:`on_invalidation`, for every announcement: invalidations, and also
        writes (fills, ``set``) and released leases. What local copies must follow.

        Unlike an invalidation subscriber, ``callback`` may also be called by a thread that
        reads local copies and found announcements waiting (:meth:`catch_up`): keep it
        short, and let it take no lock such a thread may hold while it reads."""
        with self._lock:
            self._change_subscribers = (*self._change_subscribers, callback)
        self.start()

        def unsubscribe() -> None:
            with self._lock:
                self._change_subscribers = tuple(
                    s for s in self._change_subscribers if s is not callback
                )

        return unsubscribe

    def _notify(self, key: str | None) -> None:
        self._tell(key)
        if key is None:
            self._changed(None)

    def _tell(self, key: str | None) -> None:
        for callback in self._subscribers:
            _call(callback, key)

    def wake_all(self) -> None:
        """Wake everybody (after a lost subscription: announcements may have been missed)."""
        self._wake_everyone()
        self._notify(None)

    def _wake_everyone(self) -> None:
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
