"""Counters summed over every process that uses a cache, kept in the store.

``Cache.stats()`` counts this process only; a dashboard or ``manage.py cacheplug_stats``
runs in another process. So each process adds what it counted since it last did
(``publish_stats``, which the adapters call after requests, at most every 10 seconds), and
``shared_stats`` reads the totals back. The hottest keys of the last process that published
are kept beside them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, fields
from typing import Any

from cacheplug._engine.metrics import CacheStats
from cacheplug._engine.reads import Engine
from cacheplug.encoding._keys import Purpose

_COUNTED = tuple(f.name for f in fields(CacheStats) if f.name not in ("hot_keys",))
_HOT_KEY = "__hot__"


class StatsPublisher:
    """Sends this process's counter deltas to the store."""

    def __init__(self) -> None:
        self._sent: dict[str, int] = {}
        self._last = -math.inf
        self._lock = threading.Lock()

    def publish_if_due(self, cache: Engine, every: float) -> bool:
        """:meth:`publish` unless it ran less than ``every`` seconds ago."""
        now = time.monotonic()
        if now - self._last < every or not self._lock.acquire(blocking=False):
            return False
        try:
            self._last = now
            self.publish(cache)
        finally:
            self._lock.release()
        return True

    def publish(self, cache: Engine) -> None:
        """Add what was counted since the last call to the shared totals (fails silently
        when the store cannot be reached: the deltas go with the next call)."""
        from cacheplug.exceptions import CacheError

        current = asdict(cache.stats())
        store = cache._store
        try:
            for name in _COUNTED:
                delta = int(current[name]) - self._sent.get(name, 0)
                if delta:
                    store.incr(_key(cache, name), delta, None)
                self._sent[name] = int(current[name])
            hot = cache.hot_keys(10)
            if hot:
                store.set(_key(cache, _HOT_KEY), json.dumps(hot).encode(), 600_000)
        except CacheError:
            return


def shared_stats(cache: Engine) -> tuple[CacheStats, list[tuple[str, float]]]:
    """The totals every process published, and the hottest keys last published."""
    names = [*_COUNTED, _HOT_KEY]
    values = cache._store.get_many([_key(cache, name) for name in names])
    counts: dict[str, Any] = {}
    for name, value in zip(_COUNTED, values, strict=False):
        counts[name] = int(value) if value is not None else 0
    raw_hot = values[-1]
    hot: list[tuple[str, float]] = []
    if raw_hot is not None:
        try:
            hot = [(str(key), float(qps)) for key, qps in json.loads(raw_hot)]
        except (ValueError, TypeError):
            hot = []
    return CacheStats(**counts, hot_keys=len(hot)), hot


def _key(cache: Engine, name: str) -> str:
    return cache._keys.build(Purpose.STATS, name)
