"""Stores, chosen by URL scheme, dotted path or instance, and imported only when chosen.

``redis`` is imported by the Redis stores alone (:mod:`cacheplug.stores.redis`; ``RedisStore``
and ``RedisClusterStore`` are imported from here on first use), so an application on the
embedded store never needs it installed. :class:`NullStore` (``null://``) keeps nothing: the
off switch. :func:`register_store` adds a URL scheme for a store
of your own; :func:`resolve_store` turns a URL, a dotted path or a store into a store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cacheplug.stores import _registry
from cacheplug.stores._registry import register_store, resolve_store, store_from_url
from cacheplug.stores.base import Store
from cacheplug.stores.memory import MemoryStore
from cacheplug.stores.null import NullStore

if TYPE_CHECKING:
    from cacheplug.stores.redis import RedisClusterStore, RedisStore

__all__ = [
    "MemoryStore",
    "NullStore",
    "RedisClusterStore",
    "RedisStore",
    "Store",
    "register_store",
    "resolve_store",
    "store_from_url",
]


def __getattr__(name: str) -> Any:
    if name in ("RedisClusterStore", "RedisStore"):
        # Through the registry's import, so a missing redis-py names the extra to install.
        return _registry.import_path(f"cacheplug.stores.redis:{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
