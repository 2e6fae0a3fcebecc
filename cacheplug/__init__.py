"""cacheplug: a caching layer for Django and Flask applications.

The public API is re-exported here; every other module is private. ``RedisStore`` is
imported on first use, so ``import cacheplug`` needs neither ``redis`` nor any framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cacheplug import stores
from cacheplug._clock import Clock, SystemClock
from cacheplug._engine.depends import (
    depends_on,
    depends_on_later,
    dont_store,
    may_depend_on,
    tags_read_ahead,
)
from cacheplug._engine.local import LocalTier
from cacheplug._engine.metrics import CacheStats, Durations, LoadDurations, LoadTrace, LoadTracer
from cacheplug._engine.pending import PendingInvalidation
from cacheplug._engine.plans import XFetch
from cacheplug._engine.resilience import CircuitBreaker
from cacheplug._options import CacheOptions
from cacheplug._redact import redact
from cacheplug._types import DEFAULT, MISSING
from cacheplug.cache import Cache
from cacheplug.encoding._compression import CompressionName
from cacheplug.encoding._msgpack import MsgpackSerializer
from cacheplug.encoding._serializers import JsonSerializer, PickleSerializer, Serializer
from cacheplug.exceptions import (
    CacheError,
    CacheUnavailable,
    ConfigurationError,
    LockError,
    NotACounter,
    QueueFull,
)
from cacheplug.features._decorators import AsyncCachedFunction, CacheDecorator, CachedFunction
from cacheplug.features._inspect import EntryInfo
from cacheplug.features._locks import Lock
from cacheplug.stores import register_store, store_from_url
from cacheplug.stores.base import Store
from cacheplug.stores.memory import MemoryStore
from cacheplug.writebehind._queue import QueuedWrite, WriteBehind, write_order

if TYPE_CHECKING:
    from cacheplug.stores.redis import RedisStore

__version__ = "0.1.0.dev0"

__all__ = [
    "AsyncCachedFunction",
    "Cache",
    "CacheDecorator",
    "CacheError",
    "CacheOptions",
    "CacheStats",
    "CacheUnavailable",
    "CachedFunction",
    "CircuitBreaker",
    "Clock",
    "CompressionName",
    "ConfigurationError",
    "DEFAULT",
    "Durations",
    "EntryInfo",
    "JsonSerializer",
    "LoadDurations",
    "LoadTrace",
    "LoadTracer",
    "LocalTier",
    "Lock",
    "LockError",
    "MISSING",
    "MemoryStore",
    "MsgpackSerializer",
    "NotACounter",
    "PendingInvalidation",
    "PickleSerializer",
    "QueueFull",
    "QueuedWrite",
    "RedisStore",
    "Serializer",
    "Store",
    "SystemClock",
    "WriteBehind",
    "XFetch",
    "depends_on",
    "depends_on_later",
    "dont_store",
    "may_depend_on",
    "redact",
    "register_store",
    "store_from_url",
    "tags_read_ahead",
    "write_order",
]


def __getattr__(name: str) -> Any:
    # RedisStore is imported on first use (it needs redis-py); cacheplug.stores does that.
    if name != "RedisStore":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return stores.RedisStore
