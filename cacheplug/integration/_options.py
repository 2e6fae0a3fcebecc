"""Adapter settings -> :class:`~cacheplug.Cache` options, every default declared here once.

Django's ``CACHEPLUG`` dict and Flask's ``CACHEPLUG_*`` keys name the same settings and get
the same defaults (:data:`SETTING_DEFAULTS`) and the same translation (:func:`cache_options`);
each adapter only says where its values and its framework's secret key come from.
Settings only one adapter has (Django's ``INVALIDATE_ON_WRITE`` and ``PAGES``) are declared
by that adapter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypedDict

from cacheplug._engine.local import LocalTier
from cacheplug.encoding._compression import CompressionName
from cacheplug.integration._settings import local_tier

__all__ = ["AGAIN_AFTER", "SETTING_DEFAULTS", "CacheOptions", "cache_options"]

SETTING_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "STORE": None,
        "NAMESPACE": "default",
        "DEFAULT_TTL": 300.0,
        "STALE_TTL": 0.0,
        "LOCK_TIMEOUT": 10.0,
        "NEGATIVE_TTL": None,
        "SECRET": None,
        "SECRET_FALLBACKS": None,
        "L1": None,
        "HOT_KEY_REPLICAS": 0,
        "STRICT": False,
        "PRIVATE_COOKIES": ("remember_token",),
        "UNKNOWN_SQL": "all-tables",
        "CDC": None,
        "OUTBOX": True,
        "AUTO_DEPENDENCIES": False,
        "AUDIT_DEPENDENCIES": None,
        "COMPRESSION": "none",
        "EDGE": None,
    }
)
"""Every setting both adapters read, with its default (``SECRET``/``SECRET_FALLBACKS``
``None``: the framework's secret key and its fallbacks; ``PRIVATE_COOKIES``: Flask-Login's
"remember me" cookie, which names a user without a session; ``UNKNOWN_SQL``: a statement the
SQL reader cannot classify as a read invalidates every table; ``CDC``: change data capture
off (a dict of ``SOURCE``, ``DATABASE``, ``SLOT`` turns it on: see
:func:`~cacheplug.integration.cdc_settings`); ``OUTBOX``: the transactional outbox is used
where its table exists; ``AUTO_DEPENDENCIES``: a read depends on what it names, not on
what its loader reads; ``AUDIT_DEPENDENCIES`` ``None``: the audit
of explicit ``depends_on`` is on in the framework's debug mode; ``COMPRESSION`` ``"none"``:
values are stored uncompressed, ``"zlib"`` or ``"zstd"`` compress those of 1 KB and more;
``EDGE`` ``None``: no page is given to an edge cache, see
:func:`~cacheplug.integration.edge_settings`)."""

AGAIN_AFTER: Final = 2.0
"""Seconds after a commit no hook follows (Django's manual transactions, a SQLAlchemy
connection outside a session) when its writes are invalidated once more: a reader that
reloaded the old rows between the first invalidation and the commit cached them again."""


class CacheOptions(TypedDict):
    """The keyword options of :class:`~cacheplug.Cache` the settings give."""

    namespace: str
    default_ttl: float | None
    stale_ttl: float
    lock_timeout: float
    negative_ttl: float | None
    secret: str | bytes | None
    secret_fallbacks: tuple[str | bytes, ...]
    l1: LocalTier | None
    hot_key_replicas: int
    strict: bool
    compression: CompressionName


def cache_options(
    values: Mapping[str, Any],
    *,
    secret_key: str | bytes | None,
    secret_key_fallbacks: Iterable[str | bytes] | None,
) -> CacheOptions:
    """The :class:`~cacheplug.Cache` options of the (validated) settings ``values``, by bare
    name (``"DEFAULT_TTL"``); a setting absent from ``values`` takes its default.

    Without ``SECRET``, entries are signed with the framework's ``secret_key``, and
    ``secret_key_fallbacks`` stand for an unset ``SECRET_FALLBACKS`` (rotating the framework's
    secret must not empty the cache); with ``SECRET``, unset fallbacks mean none."""

    def get(name: str) -> Any:
        return values.get(name, SETTING_DEFAULTS[name])

    secret = get("SECRET") or None
    fallbacks = get("SECRET_FALLBACKS")
    if secret is None:
        secret = secret_key or None
        if fallbacks is None:
            fallbacks = secret_key_fallbacks
    return CacheOptions(
        namespace=get("NAMESPACE"),
        default_ttl=get("DEFAULT_TTL"),
        stale_ttl=get("STALE_TTL"),
        lock_timeout=get("LOCK_TIMEOUT"),
        negative_ttl=get("NEGATIVE_TTL"),
        secret=secret,
        secret_fallbacks=tuple(fallbacks or ()),
        l1=local_tier(get("L1")),
        hot_key_replicas=get("HOT_KEY_REPLICAS"),
        strict=get("STRICT"),
        compression=get("COMPRESSION"),
    )
