"""Watching one load: its duration and its lease wait timed, its tracer told.

The fill and refresh plans (``loads``) are handed the wrapped ``expect``, ``encode`` and
loader of a :class:`LoadWatch`, which is how it sees what happens without the plans knowing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Final, TypeVar

from cacheplug._engine.metrics import Counters, LoadTrace
from cacheplug._engine.plans import SHARED, UNSHARED, Encoder

T = TypeVar("T")
W = TypeVar("W")

Outcome = str
"""How a load ended, as :class:`LoadTrace.end` is told: ``"stored"`` (loaded and cached),
``"not_stored"`` (loaded, not cacheable: a ttl of 0, too large, a pending invalidation),
``"invalidated"`` (loaded, but invalidated while it ran: not cached), ``"store_error"``
(loaded, the store failed to take it), ``"uncached"`` (loaded without the store, which could
not be reached), ``"wait_timeout"`` (waited ``wait_timeout`` for another process's load, then
loaded without storing), ``"waited"`` (another process's load answered), ``"found"`` (a value
landed between the miss and the lease: nothing loaded), ``"skipped"`` (a refresh somebody else
ran), ``"error"`` (the loader raised)."""


class LoadWatch:
    """Times one load (a miss or a refresh) and the wait for another process's load of the
    key, into :attr:`Counters.load_seconds` / :attr:`Counters.lease_wait_seconds`, and tells
    the cache's tracer, if one is set."""

    __slots__ = (
        "_counters",
        "_encoded",
        "_error",
        "_loaded",
        "_monotonic",
        "_refresh",
        "_store_key",
        "_trace",
        "_valid_at",
        "_version_keys",
        "_wait_from",
        "_waited",
    )

    def __init__(
        self,
        counters: Counters,
        monotonic: Callable[[], float],
        store_key: str,
        version_keys: Sequence[str],
        *,
        refresh: bool = False,
    ) -> None:
        self._counters = counters
        self._monotonic = monotonic
        self._store_key = store_key
        self._version_keys = version_keys
        self._refresh = refresh
        # Made by run(), which only the caller that leads the load calls: one trace a load.
        self._trace: LoadTrace | None = None
        self._wait_from: float | None = None
        self._waited = False
        self._loaded = False
        self._encoded: bool | None = None  # None: never asked to store a value
        self._error: BaseException | None = None
        self._valid_at: float | None = None  # None: the load returned nothing (a refresh)

    # -- the plan's functions, watched ----------------------------------------------------

    def expect(self, expect: Callable[[str], W]) -> Callable[[str], W]:
        """``expect``: the plan calls it when another process holds the lease."""

        def watched(key: str) -> W:
            if self._wait_from is None and not self._loaded:
                self._wait_from = self._monotonic()
                self._waited = True
                if self._trace is not None:
                    self._trace.waiting()
            return expect(key)

        return watched

    def encode(self, encode: Encoder) -> Encoder:
        def watched(value: Any, elapsed: float, read: Any) -> Any:
            encoded = encode(value, elapsed, read)
            self._encoded = encoded is not None
            return encoded

        return watched

    def load(self, load: Callable[[], Any]) -> Callable[[], Any]:
        def watched() -> Any:
            with self._loading():
                return load()

        return watched

    def aload(self, load: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        async def watched() -> Any:
            with self._loading():
                return await load()

        return watched

    @contextmanager
    def _loading(self) -> Iterator[None]:
        started = self._monotonic()
        self._wait_over(started)
        self._loaded = True
        if self._trace is not None:
            self._trace.loading()
        try:
            yield
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            seconds = self._monotonic() - started
            self._counters.load_seconds.observe(seconds)
            if self._trace is not None:
                self._trace.loaded(seconds)

    def _wait_over(self, now: float) -> None:
        if self._wait_from is not None:
            seconds = now - self._wait_from
            self._wait_from = None
            self._counters.lease_wait_seconds.observe(seconds)
            if self._trace is not None:
                self._trace.wait_over(seconds)

    # -- around the whole load ------------------------------------------------------------

    def _start(self) -> AbstractContextManager[Any]:
        tracer = self._counters.tracer
        if tracer is None:
            return _NOT_TRACED
        self._trace = tracer.start(self._store_key, self._version_keys, self._refresh)
        return self._trace.active()

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` (the plan run), traced if a tracer is set."""
        with self._start():
            try:
                return self._result(fn())
            except BaseException as exc:
                self._error = self._error or exc
                raise

    async def arun(self, fn: Callable[[], Awaitable[T]]) -> T:
        with self._start():
            try:
                return self._result(await fn())
            except BaseException as exc:
                self._error = self._error or exc
                raise

    def _result(self, result: T) -> T:
        self._wait_over(self._monotonic())
        if isinstance(result, tuple) and len(result) == 2:
            self._valid_at = result[1]
        return result

    def joined(self, waiters: int) -> None:
        """The load is over; ``waiters`` callers of this process shared it."""
        self._wait_over(self._monotonic())
        if self._trace is not None:
            self._trace.end(self.outcome(), waiters, self._error)

    def outcome(self) -> Outcome:
        if self._error is not None:
            return "error"
        if not self._loaded:
            if self._valid_at is None:
                return "skipped"
            return "waited" if self._waited else "found"
        if self._encoded is None:
            return "wait_timeout" if self._waited else "uncached"
        if not self._encoded:
            return "not_stored"
        if self._valid_at == SHARED:
            return "stored"
        return "invalidated" if self._valid_at == UNSHARED else "store_error"


class _NotTraced:
    """The context a load runs in when no tracer is set."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


_NOT_TRACED: Final = _NotTraced()
