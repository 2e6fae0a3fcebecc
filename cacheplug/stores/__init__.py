"""Stores, chosen by URL scheme and imported only when chosen.

``redis`` is imported by :mod:`cacheplug.stores.redis` alone, so an application on the
embedded store never needs it installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cacheplug._exceptions import ConfigurationError
from cacheplug._redact import redact
from cacheplug.stores.base import Store
from cacheplug.stores.memory import MemoryStore

if TYPE_CHECKING:
    from cacheplug.stores.redis import RedisStore

__all__ = ["MemoryStore", "RedisStore", "Store", "store_from_url"]

_BY_SCHEME: dict[str, str] = {
    "memory": "cacheplug.stores.memory:MemoryStore",
    "redis": "cacheplug.stores.redis:RedisStore",
    "rediss": "cacheplug.stores.redis:RedisStore",
    "unix": "cacheplug.stores.redis:RedisStore",
    "redis+sentinel": "cacheplug.stores.redis:RedisStore",
    "redis+cluster": "cacheplug.stores.redis_cluster:RedisClusterStore",
}
_EXTRA_FOR_MODULE = {"cacheplug.stores.redis": "redis", "cacheplug.stores.redis_cluster": "redis"}


def _load(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = _EXTRA_FOR_MODULE.get(module_name, "")
        raise ConfigurationError(
            f"{module_name} needs a package that is not installed ({exc.name}); "
            f"install it with: pip install 'cacheplug[{extra}]'"
        ) from exc
    return getattr(module, attribute)


def store_from_url(url: str) -> Store:
    """The store a URL names: ``memory://``, ``redis://``, ``rediss://``, ``unix://``,
    ``redis+sentinel://``, ``redis+cluster://``."""
    if not isinstance(url, str) or "://" not in url:
        shown = redact(url) if isinstance(url, str) else f"a {type(url).__name__}"
        raise ConfigurationError(
            f"a store URL looks like 'redis://127.0.0.1:6379/0', not {shown!r}"
        )
    scheme = url.split("://", 1)[0].lower()
    path = _BY_SCHEME.get(scheme)
    if path is None:
        known = ", ".join(f"{s}://" for s in _BY_SCHEME)
        raise ConfigurationError(
            f"unknown store URL scheme in {redact(url)!r}; use one of: {known}"
        )
    store: Store = _load(path).from_url(url)
    return store


def __getattr__(name: str) -> Any:
    if name == "RedisStore":
        return _load(_BY_SCHEME["redis"])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
