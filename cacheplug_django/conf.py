"""The ``CACHEPLUG`` setting: read when first needed (never at import), checked, and read
again after ``setting_changed`` (tests' ``override_settings``).

Every key, with its default:

- ``STORE``: ``None`` (the embedded in-process store), a store URL (``redis://...``,
  ``rediss://``, ``unix://``, ``redis+sentinel://``, ``redis+cluster://``, ``memory://``, or a
  scheme added with :func:`cacheplug.register_store`), a dotted path
  ``"package.module:Name"`` to a store class or factory (called with no arguments), a
  :class:`cacheplug.Store` instance (closed with the cache), or ``"django:<alias>"`` to use
  the Redis server of a ``CACHES`` alias (django-redis, whose connection pool is then shared,
  or Django's own ``RedisCache``, whose server is reused).
- ``NAMESPACE``: ``"default"``. ``DEFAULT_TTL``: ``300`` seconds (``None``: no expiry).
  ``STALE_TTL``: ``0``. ``LOCK_TIMEOUT``: ``10`` seconds. ``NEGATIVE_TTL``: ``None``.
- ``SECRET``: ``None``, meaning ``SECRET_KEY`` (entries on a shared store are signed with it).
  ``SECRET_FALLBACKS``: ``None``, meaning ``SECRET_KEY_FALLBACKS`` when ``SECRET`` is not set
  (``()`` otherwise): older secrets whose entries are still accepted after a rotation.
- ``L1``: ``None``, or a dict of ``MAX_ENTRIES``, ``MAX_BYTES``, ``TTL``, ``ADMISSION``
  (see :class:`cacheplug.LocalTier`) to keep hot values in each process too.
- ``HOT_KEY_REPLICAS``: ``0`` (see ``docs/hot-keys.md``). ``STRICT``: ``False``.
- ``INVALIDATE_ON_WRITE``: ``True``: every ORM write (and raw SQL) invalidates what depends on
  the tables and rows it wrote.
- ``PAGES``: ``[]``: the URLs ``CachePlugMiddleware`` caches (see
  ``cacheplug_django.middleware``).
- ``PRIVATE_COOKIES``: ``("remember_token",)``: cookies that identify somebody besides the
  session's (a login token a middleware of yours reads): a request carrying one is never
  served a shared page.
- ``UNKNOWN_SQL``: ``"all-tables"``: a statement the SQL reader cannot classify as a read
  (``CALL``, ``DO``, ``EXECUTE``, ...) invalidates everything that depends on any table;
  ``"ignore"``: it invalidates nothing.
- ``CDC``: ``None`` (off), or ``{"SOURCE": "postgresql", "DATABASE": "default", "SLOT":
  "cacheplug"}`` (every key optional but ``SOURCE``): ``manage.py cacheplug_cdc`` reads the
  logical replication slot ``SLOT`` of the ``DATABASES`` alias ``DATABASE`` (a PostgreSQL
  one) and invalidates what every committed change wrote, whoever wrote it.
- ``OUTBOX``: ``True``: the transactional outbox is used where its table exists
  (:func:`outbox_enabled`).
- ``AUTO_DEPENDENCIES``: ``False``; ``True``: every read depends on what its loader reads,
  as ``depends_on="auto"``, plus what it names (``depends_on`` models, ``tags``).
- ``AUDIT_DEPENDENCIES``: ``None`` (on when ``DEBUG``): a loader with an explicit
  ``depends_on`` that reads a table it does not name is logged (a warning naming the table
  and where the loader is).
- ``COMPRESSION``: ``"none"``; ``"zlib"`` or ``"zstd"`` (``pip install 'cacheplug[zstd]'``):
  values of 1 KB and more are stored compressed, and entries compressed with either are read.

The defaults of every key but ``INVALIDATE_ON_WRITE`` and ``PAGES`` are Flask's too
(:data:`cacheplug.integration.SETTING_DEFAULTS`), and so is the translation into
:class:`cacheplug.Cache` options (:func:`cacheplug.integration.cache_options`).

Every value is checked by ``manage.py check`` (``cacheplug_django.checks``), every problem at
once, with the rules of :mod:`cacheplug.integration`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from cacheplug import ConfigurationError, Store
from cacheplug.integration import (
    SETTING_DEFAULTS,
    CacheOptions,
    CdcSettings,
    EdgeSettings,
    SettingProblem,
    SettingsError,
    cache_options,
    cdc_settings,
    cookie_names,
    edge_settings,
    unknown_settings,
    validate_settings,
)
from cacheplug.stores import resolve_store
from cacheplug_django._page_rules import PageRule, page_rules

SETTING: Final = "CACHEPLUG"
INVALIDATE_ON_WRITE: Final = True
"""The default of ``INVALIDATE_ON_WRITE`` (the other keys' are ``SETTING_DEFAULTS``)."""
_KEYS: Final = frozenset({*SETTING_DEFAULTS, "INVALIDATE_ON_WRITE", "PAGES"})


@dataclass(frozen=True)
class CachePlugSettings:
    """The ``CACHEPLUG`` setting, checked."""

    store: Any
    """``STORE`` as given: ``None``, a URL, ``django:<alias>``, a dotted path or a Store."""
    options: CacheOptions
    invalidate_on_write: bool
    pages: tuple[PageRule, ...] = ()
    """The page rules of ``CachePlugMiddleware`` (see ``cacheplug_django.middleware``)."""
    private_cookies: tuple[str, ...] = ()
    """Cookies that identify somebody besides the session's: a request carrying one is not
    served a shared page (``cache_view``, ``CachePlugMiddleware``)."""
    cdc: CdcSettings | None = None
    """``CDC``: change data capture's source, database alias and slot (None: off)."""
    outbox: bool = True
    """``OUTBOX``: whether the transactional outbox is used where its table exists."""
    edge: EdgeSettings | None = None
    """``EDGE``: how pages given to an edge cache are marked and purged (None: off)."""


def read_settings() -> CachePlugSettings:
    """The ``CACHEPLUG`` setting as the cache is built from it; raises
    :class:`~cacheplug.integration.SettingsError` listing every problem."""
    raw = getattr(settings, SETTING, None)
    if raw is None:
        raw = {}
    problems = setting_problems(raw)
    if problems:
        raise SettingsError(problems)
    options = cache_options(
        raw,
        secret_key=secret_key(),
        secret_key_fallbacks=getattr(settings, "SECRET_KEY_FALLBACKS", None),
    )
    return CachePlugSettings(
        store=raw.get("STORE", SETTING_DEFAULTS["STORE"]),
        options=options,
        invalidate_on_write=raw.get("INVALIDATE_ON_WRITE", INVALIDATE_ON_WRITE),
        pages=page_rules(raw.get("PAGES")),
        private_cookies=cookie_names(
            raw.get("PRIVATE_COOKIES", SETTING_DEFAULTS["PRIVATE_COOKIES"]),
            f"{SETTING}['PRIVATE_COOKIES']",
        ),
        cdc=cdc_settings(raw.get("CDC", SETTING_DEFAULTS["CDC"])),
        outbox=raw.get("OUTBOX", SETTING_DEFAULTS["OUTBOX"]),
        edge=edge_settings(raw.get("EDGE", SETTING_DEFAULTS["EDGE"])),
    )


def every_table_on_unknown_sql() -> bool:
    """Whether a statement the SQL reader cannot classify as a read invalidates every table:
    ``UNKNOWN_SQL`` is not ``"ignore"``. Read from the setting as it is now (the ORM hook asks
    only for such a statement); a value that is not valid counts as the default, and
    ``manage.py check`` reports it."""
    raw = getattr(settings, SETTING, None)
    return not (isinstance(raw, dict) and raw.get("UNKNOWN_SQL") == "ignore")


def auto_dependencies() -> bool:
    """Whether a read naming no dependency is ``depends_on="auto"``: ``AUTO_DEPENDENCIES``.
    Read as it is now; a value that is not valid counts as the default (``False``), and
    ``manage.py check`` reports it."""
    raw = getattr(settings, SETTING, None)
    return isinstance(raw, dict) and raw.get("AUTO_DEPENDENCIES") is True


def audit_dependencies() -> bool:
    """Whether loaders with an explicit ``depends_on`` are audited: ``AUDIT_DEPENDENCIES``,
    or ``DEBUG`` when it is ``None`` (the default)."""
    raw = getattr(settings, SETTING, None)
    chosen = raw.get("AUDIT_DEPENDENCIES") if isinstance(raw, dict) else None
    return bool(settings.DEBUG) if chosen is None else chosen is True


def outbox_enabled() -> bool:
    """Whether the transactional outbox is used where its table exists: ``OUTBOX`` is not
    ``False``. Read from the setting as it is now; a value that is not valid counts as the
    default (``True``), and ``manage.py check`` reports it."""
    raw = getattr(settings, SETTING, None)
    return not (isinstance(raw, dict) and raw.get("OUTBOX") is False)


def setting_problems(raw: Any) -> list[SettingProblem]:
    """Every problem of the ``CACHEPLUG`` value ``raw`` (but whether its store can be used:
    see ``cacheplug_django.checks``)."""
    if not isinstance(raw, dict):
        return [
            SettingProblem(
                "E001",
                SETTING,
                f"must be a dict, not {type(raw).__name__}",
                "Write CACHEPLUG = {...} with the keys in docs/settings.md, or leave it out.",
            )
        ]
    spell = _spell
    return [
        *unknown_settings(raw, _KEYS, spell=spell),
        *validate_settings({k: v for k, v in raw.items() if k in _KEYS}, spell=spell),
    ]


def _spell(name: str) -> str:
    return f"{SETTING}[{name!r}]"


def secret_key() -> str | None:
    """``SECRET_KEY``, or ``None`` when it is empty."""
    try:
        return str(settings.SECRET_KEY) or None
    except ImproperlyConfigured:  # an empty SECRET_KEY: Django refuses to hand it out
        return None


def store_url(store: Any) -> Any:
    """``STORE`` with ``django:<alias>`` replaced by that cache's Redis URL."""
    if not isinstance(store, str) or not store.startswith("django:"):
        return store
    alias = store.removeprefix("django:")
    caches = getattr(settings, "CACHES", {})
    if alias not in caches:
        raise ConfigurationError(
            f"{SETTING}['STORE'] = {store!r}, but CACHES has no alias {alias!r}"
        )
    backend = str(caches[alias].get("BACKEND", ""))
    location = caches[alias].get("LOCATION")
    if "redis" not in backend.lower() or not location:
        raise ConfigurationError(
            f"CACHES[{alias!r}] ({backend or 'no BACKEND'}) is not a Redis cache: "
            f"{SETTING}['STORE'] can only reuse the server of a Redis one"
        )
    if isinstance(location, list | tuple):
        location = location[0]  # the primary (django-redis and Django list it first)
    return str(location)


def build_store(store: Any) -> Store | None:
    """The store ``STORE`` names (``None``: the embedded one, which ``Cache`` makes):
    ``django:<alias>``, or what :func:`cacheplug.stores.resolve_store` takes (a URL, a
    dotted path ``"package.module:Name"``, a :class:`~cacheplug.Store`, returned as it is).
    Raises :class:`~cacheplug.ConfigurationError` (or ``ImportError``) saying why not."""
    if store is None:
        return None
    url = store_url(store)
    pool = shared_pool(store)
    if pool is not None and url is not None:
        from cacheplug.stores.redis import RedisStore  # needs redis-py

        return RedisStore(url, connection_pool=pool)
    return resolve_store(url if url is not None else store)


def shared_pool(store: Any) -> Any:
    """The redis-py connection pool of the django-redis cache ``STORE="django:<alias>"``
    names, to share it; ``None`` for any other store (Django's own ``RedisCache`` keeps its
    pool private: its server is reused, not its connections)."""
    if not isinstance(store, str) or not store.startswith("django:"):
        return None
    alias = store.removeprefix("django:")
    backend = str(getattr(settings, "CACHES", {}).get(alias, {}).get("BACKEND", ""))
    if not backend.startswith("django_redis."):
        return None
    from django_redis import get_redis_connection

    try:
        client = get_redis_connection(alias)
    except NotImplementedError:
        return None  # a django-redis client without one raw connection (sharded, say)
    return client.connection_pool


class SettingsHolder:
    """The current settings, read once and dropped when the setting changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: CachePlugSettings | None = None

    def get(self) -> CachePlugSettings:
        current = self._current
        if current is None:
            with self._lock:
                current = self._current
                if current is None:
                    current = self._current = read_settings()
        return current

    def reset(self) -> None:
        with self._lock:
            self._current = None
