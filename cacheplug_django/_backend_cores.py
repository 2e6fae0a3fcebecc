"""The cores behind ``CachePlugCache`` backends: checked ``OPTIONS``, and one
:class:`cacheplug.Cache` per configuration, shared by every backend object built with it."""

from __future__ import annotations

import hashlib
import pickle
import re
import threading
import time as time_module
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.safestring import SafeString

from cacheplug import (
    MISSING as _MISSING,
)
from cacheplug import (
    Cache,
    Clock,
    CompressionName,
    ConfigurationError,
    LocalTier,
    MemoryStore,
    Store,
    store_from_url,
)
from cacheplug.integration import SETTING_DEFAULTS, cache_options
from cacheplug.integration import local_tier as _local_tier

DEFAULT_NAMESPACE: Final = "django-cache"
"""Not ``CACHEPLUG``'s: this backend keeps Django's pickles under Django's keys, and its
``clear()`` bumps the namespace, so it must not share one with the project's cache (often on
the same Redis server)."""
OPTIONS: Final = frozenset(
    {
        "NAMESPACE",
        "SECRET",
        "SECRET_FALLBACKS",
        "L1",
        "STRICT",
        "LOCK_TIMEOUT",
        "MAX_VALUE_BYTES",
        "COMPRESS_MIN_BYTES",
        "COMPRESSION",
        "MAX_ENTRIES",
        "CULL_FREQUENCY",  # read (and ignored) by BaseCache: accepted like Django does
        "CLOCK",
    }
)
_READABLE_PREFIX: Final = re.compile(r"[A-Za-z0-9_-]*\Z")
MISSING: Final[Any] = _MISSING  # the core's sentinel: one MISSING in the whole library

# Values of these types cannot be changed by whoever gets them, so they need no private copy.
_IMMUTABLE: Final[frozenset[type]] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        SafeString,
        bytes,
        Decimal,
        datetime,
        date,
        time,
        timedelta,
        uuid.UUID,
    }
)


@dataclass(frozen=True)
class CoreConfig:
    """Everything a core is built from: backends with equal configs share one core."""

    location: str
    namespace: str
    secret: str | bytes | None = field(repr=False)
    secret_fallbacks: tuple[str | bytes, ...] = field(repr=False)
    l1: LocalTier | None
    strict: bool
    lock_timeout: float
    max_value_bytes: int
    compress_min_bytes: int | None
    compression: CompressionName
    max_entries: int | None
    clock: Clock | None


# Django builds one backend object per thread (and again after ``CACHES`` changes), and closes
# them after every request. The core (its embedded store, L1 tier, connection pools,
# single-flight table and bus subscription) must outlive all that and be shared, or threads
# would not see each other's embedded entries, nor share loads and L1 hits.
_cores: dict[CoreConfig, Cache] = {}
_cores_lock = threading.Lock()
_generation = 0


def close_shared_cores() -> None:
    """Close the cores of every ``CachePlugCache`` in this process (pending invalidations are
    applied, connections released); the next use builds them again, empty for the embedded
    store. For shutdown hooks and tests; Django's per-request ``close()`` does not do this."""
    global _generation
    with _cores_lock:
        cores = list(_cores.values())
        _cores.clear()
        _generation += 1
    for core in cores:
        core.close()


def current_generation() -> int:
    """How many times :func:`close_shared_cores` has run: a backend whose core is of an
    older generation builds its view again."""
    return _generation


def shared_core(config: CoreConfig) -> tuple[Cache, int]:
    with _cores_lock:
        core = _cores.get(config)
        if core is None:
            core = _cores[config] = _build_core(config)
        return core, _generation


def _build_core(config: CoreConfig) -> Cache:
    store: Store
    try:
        if config.location:
            store = store_from_url(config.location)
        else:
            store = MemoryStore(
                10_000 if config.max_entries is None else config.max_entries,
                clock=time_module.monotonic if config.clock is None else config.clock.monotonic,
            )
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"CachePlugCache LOCATION/OPTIONS: {exc}") from exc
    if store.shared and config.secret is None:
        store.close()
        raise ImproperlyConfigured(
            "CachePlugCache on a shared store signs its pickles: set SECRET_KEY or "
            "OPTIONS['SECRET'] (pickles nobody signed are never loaded)"
        )
    try:
        return Cache(
            store,
            namespace=config.namespace,
            default_ttl=None,  # every call passes Django's timeout
            secret=config.secret,
            secret_fallbacks=config.secret_fallbacks,
            serializer="pickle",  # Django caches any picklable value, not JSON data
            strict=config.strict,
            lock_timeout=config.lock_timeout,
            max_value_bytes=config.max_value_bytes,
            compress_min_bytes=config.compress_min_bytes,
            compression=config.compression,
            l1=config.l1,
            clock=config.clock,
        )
    except (ConfigurationError, TypeError, ValueError) as exc:
        store.close()
        raise ImproperlyConfigured(f"CachePlugCache OPTIONS: {exc}") from exc


