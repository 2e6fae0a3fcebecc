"""``CachePlugCache``: cacheplug as a Django ``CACHES`` backend.

::

    CACHES = {
        "default": {
            "BACKEND": "cacheplug_django.backends.CachePlugCache",
            "LOCATION": "redis://127.0.0.1:6379/0",  # "" or absent: the embedded store
            "TIMEOUT": 300,
            "OPTIONS": {"NAMESPACE": "django-cache", "L1": {"MAX_ENTRIES": 10_000}},
        }
    }

Everything that uses Django's cache API (sessions on the cache backend, ``cache_page``, the
``{% cache %}`` tag, your own ``cache.get``/``cache.set``) then gets cacheplug's in-process L1
tier, stampede-safe ``get_or_set``, signed pickles on Redis, and a ``clear()`` that only
forgets this backend's own keys. The backend follows Django's cache API exactly; what it does
differently from Django's ``RedisCache``, and why, is in ``docs/django-backend.md``.

``OPTIONS`` (each optional):

- ``NAMESPACE``: ``"django-cache"``; backends with different namespaces never see (or clear)
  each other's keys. Each ``KEY_PREFIX`` gets a namespace of its own inside it as well.
- ``SECRET``: signs entries on a shared store (default ``SECRET_KEY``, with
  ``SECRET_KEY_FALLBACKS`` as fallbacks); ``SECRET_FALLBACKS``: older secrets still accepted.
- ``L1``: ``None`` or a dict of ``MAX_ENTRIES``, ``MAX_BYTES``, ``TTL``, ``ADMISSION`` (see
  :class:`cacheplug.LocalTier`): keep hot values in each process too.
- ``STRICT``: ``False``; ``True`` makes ``get``/``set``/... raise
  :class:`cacheplug.CacheUnavailable` when the store is down instead of failing open.
- ``LOCK_TIMEOUT``: ``10`` seconds (stampede leases; the per-key lock of ``incr``/``touch``).
- ``MAX_VALUE_BYTES``: ``1048576``; larger values are not cached. ``COMPRESS_MIN_BYTES``:
  ``None``; zlib-compress values at least this large.
- ``MAX_ENTRIES``: bound of the embedded store (default 10 000); ignored on Redis.
- ``CLOCK``: a :class:`cacheplug.testing.FakeClock`, for tests.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import threading
import time as time_module
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.exceptions import ImproperlyConfigured
from django.utils.safestring import SafeString

from cacheplug import (
    Cache,
    CacheError,
    CacheUnavailable,
    Clock,
    ConfigurationError,
    LocalTier,
    MemoryStore,
    Store,
    store_from_url,
)

__all__ = ["CachePlugCache", "close_shared_cores"]

DEFAULT_NAMESPACE: Final = "django-cache"
_OPTIONS: Final = frozenset(
    {
        "NAMESPACE",
        "SECRET",
        "SECRET_FALLBACKS",
        "L1",
        "STRICT",
        "LOCK_TIMEOUT",
        "MAX_VALUE_BYTES",
        "COMPRESS_MIN_BYTES",
        "MAX_ENTRIES",
        "CULL_FREQUENCY",  # read (and ignored) by BaseCache: accepted like Django does
        "CLOCK",
    }
)
_L1_OPTIONS: Final = {
    "MAX_ENTRIES": "max_entries",
    "MAX_BYTES": "max_bytes",
    "TTL": "ttl",
    "ADMISSION": "admission",
}
_READABLE_PREFIX: Final = re.compile(r"[A-Za-z0-9_-]*\Z")
_MISSING: Final[Any] = object()

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
class _CoreConfig:
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
    max_entries: int | None
    clock: Clock | None


# Django builds one backend object per thread (and again after ``CACHES`` changes), and closes
# them after every request. The core (its embedded store, L1 tier, connection pools,
# single-flight table and bus subscription) must outlive all that and be shared, or threads
# would not see each other's embedded entries, nor share loads and L1 hits.
_cores: dict[_CoreConfig, Cache] = {}
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


def _shared_core(config: _CoreConfig) -> tuple[Cache, int]:
    with _cores_lock:
        core = _cores.get(config)
        if core is None:
            core = _cores[config] = _build_core(config)
        return core, _generation


def _build_core(config: _CoreConfig) -> Cache:
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
            l1=config.l1,
            clock=config.clock,
        )
    except (ConfigurationError, TypeError, ValueError) as exc:
        store.close()
        raise ImproperlyConfigured(f"CachePlugCache OPTIONS: {exc}") from exc


def _prefix_namespace(key_prefix: str) -> tuple[str, str]:
    """The nested namespace names tried for ``KEY_PREFIX``: a readable one, then a hashed one.

    The two forms start with different letters, so no two prefixes can share a namespace."""
    digest = hashlib.blake2b(key_prefix.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    readable = f"p{key_prefix}" if _READABLE_PREFIX.match(key_prefix) else ""
    return readable, f"h{digest}"


def _private(value: Any) -> Any:
    """A copy of ``value`` nobody else holds.

    Django's backends hand out a fresh unpickled object on every read, and their callers
    rely on it (a session or a cached response is changed in place); L1 hits and shared
    ``get_or_set`` loads hand out one object to many callers, so those get a copy."""
    if type(value) in _IMMUTABLE:
        return value
    return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


@contextmanager
def _pickle_errors() -> Iterator[None]:
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


class CachePlugCache(BaseCache):
    """A Django cache backend over a :class:`cacheplug.Cache` (Redis or embedded).

    Built by Django as ``CachePlugCache(location, params)``; the core is built on first use
    and shared by every backend object with the same ``LOCATION`` and ``OPTIONS``.
    """

    def __init__(
        self, location: str | list[str] | tuple[str, ...] | None, params: dict[str, Any]
    ) -> None:
        super().__init__(params)
        if isinstance(location, list | tuple):
            if len(location) != 1:
                raise ImproperlyConfigured(
                    "CachePlugCache takes one LOCATION URL (for replicas or failover use "
                    "redis+sentinel://...; for a cluster, redis+cluster://...)"
                )
            location = location[0]
        self._location = location or ""
        options = dict(params.get("OPTIONS") or {})
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ImproperlyConfigured(
                f"CachePlugCache OPTIONS has unknown keys {unknown}; known: {sorted(_OPTIONS)}"
            )
        self._options = options
        self._lock_timeout = float(options.get("LOCK_TIMEOUT", 10.0))
        self._l1 = _local_tier(options.get("L1"))
        self._namespace = str(options.get("NAMESPACE", DEFAULT_NAMESPACE))
        self._view: Cache | None = None
        self._view_generation = -1

    @property
    def core(self) -> Cache:
        """This backend's :class:`cacheplug.Cache` (a namespace view of the shared core):
        the whole cacheplug API (tags, ``get_or_load`` options, ``stats()``) on the same
        entries. Keys there are the ones Django makes: ``make_key(key, version)``."""
        view = self._view
        if view is None or self._view_generation != _generation:
            core, generation = _shared_core(self._config())
            view = self._namespace_view(core)
            self._view, self._view_generation = view, generation
        return view

    def _config(self) -> _CoreConfig:
        options = self._options
        if "SECRET" in options:
            secret = options["SECRET"] or None
            fallbacks = tuple(options.get("SECRET_FALLBACKS", ()))
        elif self._location and not self._location.startswith("memory://"):
            secret = _setting("SECRET_KEY") or None
            fallbacks = tuple(
                options.get("SECRET_FALLBACKS", _setting("SECRET_KEY_FALLBACKS") or ())
            )
        else:
            # Nothing outside this process can write the embedded store: nothing to sign.
            secret, fallbacks = None, ()
        max_entries = options.get("MAX_ENTRIES")
        compress = options.get("COMPRESS_MIN_BYTES")
        return _CoreConfig(
            location=self._location,
            namespace=self._namespace,
            secret=secret,
            secret_fallbacks=fallbacks,
            l1=self._l1,
            strict=bool(options.get("STRICT", False)),
            lock_timeout=self._lock_timeout,
            max_value_bytes=int(options.get("MAX_VALUE_BYTES", 1024 * 1024)),
            compress_min_bytes=None if compress is None else int(compress),
            max_entries=None if max_entries is None else int(max_entries),
            clock=options.get("CLOCK"),
        )

    def _namespace_view(self, core: Cache) -> Cache:
        # A namespace per KEY_PREFIX lets clear() bump exactly this backend's keys, whatever
        # KEY_FUNCTION does with the prefix.
        readable, hashed = _prefix_namespace(str(self.key_prefix))
        for name in (readable, hashed):
            if name:
                try:
                    return core.namespace(name)
                except ConfigurationError:
                    continue  # too long with this NAMESPACE: the hashed name is shorter
        raise ImproperlyConfigured(
            f"CachePlugCache OPTIONS['NAMESPACE'] {self._namespace!r} is too long to hold a "
            "KEY_PREFIX namespace: use at most 17 characters"
        )

    def _seconds(self, timeout: Any) -> float | None:
        """Seconds to keep a value: ``None`` forever, ``<= 0`` not at all (Django's rules)."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else float(timeout)

    def _copy(self, value: Any) -> Any:
        return value if self._l1 is None else _private(value)

    # -- sync API ------------------------------------------------------------------------------

    def get(self, key: Any, default: Any | None = None, version: int | None = None) -> Any:
        """The value cached under ``key``, or ``default``; a cached ``None`` is returned."""
        made = self.make_and_validate_key(key, version=version)
        value = self.core.get(made, _MISSING)
        return default if value is _MISSING else self._copy(value)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        """Cache ``value`` for ``timeout`` seconds (``None``: forever; ``<= 0``: remove)."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            self.core.delete(made)
            return
        with _pickle_errors():
            self.core.set(made, value, seconds)

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Cache ``value`` unless ``key`` holds one already; True when it did not."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            return self.core.get(made, _MISSING) is _MISSING  # "added", and expired at once
        with _pickle_errors():
            return self.core.add(made, value, seconds)

    def get_or_set(
        self,
        key: Any,
        default: Any | None,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> Any | None:
        """The value under ``key``; on a miss, ``default`` (called if callable), cached.

        Concurrent misses of one key share one call of ``default``: within this process,
        and on Redis across processes (cacheplug's stampede lease)."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            value = self.core.get(made, _MISSING)
            if value is _MISSING:
                return default() if callable(default) else default
            return self._copy(value)
        loader: Callable[[], Any] = default if callable(default) else lambda: default
        with _pickle_errors():
            return _private(self.core.get_or_load(made, loader, seconds))

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Give ``key`` a new ``timeout``; False if it holds no value."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        core = self.core
        try:
            with self._key_lock(made):
                value = _read_through(core, made)
                if value is _MISSING:
                    return False
                if seconds is not None and seconds <= 0:
                    core.delete(made)
                    return True
                return core.set(made, value, seconds)
        except CacheUnavailable:
            if core.strict:
                raise
            return False

    def delete(self, key: Any, version: int | None = None) -> bool:
        """Remove ``key``'s value; True when there was one."""
        return self.core.delete(self.make_and_validate_key(key, version=version))

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """``{key: value}`` for the ``keys`` that hold a value."""
        made = {self.make_and_validate_key(key, version=version): key for key in keys}
        found = self.core.get_many(made)
        return {made[key]: self._copy(value) for key, value in found.items()}

    def set_many(
        self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        """Cache every value of ``data``; the keys that could not be stored."""
        if not data:
            return []
        made = {self.make_and_validate_key(key, version=version): key for key in data}
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            self.core.delete_many(made)
            return []
        with _pickle_errors():
            failed = self.core.set_many(
                {made_key: data[key] for made_key, key in made.items()}, seconds
            )
        return [made[key] for key in failed]

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Remove the values of ``keys``."""
        made = [self.make_and_validate_key(key, version=version) for key in keys]
        if made:
            self.core.delete_many(made)

    def has_key(self, key: Any, version: int | None = None) -> bool:
        """True if ``key`` holds a value (``None`` included) that has not expired."""
        made = self.make_and_validate_key(key, version=version)
        return self.core.get(made, _MISSING) is not _MISSING

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Add ``delta`` to ``key``'s value and return the result; ``ValueError`` if ``key``
        holds none. Atomic across threads and processes (a per-key lock); the entry keeps its
        expiry. Raises :class:`cacheplug.CacheUnavailable` when the store is down."""
        made = self.make_and_validate_key(key, version=version)
        core = self.core
        with self._key_lock(made):
            value = _read_through(core, made)
            if value is _MISSING:
                raise ValueError(f"Key '{key}' not found")
            new_value = value + delta
            remaining_ms = core.store.ttl_ms(core.store_key(made))
            if remaining_ms is not None and remaining_ms <= 0:  # expired while we read it
                raise ValueError(f"Key '{key}' not found")
            seconds = None if remaining_ms is None else remaining_ms / 1000
            if not core.set(made, new_value, seconds):
                raise CacheUnavailable(f"the new value of {key!r} could not be stored")
        return new_value  # type: ignore[no-any-return]

    def clear(self) -> None:
        """Forget every value of this backend (all versions): its namespace moves on, in one
        step. Other prefixes, namespaces and whatever else is on the Redis server stay."""
        self.core.bump()

    def close(self, **kwargs: Any) -> None:
        """Nothing to do: Django calls this after every request, and the shared core keeps
        its connections and L1 tier for the next one (see :func:`close_shared_cores`)."""

    @contextmanager
    def _key_lock(self, made: str) -> Iterator[None]:
        """Hold ``made``'s read-modify-write lock (``incr``, ``touch``)."""
        lock = self.core.lock(
            f"django-rmw:{made}", self._lock_timeout, blocking_timeout=self._lock_timeout
        )
        try:
            acquired = lock.acquire()
        except CacheError as exc:
            raise CacheUnavailable(f"could not lock {made!r}: {exc}") from exc
        if not acquired:
            raise CacheUnavailable(f"could not lock {made!r} within {self._lock_timeout} s")
        try:
            yield
        finally:
            # Failing to release means it expired or the store is gone: it lapses by itself.
            with suppress(CacheError):
                lock.release()

    # -- async API -----------------------------------------------------------------------------

    async def aget(self, key: Any, default: Any | None = None, version: int | None = None) -> Any:
        """Async :meth:`get`."""
        made = self.make_and_validate_key(key, version=version)
        value = await self.core.aget(made, _MISSING)
        return default if value is _MISSING else self._copy(value)

    async def aset(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        """Async :meth:`set`."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            await self.core.adelete(made)
            return
        with _pickle_errors():
            await self.core.aset(made, value, seconds)

    async def aadd(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Async :meth:`add`."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            return await self.core.aget(made, _MISSING) is _MISSING
        with _pickle_errors():
            return await self.core.aadd(made, value, seconds)

    async def aget_or_set(
        self,
        key: Any,
        default: Any | None,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> Any | None:
        """Async :meth:`get_or_set`; ``default`` may also be a coroutine function."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            value = await self.core.aget(made, _MISSING)
            if value is _MISSING:
                return default() if callable(default) else default
            return self._copy(value)
        loader: Callable[[], Any] = default if callable(default) else lambda: default
        with _pickle_errors():
            return _private(await self.core.aget_or_load(made, loader, seconds))

    async def atouch(
        self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Async :meth:`touch` (run in a thread: the core has no async expiry read)."""
        return await sync_to_async(self.touch, thread_sensitive=True)(key, timeout, version)

    async def adelete(self, key: Any, version: int | None = None) -> bool:
        """Async :meth:`delete`."""
        return await self.core.adelete(self.make_and_validate_key(key, version=version))

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """Async :meth:`get_many`."""
        made = {self.make_and_validate_key(key, version=version): key for key in keys}
        found = await self.core.aget_many(made)
        return {made[key]: self._copy(value) for key, value in found.items()}

    async def aset_many(
        self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        """Async :meth:`set_many`."""
        if not data:
            return []
        made = {self.make_and_validate_key(key, version=version): key for key in data}
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            await self.core.adelete_many(made)
            return []
        with _pickle_errors():
            failed = await self.core.aset_many(
                {made_key: data[key] for made_key, key in made.items()}, seconds
            )
        return [made[key] for key in failed]

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Async :meth:`delete_many`."""
        made = [self.make_and_validate_key(key, version=version) for key in keys]
        if made:
            await self.core.adelete_many(made)

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        """Async :meth:`has_key`."""
        made = self.make_and_validate_key(key, version=version)
        return await self.core.aget(made, _MISSING) is not _MISSING

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Async :meth:`incr` (run in a thread: the core has no async expiry read)."""
        return await sync_to_async(self.incr, thread_sensitive=True)(key, delta, version)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await self.core.abump()

    async def aclose(self, **kwargs: Any) -> None:
        """Nothing to do (see :meth:`close`)."""


def _read_through(core: Cache, made: str) -> Any:
    """``made``'s value as the store has it (``get_many`` skips L1, whose copy may be
    behind another process's write)."""
    return core.get_many([made]).get(made, _MISSING)


def _local_tier(raw: Any) -> LocalTier | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ImproperlyConfigured(
            "CachePlugCache OPTIONS['L1'] must be a dict, e.g. {'MAX_ENTRIES': 10000}"
        )
    unknown = sorted(set(raw) - set(_L1_OPTIONS))
    if unknown:
        raise ImproperlyConfigured(
            f"CachePlugCache OPTIONS['L1'] has unknown keys {unknown}; known: {sorted(_L1_OPTIONS)}"
        )
    try:
        return LocalTier(**{_L1_OPTIONS[name]: value for name, value in raw.items()})
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"CachePlugCache OPTIONS['L1'] is not valid: {exc}") from exc


def _setting(name: str) -> Any:
    """A setting, ``None`` when unset or empty (Django refuses to read an empty
    ``SECRET_KEY``)."""
    try:
        return getattr(settings, name, None)
    except ImproperlyConfigured:
        return None
