"""The extension's configuration keys, with their defaults (seeded by ``init_app``).

For ``CachePlug(config_prefix="CACHEPLUG")`` (the default), every key starts with
``CACHEPLUG_``; a second cache in the same app takes another prefix:

- ``CACHEPLUG_STORE``: ``None`` (the embedded in-process store) or a store URL
  (``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``, ``redis+cluster://``).
- ``CACHEPLUG_NAMESPACE``: ``"flask"``. ``CACHEPLUG_DEFAULT_TTL``: ``300`` seconds.
  ``CACHEPLUG_STALE_TTL``: ``0``. ``CACHEPLUG_LOCK_TIMEOUT``: ``10``. ``CACHEPLUG_NEGATIVE_TTL``:
  ``None``.
- ``CACHEPLUG_SECRET``: ``None``, meaning ``SECRET_KEY`` when the app has one.
- ``CACHEPLUG_L1``: ``None``, or a dict of ``max_entries``, ``max_bytes``, ``ttl``,
  ``admission`` (see :class:`cacheplug.LocalTier`).
- ``CACHEPLUG_HOT_KEY_REPLICAS``: ``0``. ``CACHEPLUG_STRICT``: ``False``.
- ``CACHEPLUG_PRIVATE_COOKIES``: ``("remember_token",)`` (Flask-Login's "remember me"):
  cookies that identify somebody besides the session's; a request carrying one is never
  served a shared page.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Final

from cacheplug import Cache, ConfigurationError, LocalTier, store_from_url

DEFAULTS: Final[dict[str, Any]] = {
    "STORE": None,
    "NAMESPACE": "flask",
    "DEFAULT_TTL": 300.0,
    "STALE_TTL": 0.0,
    "LOCK_TIMEOUT": 10.0,
    "NEGATIVE_TTL": None,
    "SECRET": None,
    "L1": None,
    "HOT_KEY_REPLICAS": 0,
    "STRICT": False,
    "PRIVATE_COOKIES": ("remember_token",),
}


def seed(config: MutableMapping[str, Any], prefix: str) -> None:
    """Put the defaults into ``config`` where the app set nothing."""
    for name, value in DEFAULTS.items():
        config.setdefault(f"{prefix}_{name}", value)


def build_cache(config: MutableMapping[str, Any], prefix: str) -> Cache:
    """The cache the app's configuration describes."""

    def get(name: str) -> Any:
        return config[f"{prefix}_{name}"]

    url = get("STORE")
    if url is not None and not isinstance(url, str):
        raise ConfigurationError(f"{prefix}_STORE must be a URL string or None")
    l1 = get("L1")
    if l1 is not None and not isinstance(l1, dict | LocalTier):
        raise ConfigurationError(f"{prefix}_L1 must be a dict such as {{'max_entries': 10000}}")
    if isinstance(l1, dict):
        try:
            l1 = LocalTier(**{key.lower(): value for key, value in l1.items()})
        except TypeError as exc:
            raise ConfigurationError(f"{prefix}_L1: {exc}") from exc
    return Cache(
        None if url is None else store_from_url(url),
        namespace=get("NAMESPACE"),
        default_ttl=get("DEFAULT_TTL"),
        stale_ttl=get("STALE_TTL"),
        lock_timeout=get("LOCK_TIMEOUT"),
        negative_ttl=get("NEGATIVE_TTL"),
        secret=get("SECRET") or config.get("SECRET_KEY") or None,
        l1=l1,
        hot_key_replicas=get("HOT_KEY_REPLICAS"),
        strict=bool(get("STRICT")),
    )
