"""Every cache call of one request, for a debugging panel: :func:`recording_calls`.

Why a context variable: a panel wants the calls of *its* request, on a server that serves
others in other threads (or tasks) at the same time. The adapters' cache object
(:class:`~cacheplug.integration.TaggedCache`), page caching (which reads through it) and
:class:`~cacheplug.integration.AfterCommit` look the variable up once per call; while nobody
records it is ``None`` and the call goes on as before, so the cost is one ``ContextVar.get``
a call, and nothing at all for code that calls :class:`~cacheplug.Cache` directly (its hit
paths are left as they are: see ``benchmarks/overhead.py``).

While a log is open, each call is timed and its outcome read from what it did:

- ``loaded``: its loader ran (a miss that rendered or queried);
- ``l1`` / ``stale`` / ``replica`` / ``hit``: from which tier it was answered (read from the
  cache's counters moved during the call; under concurrent traffic in the same process another
  request's hit can be mistaken for this one's: a debugging aid, not a metric);
- ``coalesced``: it got the result of another caller's load (a stampede averted);
- ``bypass``: it went around the cache (``max_staleness=0``, an uncommitted write of its own);
- ``miss``: nothing held (for ``get``, and a plain page hit that found nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from cacheplug._types import NOTHING
from cacheplug.encoding._keys import ReservedKey

if TYPE_CHECKING:
    from cacheplug import Cache
    from cacheplug._engine.metrics import CacheStats

__all__ = ["CacheCall", "CallLog", "current_calls", "recording_calls"]

_log: Final[ContextVar[CallLog | None]] = ContextVar("cacheplug_calls", default=None)

OUTCOMES: Final = ("loaded", "l1", "stale", "replica", "hit", "coalesced", "bypass", "miss")
"""Every outcome a :class:`CacheCall` can have."""

SERVED: Final = {
    None: "rendered (not cached whole)",
    "loaded": "rendered, then stored",
    "l1": "served from L1 (this process's memory)",
    "hit": "served from {store}",
    "stale": "served from {store} (a stale copy, refreshed in the background)",
    "replica": "served from a hot-key replica in {store}",
    "coalesced": "served from another request's render",
    "bypass": "rendered (the cache was bypassed)",
    "miss": "rendered",
}
"""How a page was served, by the outcome of its read (:meth:`CallLog.page_served`)."""


@dataclass(frozen=True, slots=True)
class CacheCall:
    """One cache call: what was asked, how it was answered, and how long it took."""

    method: str
    """``get_or_load``, ``get``, ``set``, ``page`` (a plain page hit), ..."""
    key: str
    outcome: str
    """One of :data:`OUTCOMES`; ``set`` for writes."""
    seconds: float
    tags: tuple[str, ...] = ()
    load_seconds: float | None = None
    """How long its loader ran, if it ran."""
    page: bool = False
    """The call read a whole page (its key is a page's)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain data (a toolbar stores panels' figures as JSON)."""
        return {**asdict(self), "tags": list(self.tags)}


@dataclass
class CallLog:
    """The calls recorded while :func:`recording_calls` was open, in order."""

    calls: list[CacheCall] = field(default_factory=list)
    invalidations: list[list[str]] = field(default_factory=list)
    """The tags of each invalidation sent after a commit (by
    :class:`~cacheplug.integration.AfterCommit`)."""
    outer: CallLog | None = None
    """The log open around this one (a toolbar's around a page footer's): it gets every call
    too."""

    def page_outcome(self) -> str | None:
        """How the page itself was served: ``None`` if no page was read through the cache;
        else the outcome of its last read (``loaded``: rendered; ``l1``, ``hit``: from the
        cache; ...)."""
        pages = [call for call in self.calls if call.page]
        return pages[-1].outcome if pages else None

    def page_served(self, store: str = "the store") -> str:
        """How the page was served, in words (``store``: what to call the store)."""
        outcome = self.page_outcome()
        return SERVED.get(outcome, outcome or "").format(store=store)

    def counts(self) -> dict[str, int]:
        """How many calls had each outcome (every outcome present, zeros included)."""
        found = dict.fromkeys(OUTCOMES, 0)
        for call in self.calls:
            found[call.outcome] = found.get(call.outcome, 0) + 1
        return found

    def total_seconds(self) -> float:
        """Time spent in cache calls, loads included."""
        return sum(call.seconds for call in self.calls)

    # -- what the hooks call (only while the log is open) --

    def read(
        self,
        cache: Cache,
        method: str,
        key: str,
        tags: Any,
        call: Callable[[Callable[[], Any] | None], Any],
        loader: Callable[[], Any] | None = None,
    ) -> Any:
        """Run ``call(timed_loader)`` (a read of ``key``) and record it."""
        loaded: list[float] = []
        timed: Callable[[], Any] | None = None
        if loader is not None:
            inner = loader

            def timed() -> Any:
                started = time.perf_counter()
                try:
                    return inner()
                finally:
                    loaded.append(time.perf_counter() - started)

        before = cache.stats()
        started = time.perf_counter()
        try:
            result = call(timed)
        finally:
            seconds = time.perf_counter() - started
            outcome = "loaded" if loaded else _outcome(before, cache.stats())
        if result is NOTHING and outcome not in ("loaded", "bypass"):
            outcome = "miss"  # a plain hit that found nothing: the general path follows
        self._add(
            CacheCall(
                method,
                str(key),
                outcome,
                seconds,
                _tag_tuple(tags),
                loaded[-1] if loaded else None,
                type(key) is ReservedKey and str(key).startswith("page:"),
            )
        )
        return result

    def wrote(self, method: str, key: str, tags: Any, seconds: float) -> None:
        """Record a write of ``key``."""
        self._add(CacheCall(method, str(key), "set", seconds, _tag_tuple(tags)))

    def invalidated(self, tags: list[str]) -> None:
        """Record an invalidation sent after a commit."""
        for log in self._open():
            log.invalidations.append(list(tags))

    def _add(self, call: CacheCall) -> None:
        for log in self._open():
            log.calls.append(call)

    def _open(self) -> Iterator[CallLog]:
        """This log and every log open around it."""
        log: CallLog | None = self
        while log is not None:
            yield log
            log = log.outer


def _tag_tuple(tags: Any) -> tuple[str, ...]:
    if not tags:
        return ()
    return (tags,) if isinstance(tags, str) else tuple(str(tag) for tag in tags)


_MOVED: Final = (
    # (CacheStats field, outcome), the most telling first: a stale hit is a hit too.
    ("stale_hits", "stale"),
    ("l1_hits", "l1"),
    ("replica_hits", "replica"),
    ("coalesced", "coalesced"),
    ("hits", "hit"),
    ("bypassed", "bypass"),
)


def _outcome(before: CacheStats, after: CacheStats) -> str:
    """What moved in the counters during one read (no loader of its own ran)."""
    for counter, outcome in _MOVED:
        if getattr(after, counter) > getattr(before, counter):
            return outcome
    return "miss"


def current_calls() -> CallLog | None:
    """The log open in this context, or ``None`` (the hooks' one check a call)."""
    return _log.get()


@contextmanager
def recording_calls() -> Iterator[CallLog]:
    """Record the cache calls made in this context (thread, task) until the block ends::

    with recording_calls() as log:
        response = handle(request)
    log.calls, log.page_outcome(), log.invalidations
    """
    log = CallLog(outer=_log.get())
    token = _log.set(log)
    try:
        yield log
    finally:
        _log.reset(token)