def prefix_namespace(key_prefix: str) -> tuple[str, str]:
    """The nested namespace names tried for ``KEY_PREFIX``: a readable one, then a hashed one.

    The two forms start with different letters, so no two prefixes can share a namespace."""
    digest = hashlib.blake2b(key_prefix.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    readable = f"p{key_prefix}" if _READABLE_PREFIX.match(key_prefix) else ""
    return readable, f"h{digest}"


def private(value: Any) -> Any:
    """A copy of ``value`` nobody else holds.

    Django's backends hand out a fresh unpickled object on every read, and their callers
    rely on it (a session or a cached response is changed in place); L1 hits and shared
    ``get_or_set`` loads hand out one object to many callers, so those get a copy."""
    if type(value) in _IMMUTABLE:
        return value
    return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


@contextmanager
def pickle_errors() -> Iterator[None]:
    """Let an unpicklable value raise what ``pickle`` raised, as Django's backends do (the
    core wraps it in a ``TypeError``)."""
    try:
        yield
    except TypeError as exc:
        cause = exc.__cause__
        if str(exc).startswith("cannot pickle ") and isinstance(
            cause, pickle.PicklingError | AttributeError
        ):
            raise cause from None
        raise


def read_through(core: Cache, made: str) -> Any:
    """``made``'s value as the store has it (``get_many`` skips L1, whose copy may be
    behind another process's write)."""
    return core.get_many([made]).get(made, MISSING)


def by_made_key(made: Mapping[str, Any], data: Mapping[Any, Any]) -> dict[str, Any]:
    """``data`` (by the caller's keys) by the keys Django made of them (``made``: made key ->
    the caller's)."""
    return {made_key: data[key] for made_key, key in made.items()}


def core_config(location: str, options: Mapping[str, Any]) -> CoreConfig:
    """The core ``LOCATION`` and (checked) ``OPTIONS`` describe: the options every adapter's
    settings share, by the same rules (:func:`cacheplug.integration.cache_options`), with
    this backend's namespace; read at first use, when ``SECRET_KEY`` is final."""
    # Nothing outside this process can write the embedded store: nothing to sign, unless
    # OPTIONS['SECRET'] says so.
    shared = bool(location) and not location.startswith("memory://")
    common = cache_options(
        {"NAMESPACE": DEFAULT_NAMESPACE}
        | {name: value for name, value in options.items() if name in SETTING_DEFAULTS},
        secret_key=setting("SECRET_KEY") if shared else None,
        secret_key_fallbacks=setting("SECRET_KEY_FALLBACKS") if shared else None,
    )
    max_entries = options.get("MAX_ENTRIES")
    compress = options.get("COMPRESS_MIN_BYTES")
    return CoreConfig(
        location=location,
        namespace=str(common["namespace"]),
        secret=common["secret"],
        secret_fallbacks=common["secret_fallbacks"],
        l1=common["l1"],
        strict=bool(common["strict"]),
        lock_timeout=float(common["lock_timeout"]),
        max_value_bytes=int(options.get("MAX_VALUE_BYTES", 1024 * 1024)),
        compress_min_bytes=None if compress is None else int(compress),
        compression=common["compression"],
        max_entries=None if max_entries is None else int(max_entries),
        clock=options.get("CLOCK"),
    )


def local_tier(raw: Any) -> LocalTier | None:
    """``OPTIONS['L1']``, by the rules of every adapter's ``L1`` setting."""
    try:
        return _local_tier(raw)
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"CachePlugCache OPTIONS['L1'] is not valid: {exc}") from exc


def setting(name: str) -> Any:
    """A setting, ``None`` when unset or empty (Django refuses to read an empty
    ``SECRET_KEY``)."""
    try:
        return getattr(settings, name, None)
    except ImproperlyConfigured:
        return None
