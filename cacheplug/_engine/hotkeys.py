"""Hot-key detection: which keys this process reads most, at a cost the read path can afford.

One read in ``sample_every`` is counted (at random: a fixed stride would never see a key read
in step with it), into a *space-saving* top-k: a table of at most
``capacity`` counters; a sampled key without a counter takes over the smallest one (and its
count, so estimates err high, never low, by at most that count). Counts halve every
``window`` seconds, so the table follows the traffic instead of remembering the morning.
Estimated reads per second are ``count * sample_every / seconds counted``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Final

DEFAULT_CAPACITY: Final = 128
DEFAULT_SAMPLE_EVERY: Final = 8
DEFAULT_WINDOW: Final = 10.0
_HOT_SET_EVERY: Final = 1.0  # seconds between recomputations of ``hot``


class HotKeys:
    """Sampled space-saving counters of the keys read."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        sample_every: int = DEFAULT_SAMPLE_EVERY,
        window: float = DEFAULT_WINDOW,
        monotonic: Callable[[], float] = time.monotonic,
        hot_qps: float = float("inf"),
    ) -> None:
        self.capacity = capacity
        self.hot_qps = hot_qps
        self.hot: frozenset[str] = frozenset()
        """The keys estimated at ``hot_qps`` reads per second or more (recomputed about once a
        second, as reads are counted)."""
        self.sample_every = sample_every
        self.window = window
        self._monotonic = monotonic
        self._counts: dict[str, float] = {}
        self._lock = threading.Lock()
        self.rate = self._rate = 1.0 / sample_every
        """The share of reads to pass to :meth:`count`."""
        self._random = random.random
        self._started = monotonic()
        self._next_decay = self._started + window
        self._next_hot = self._started + _HOT_SET_EVERY

    def seen(self, key: str) -> None:
        """A read of ``key`` (the hot path: usually one random draw and one test)."""
        if self._random() < self._rate:
            self.count(key)

    def count(self, key: str) -> None:
        """Count a *sampled* read of ``key`` (callers that sample themselves call this)."""
        with self._lock:
            counts = self._counts
            if key in counts:
                counts[key] += 1
            elif len(counts) < self.capacity:
                counts[key] = 1
            else:
                smallest = min(counts, key=counts.__getitem__)
                counts[key] = counts.pop(smallest) + 1
            now = self._monotonic()
            if now >= self._next_decay:
                for name in counts:
                    counts[name] /= 2
                # Halving the counts is as if the counting had started half as long ago.
                self._started = now - (now - self._started) / 2
                self._next_decay = now + self.window
            if now >= self._next_hot:
                self._next_hot = now + _HOT_SET_EVERY
                # As many sampled reads as the threshold means over the time counted so far.
                needed = self.hot_qps * max(now - self._started, 1e-3) / self.sample_every
                self.hot = frozenset(name for name, n in counts.items() if n >= needed)

    def top(self, n: int = 20) -> list[tuple[str, float]]:
        """The ``n`` most read keys with their estimated reads per second, hottest first."""
        with self._lock:
            counted_for = max(self._monotonic() - self._started, 1e-3)
            ranked = sorted(self._counts.items(), key=lambda item: item[1], reverse=True)[:n]
        return [(key, count * self.sample_every / counted_for) for key, count in ranked]

    def clear(self) -> None:
        """Forget everything counted so far."""
        with self._lock:
            self._counts.clear()
            self._started = self._monotonic()
            self._next_decay = self._started + self.window
            self._next_hot = self._started + _HOT_SET_EVERY
            self.hot = frozenset()
