"""Counters kept by a cache, and the snapshot ``Cache.stats()`` returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


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

    def with_coalesced(self, coalesced: int) -> CacheStats:
        """A copy with another ``coalesced`` count."""
        return replace(self, coalesced=coalesced)

    def with_gauges(self, l1_hits: int, hot_keys: int) -> CacheStats:
        """A copy with the figures kept outside the counters."""
        return replace(self, l1_hits=l1_hits, hot_keys=hot_keys)

    def as_dict(self) -> dict[str, Any]:
        """The counters and ``hit_ratio`` as a plain dict (for JSON output)."""
        return {**asdict(self), "hit_ratio": self.hit_ratio}


class Counters:
    """The live, mutable counters.

    Increments are plain attribute updates: under heavy threading a rare increment may be
    lost, which is the usual trade for keeping locks off the hit path.
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
        "loads",
        "misses",
        "oversize",
        "queued_invalidations",
        "refreshes",
        "replica_hits",
        "stale_hits",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.hits = self.misses = self.stale_hits = self.loads = self.errors = 0
        self.coalesced = self.refreshes = 0
        self.discarded = self.oversize = self.bytes_read = self.bytes_written = 0
        self.bypassed = self.invalidations = self.queued_invalidations = 0
        self.replica_hits = 0

    def snapshot(self) -> CacheStats:
        return CacheStats(**{name: getattr(self, name) for name in self.__slots__})
