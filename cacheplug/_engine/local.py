"""The L1 tier: decoded values kept in this process, in front of the store.

An L1 hit costs a dict lookup and no round trip, so a hot key read by every request stops
hammering Redis. Coherence comes from the invalidation bus (``FillListener``): every
invalidation of a key, tag or namespace, and every write of a key by any process, drops the
matching local entries. Four rules keep a local copy from outliving what it copied:

- **Bounded life.** An entry lives at most ``ttl`` seconds (and never past its own freshness),
  so a message lost despite everything costs at most that.
- **No serving blind.** While the bus subscription is down, nothing is served from L1; when it
  comes back, L1 starts empty (messages may have been missed meanwhile).
- **No late copies.** A value read from the store is kept only if no invalidation arrived
  since the read began (an epoch counter), so an invalidation that overtook the read cannot
  be undone by it.
- **No waiting on the scheduler.** A thread that serves hits without pause would keep the
  thread that hears the bus from running for the interpreter's switch interval, several times
  per message. So a hit, at most once per ``_CATCH_UP_EVERY`` seconds (a clock it reads
  anyway), lets the bus catch up first (``FillListener.catch_up``) and then looks again.

Eviction is LRU, bounded by entries and by bytes (the size of the stored record). With
``admission="tinylfu"`` (the default) a new key enters a full tier only if it has been missed
more often lately than the entry it would evict: a count-min sketch of 4-bit counters, halved
every ``10 x max_entries`` misses, remembers how often each key was missed (TinyLFU, Einziger,
Friedman & Manes, 2017). One-off keys then cannot flush out the hot ones; on a Zipf(1.0)
workload it keeps markedly more hits than plain LRU (``benchmarks/l1_zipf.py``). Only misses
are counted, so a hit costs nothing more.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cacheplug._config import positive
from cacheplug._types import NOTHING

# The most often a hit lets the bus catch up (seconds): what a thread that never pauses adds,
# at worst, to an invalidation's way into its L1.
_CATCH_UP_EVERY: Final = 0.0005


@dataclass(frozen=True)
class LocalTier:
    """Options of the in-process L1 tier: ``Cache(..., l1=LocalTier(max_entries=10_000))``.

    ``max_entries``/``max_bytes``: bounds (bytes counted as the stored records' sizes);
    ``ttl``: the longest an entry may be served from this process, in seconds, whatever its
    own ttl: the bound on how stale a copy can get if an invalidation message were lost.
    ``admission``: ``"tinylfu"`` (a new key must have been missed more often than the entry
    it evicts) or ``"lru"`` (always admitted).
    """

    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    ttl: float = 5.0
    admission: str = "tinylfu"

    def __post_init__(self) -> None:
        if self.admission not in ("tinylfu", "lru"):
            raise ValueError(
                f"LocalTier admission must be 'tinylfu' or 'lru', not {self.admission!r}"
            )
        if isinstance(self.max_entries, bool) or not isinstance(self.max_entries, int):
            raise TypeError("LocalTier max_entries must be an int")
        if self.max_entries < 1 or self.max_bytes < 1:
            raise ValueError("LocalTier max_entries and max_bytes must be positive")
        positive("LocalTier ttl", self.ttl)


class LocalCache:
    """The L1 of one cache: store key -> (value, expires at, version keys it records, size)."""

    def __init__(
        self,
        options: LocalTier,
        *,
        live: Callable[[], bool],
        monotonic: Callable[[], float] = time.monotonic,
        catch_up: Callable[[], None] | None = None,
    ) -> None:
        self.options = options
        self._live = live
        self._monotonic = monotonic
        self._catch_up: Callable[[], None] = catch_up or _no_bus
        self._next_catch_up = float("-inf") if catch_up is not None else float("inf")
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Any, float, tuple[str, ...], int]] = OrderedDict()
        self._by_version: dict[str, set[str]] = {}
        self._bytes = 0
        self._sketch = _Sketch(options.max_entries) if options.admission == "tinylfu" else None
        self.epoch = 0
        """Moves on with every drop: a reader compares it before and after its store read."""
        self.hits = 0
        self._closed = False
        # A forked child hears no invalidations until it subscribes itself: it starts empty
        # (so that ``get`` need not check the bus on every hit).
        owner = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forked(owner))

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, skey: str, version_keys: tuple[str, ...]) -> Any:
        """The value kept for ``skey`` if it records exactly ``version_keys`` and may still
        be served; ``NOTHING`` otherwise."""
        item = self._entries.get(skey)
        if item is None or item[2] != version_keys:
            return NOTHING
        # No bus check here: losing the bus clears this (see ``fills``), as do fork and close.
        now = self._monotonic()
        if item[1] < now:
            return NOTHING
        if now >= self._next_catch_up:
            self._next_catch_up = now + _CATCH_UP_EVERY
            self._catch_up()
            if self._entries.get(skey) is not item:
                return NOTHING  # dropped by what the bus had brought
        try:
            self._entries.move_to_end(skey)
        except KeyError:  # dropped meanwhile by the bus thread
            return NOTHING
        self.hits += 1
        return item[0]

    def put(
        self,
        skey: str,
        value: Any,
        fresh_for: float,
        version_keys: tuple[str, ...],
        size: int,
        epoch: int,
    ) -> None:
        """Keep ``value`` for at most ``fresh_for`` seconds (capped at the tier's ttl), unless
        an invalidation arrived since ``epoch`` was read or the bus is down."""
        if fresh_for <= 0 or size > self.options.max_bytes:
            return
        expires_at = self._monotonic() + min(fresh_for, self.options.ttl)
        with self._lock:
            if epoch != self.epoch or self._closed or not self._live():
                return
            sketch = self._sketch
            if sketch is not None:
                sketch.add(skey)
                if (
                    len(self._entries) >= self.options.max_entries
                    and skey not in self._entries
                    and sketch.estimate(skey) <= sketch.estimate(next(iter(self._entries)))
                ):
                    return  # not missed more often than what it would evict: not admitted
            self._remove(skey)
            self._entries[skey] = (value, expires_at, version_keys, size)
            self._bytes += size
            for key in version_keys[1:]:  # the root namespace's drops everything anyway
                self._by_version.setdefault(key, set()).add(skey)
            while (
                len(self._entries) > self.options.max_entries
                or self._bytes > self.options.max_bytes
            ):
                oldest = next(iter(self._entries))
                self._remove(oldest)

    def drop(self, store_key: str | None, root_version_key: str) -> None:
        """A key, tag or namespace changed (``None``: anything may have): drop what it covers."""
        with self._lock:
            self.epoch += 1
            if store_key is None or store_key == root_version_key:
                self._entries.clear()
                self._by_version.clear()
                self._bytes = 0
                return
            self._remove(store_key)
            for skey in self._by_version.pop(store_key, ()):
                self._remove(skey)

    def clear(self) -> None:
        """Drop everything."""
        self.drop(None, "")

    def close(self) -> None:
        """Drop everything and keep nothing from now on (the bus is no longer heard)."""
        self._closed = True
        self.clear()

    def _remove(self, skey: str) -> None:
        # Caller holds the lock.
        item = self._entries.pop(skey, None)
        if item is None:
            return
        self._bytes -= item[3]
        for key in item[2][1:]:
            keys = self._by_version.get(key)
            if keys is not None:
                keys.discard(skey)
                if not keys:
                    del self._by_version[key]


_HALVED: Final = bytes(value >> 1 for value in range(256))


_MASK64: Final = 0xFFFFFFFFFFFFFFFF


class _Sketch:
    """A count-min sketch of 4 rows of saturating 4-bit counters (kept in bytes), aged by
    halving every ``10 x capacity`` additions."""

    __slots__ = ("_additions", "_rows", "_sample", "_shift")

    def __init__(self, capacity: int) -> None:
        bits = max(6, (capacity * 2 - 1).bit_length())
        self._shift = 64 - bits
        self._rows = [bytearray(1 << bits) for _ in range(4)]
        self._sample = 10 * capacity
        self._additions = 0

    def _slots(self, key: str) -> tuple[int, int, int, int]:
        # Multiply-shift with four odd multipliers: each row's slot comes from the top bits
        # of its own product, so the rows collide independently (the low bits of a single
        # product would make rows that collide together).
        h = hash(key) & _MASK64
        shift = self._shift
        return (
            ((h * 0x9E3779B97F4A7C15) & _MASK64) >> shift,
            ((h * 0xC2B2AE3D27D4EB4F) & _MASK64) >> shift,
            ((h * 0x165667B19E3779F9) & _MASK64) >> shift,
            ((h * 0xD6E8FEB86659FD93) & _MASK64) >> shift,
        )

    def add(self, key: str) -> None:
        for row, slot in zip(self._rows, self._slots(key), strict=True):
            if row[slot] < 15:
                row[slot] += 1
        self._additions += 1
        if self._additions >= self._sample:
            self._additions //= 2
            for row in self._rows:
                row[:] = row.translate(_HALVED)

    def estimate(self, key: str) -> int:
        return min(row[slot] for row, slot in zip(self._rows, self._slots(key), strict=True))


def _no_bus() -> None:
    pass


def _forked(owner: weakref.ref[LocalCache]) -> None:
    local = owner()
    if local is not None:
        local._lock = threading.Lock()  # another thread may have held it at the fork
        local.clear()
