"""Count what a block of code asked of the cache: ``count_calls``.

::

    with count_calls(cache) as calls:
        product_page(42)
        product_page(42)
    assert (calls.misses, calls.loads, calls.hits) == (1, 1, 1)

The counts are differences of :meth:`cacheplug.Cache.stats` taken when the block starts and
when it ends, summed over the caches given, so what happened before the block (a fixture
warming the cache, an earlier request) is not counted. They cover the whole process: a
thread of the test's (a live server, a background refresh) that reads the cache during
the block is counted too. The pytest fixture ``cacheplug_calls`` is this, over the caches
the plugin is pointed at (see ``docs/testing.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cacheplug._engine.metrics import CacheStats
    from cacheplug.cache import Cache


class _Count:
    """One count of :class:`CallCounts`: the change of the ``stats()`` counter of its name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, counts: CallCounts, owner: type | None = None) -> int:
        return counts.delta(self._name)


class CallCounts:
    """What the caches were asked during the block. Read inside the block, each count is
    the number so far; after it, the block's total.

    ``hits``: reads answered from the cache (every tier: L1, the store, a replica, a stale
    entry served while it is refreshed); ``misses``: reads that were not; ``loads``: loader
    calls (a miss that waited for another caller's load is a miss without a load);
    ``stale_hits``, ``l1_hits``, ``coalesced`` and ``invalidations`` as in
    :class:`cacheplug.CacheStats`.
    """

    hits = _Count()
    misses = _Count()
    loads = _Count()
    stale_hits = _Count()
    l1_hits = _Count()
    coalesced = _Count()
    invalidations = _Count()
    _NAMES = ("hits", "misses", "loads", "stale_hits", "l1_hits", "coalesced", "invalidations")

    def __init__(self, caches: Sequence[Cache]) -> None:
        self._caches = caches
        self._before = [cache.stats() for cache in caches]
        self._after: list[CacheStats] | None = None

    def stop(self) -> None:
        """Stop counting: the counts are the block's from now on."""
        self._after = [cache.stats() for cache in self._caches]

    def delta(self, name: str) -> int:
        """How much the ``stats()`` counter ``name`` moved, summed over the caches."""
        after = self._after if self._after is not None else [c.stats() for c in self._caches]
        return sum(
            getattr(now, name) - getattr(then, name)
            for now, then in zip(after, self._before, strict=True)
        )

    def as_dict(self) -> dict[str, int]:
        """Every count, by name."""
        return {name: self.delta(name) for name in self._NAMES}

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={count}" for name, count in self.as_dict().items())
        return f"CallCounts({shown})"


@contextmanager
def count_calls(*caches: Cache) -> Iterator[CallCounts]:
    """Count the hits, misses and loads of ``caches`` during the block (see the module's
    docstring). Each cache's counters are read as they are at that moment: stats of a cache
    switched by :meth:`~cacheplug.Cache.disabled` are those of the switched cache."""
    counts = CallCounts(caches)
    try:
        yield counts
    finally:
        counts.stop()
