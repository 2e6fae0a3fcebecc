"""What a cache offers on top of reads and writes: locks, ``inspect``, fleet-wide stats,
write-through and write-around, and the ``@cached`` decorators.

Each feature receives the cache as a :class:`~cacheplug._engine.protocol.CacheState` and never
imports :mod:`cacheplug.cache`. The public names are re-exported by :mod:`cacheplug`.
"""

from __future__ import annotations

from cacheplug.features._decorators import AsyncCachedFunction, CacheDecorator, CachedFunction
from cacheplug.features._inspect import EntryInfo
from cacheplug.features._locks import Lock

__all__ = ["AsyncCachedFunction", "CacheDecorator", "CachedFunction", "EntryInfo", "Lock"]
