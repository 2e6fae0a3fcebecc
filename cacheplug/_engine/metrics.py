"""Counters kept by a cache, and the snapshot ``Cache.stats()`` returns; the timings of its
loads and lease waits, and the hook a tracer plugs into them (``watch`` fills both)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Final, Protocol


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the cache was created (or last ``reset_stats()``).

        ``hits``/``misses``: lookups answered from the cache or not (``stale_hits``: hits served
        stale while a refresh runs). ``loads``: loader calls. ``coalesced``: callers that got the
        result of somebody else's load instead of loading (stampedes averted). ``refreshes``:
        background refreshes that ran a loader. ``bypassed``: reads that skipped the cache
    (``max_staleness=0``, or an invalidation of theirs still waiting for the store).
    ``invalidations``: keys, tags and namespaces invalidated (``queued_invalidations``: of those,
    the ones that had to wait for the store; see ``pending_invalidations()``).
        ``errors``: failed store calls. ``discarded``: entries thrown away because they failed the
        signature check, had an unknown format, or could not be decoded. ``oversize``: values not
        cached because they exceeded ``max_value_bytes``. ``bytes_read``/``bytes_written``: bytes
        moved to and from the store, as stored. ``l1_hits``: hits answered by the L1 tier
    without a round trip. ``replica_hits``: hits answered by a replica of a hot key.
    ``hot_keys``: keys this process now reads at least ``hot_key_qps`` times a second
    (estimated; see ``Cache.hot_keys()`` for which).
    """

    hits: int = 0
    misses: int = 0
    stale_hits: int = 0
    loads: int = 0
    coalesced: int = 0
    refreshes: int = 0
    errors: int = 0
    discarded: int = 0
    oversize: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    bypassed: int = 0
    invalidations: int = 0
    queued_invalidations: int = 0
    l1_hits: int = 0
    replica_hits: int = 0
    hot_keys: int = 0

    @property
    def hit_ratio(self) -> float:
        """``hits / (hits + misses)``, 0.0 before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def hits_by_tier(self) -> dict[str, int]:
        """``hits`` split by where they were answered: ``l1`` (this process's L1 tier),
        ``replica`` (a copy of a hot key), ``stale`` (an expired entry served while it is
        refreshed) and ``store`` (a fresh entry read from the store: the rest)."""
        tiers = {"l1": self.l1_hits, "replica": self.replica_hits, "stale": self.stale_hits}
        return {**tiers, "store": max(0, self.hits - sum(tiers.values()))}

    def with_coalesced(self, coalesced: int) -> CacheStats:
        """A copy with another ``coalesced`` count."""
        return replace(self, coalesced=coalesced)

    def with_gauges(self, l1_hits: int, hot_keys: int) -> CacheStats:
        """A copy with the figures kept outside the counters."""
        return replace(self, l1_hits=l1_hits, hot_keys=hot_keys)

    def as_dict(self) -> dict[str, Any]:
        """The counters and ``hit_ratio`` as a plain dict (for JSON output)."""
        return {**asdict(self), "hit_ratio": self.hit_ratio}


_COUNTED: Final = tuple(f.name for f in fields(CacheStats) if f.name not in ("l1_hits", "hot_keys"))
"""The fields of :class:`CacheStats` that :class:`Counters` keeps (the others are gauges the
engine adds)."""

SECONDS_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of the :class:`Timings` buckets: a millisecond to ten seconds, from a loader
reading a warm table to one rendering a report (the last bucket takes what is slower)."""


@dataclass(frozen=True, slots=True)
class Durations:
    """How long something took, as a histogram: ``buckets`` holds ``(upper bound in seconds,
    how many took at most that long)``, cumulative, the last bound ``math.inf``; ``count``
    and ``sum`` (seconds) of them all."""

    buckets: tuple[tuple[float, int], ...]
    count: int
    sum: float


@dataclass(frozen=True, slots=True)
class LoadDurations:
    """What ``Cache.durations()`` returns, since the cache was made (or ``reset_stats()``):
    ``loads``, the loader calls of misses and background refreshes (not those of reads that
    bypass the cache); ``lease_waits``, how long callers waited for another process's load of
    the key (until its value came, or they loaded themselves)."""

    loads: Durations
    lease_waits: Durations


class Timings:
    """Durations in fixed buckets (a histogram), counted like the counters: without a lock.

    Only loads and lease waits are timed, never hits: they take milliseconds at least, so two
    clock reads and an increment are lost in them.
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float] = SECONDS_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: longer than every bound
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def snapshot(self) -> Durations:
        counts = list(self.counts)
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        return Durations(tuple(buckets), cumulative, self.total)


class LoadTrace(Protocol):
    """What a tracer follows of one load (see :class:`LoadTracer`). ``active`` is entered
    around the whole load; ``waiting`` and ``wait_over``, ``loading`` and ``loaded`` are
    called if that happens, in that order; ``end`` always, last."""

    def active(self) -> AbstractContextManager[Any]:
        """Entered while this process runs the load, so that what the loader does (its
        database calls) is seen as part of it."""
        ...

    def waiting(self) -> None:
        """Another process holds the key's lease: this caller waits for its value."""
        ...

    def wait_over(self, seconds: float) -> None:
        """The wait ended after ``seconds`` (the value came, or this caller loads)."""
        ...

    def loading(self) -> None:
        """This caller runs the loader now."""
        ...

    def loaded(self, seconds: float) -> None:
        """The loader returned (or raised) after ``seconds``."""
        ...

    def end(self, outcome: str, waiters: int, error: BaseException | None) -> None:
        """The load is over: ``outcome`` (see ``watch.Outcome``), how many other callers of
        this process shared it, the error if it raised."""
        ...


class LoadTracer(Protocol):
    """Follows the loads of a cache (``Cache.trace_loads``; :mod:`cacheplug.otel` makes
    one). Hits are never traced, and while no tracer is set a load pays nothing for it."""

    def start(self, store_key: str, version_keys: Sequence[str], refresh: bool) -> LoadTrace:
        """A load of ``store_key`` (read with ``version_keys``: the namespace's, the tags')
        begins: a miss this process loads or waits for, or a background refresh."""
        ...


class Counters:
    """The live, mutable counters.

    Increments are plain attribute updates: under heavy threading a rare increment may be
    lost, which is the usual trade for keeping locks off the hit path.

    ``load_seconds`` and ``lease_wait_seconds`` time the loads and the waits for another
    process's load; ``tracer`` follows each load when set. They live here because this is
    the one object every view of a cache (``Cache.namespace``) shares.
    """

    __slots__ = (
        "bypassed",
        "bytes_read",
        "bytes_written",
        "coalesced",
        "discarded",
        "errors",
        "hits",
        "invalidations",
        "lease_wait_seconds",
        "load_seconds",
        "loads",
        "misses",
        "oversize",
        "queued_invalidations",
        "refreshes",
        "replica_hits",
        "stale_hits",
        "tracer",
    )

    def __init__(self) -> None:
        self.tracer: LoadTracer | None = None
        self.reset()

    def reset(self) -> None:
        self.hits = self.misses = self.stale_hits = self.loads = self.errors = 0
        self.coalesced = self.refreshes = 0
        self.discarded = self.oversize = self.bytes_read = self.bytes_written = 0
        self.bypassed = self.invalidations = self.queued_invalidations = 0
        self.replica_hits = 0
        self.load_seconds = Timings()
        self.lease_wait_seconds = Timings()

    def snapshot(self) -> CacheStats:
        return CacheStats(**{name: getattr(self, name) for name in _COUNTED})
