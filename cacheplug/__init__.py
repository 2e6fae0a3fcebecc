"""cacheplug: a caching layer for Django and Flask applications.

The public API is re-exported here; every other module is private. ``RedisStore`` is
imported on first use, so ``import cacheplug`` needs neither ``redis`` nor any framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cacheplug._cache import Cache
from cacheplug._clock import Clock, SystemClock
from cacheplug._decorators import AsyncCachedFunction, CacheDecorator, CachedFunction
from cacheplug._exceptions import (
    CacheError,
    CacheUnavailable,
    ConfigurationError,
    LockError,
    NotACounter,
    QueueFull,
)
from cacheplug._inspect import EntryInfo
from cacheplug._local import LocalTier
from cacheplug._locks import Lock
from cacheplug._metrics import CacheStats
from cacheplug._options import CacheOptions
from cacheplug._pending import PendingInvalidation
from cacheplug._redact import redact
from cacheplug._resilience import CircuitBreaker
from cacheplug._serializers import JsonSerializer, PickleSerializer, Serializer
from cacheplug._stampede import XFetch
from cacheplug._types import DEFAULT, MISSING
from cacheplug._write_behind import QueuedWrite, WriteBehind, write_order
from cacheplug.stores import register_store, store_from_url
from cacheplug.stores.base import Store
from cacheplug.stores.memory import MemoryStore

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
    "ConfigurationError",
    "DEFAULT",
    "EntryInfo",
    "JsonSerializer",
    "LocalTier",
    "Lock",
    "LockError",
    "MISSING",
    "MemoryStore",
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
    "redact",
    "register_store",
    "store_from_url",
    "write_order",
]


def __getattr__(name: str) -> Any:
    if name == "RedisStore":
        from cacheplug import stores

        return stores.RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
