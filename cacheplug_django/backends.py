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

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.exceptions import ImproperlyConfigured

from cacheplug import (
    Cache,
    CacheError,
    CacheUnavailable,
    ConfigurationError,
)
from cacheplug.integration import SETTING_DEFAULTS
from cacheplug_django._backend_cores import (
    DEFAULT_NAMESPACE,
    MISSING,
    OPTIONS,
    by_made_key,
    close_shared_cores,
    core_config,
    current_generation,
    local_tier,
    pickle_errors,
    prefix_namespace,
    private,
    read_through,
    shared_core,
)

__all__ = ["CachePlugCache", "close_shared_cores"]


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
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ImproperlyConfigured(
                f"CachePlugCache OPTIONS has unknown keys {unknown}; known: {sorted(OPTIONS)}"
            )
        self._options = options
        self._lock_timeout = float(options.get("LOCK_TIMEOUT", SETTING_DEFAULTS["LOCK_TIMEOUT"]))
        self._l1 = local_tier(options.get("L1"))
        self._namespace = str(options.get("NAMESPACE", DEFAULT_NAMESPACE))
        self._view: Cache | None = None
        self._view_generation = -1

    @property
    def core(self) -> Cache:
        """This backend's :class:`cacheplug.Cache` (a namespace view of the shared core):
        the whole cacheplug API (tags, ``get_or_load`` options, ``stats()``) on the same
        entries. Keys there are the ones Django makes: ``make_key(key, version)``."""
        view = self._view
        if view is None or self._view_generation != current_generation():
            core, generation = shared_core(core_config(self._location, self._options))
            view = self._namespace_view(core)
            self._view, self._view_generation = view, generation
        return view

    def _namespace_view(self, core: Cache) -> Cache:
        # A namespace per KEY_PREFIX lets clear() bump exactly this backend's keys, whatever
        # KEY_FUNCTION does with the prefix.
        readable, hashed = prefix_namespace(str(self.key_prefix))
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
        return value if self._l1 is None else private(value)

    def _made_keys(self, keys: Iterable[Any], version: int | None) -> dict[str, Any]:
        return {self.make_and_validate_key(key, version=version): key for key in keys}

    # -- sync API ------------------------------------------------------------------------------

    def get(self, key: Any, default: Any | None = None, version: int | None = None) -> Any:
        """The value cached under ``key``, or ``default``; a cached ``None`` is returned."""
        made = self.make_and_validate_key(key, version=version)
        value = self.core.get(made, MISSING)
        return default if value is MISSING else self._copy(value)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        """Cache ``value`` for ``timeout`` seconds (``None``: forever; ``<= 0``: remove)."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            self.core.delete(made)
            return
        with pickle_errors():
            self.core.set(made, value, seconds)

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Cache ``value`` unless ``key`` holds one already; True when it did not."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            return self.core.get(made, MISSING) is MISSING  # "added", and expired at once
        with pickle_errors():
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
            value = self.core.get(made, MISSING)
            if value is MISSING:
                return default() if callable(default) else default
            return self._copy(value)
        loader: Callable[[], Any] = default if callable(default) else lambda: default
        with pickle_errors():
            return private(self.core.get_or_load(made, loader, seconds))

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Give ``key`` a new ``timeout``; False if it holds no value."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        core = self.core
        try:
            with self._key_lock(made):
                value = read_through(core, made)
                if value is MISSING:
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
        made = self._made_keys(keys, version)
        found = self.core.get_many(made)
        return {made[key]: self._copy(value) for key, value in found.items()}

    def set_many(
        self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        """Cache every value of ``data``; the keys that could not be stored."""
        if not data:
            return []
        made = self._made_keys(data, version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            self.core.delete_many(made)
            return []
        with pickle_errors():
            failed = self.core.set_many(by_made_key(made, data), seconds)
        return [made[key] for key in failed]

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Remove the values of ``keys``."""
        made = [self.make_and_validate_key(key, version=version) for key in keys]
        if made:
            self.core.delete_many(made)

    def has_key(self, key: Any, version: int | None = None) -> bool:
        """True if ``key`` holds a value (``None`` included) that has not expired."""
        made = self.make_and_validate_key(key, version=version)
        return self.core.get(made, MISSING) is not MISSING

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Add ``delta`` to ``key``'s value and return the result; ``ValueError`` if ``key``
        holds none. Atomic across threads and processes (a per-key lock); the entry keeps its
        expiry. Raises :class:`cacheplug.CacheUnavailable` when the store is down."""
        made = self.make_and_validate_key(key, version=version)
        core = self.core
        with self._key_lock(made):
            value = read_through(core, made)
            if value is MISSING:
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
        value = await self.core.aget(made, MISSING)
        return default if value is MISSING else self._copy(value)

    async def aset(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        """Async :meth:`set`."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            await self.core.adelete(made)
            return
        with pickle_errors():
            await self.core.aset(made, value, seconds)

    async def aadd(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Async :meth:`add`."""
        made = self.make_and_validate_key(key, version=version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            return await self.core.aget(made, MISSING) is MISSING
        with pickle_errors():
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
            value = await self.core.aget(made, MISSING)
            if value is MISSING:
                return default() if callable(default) else default
            return self._copy(value)
        loader: Callable[[], Any] = default if callable(default) else lambda: default
        with pickle_errors():
            return private(await self.core.aget_or_load(made, loader, seconds))

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
        made = self._made_keys(keys, version)
        found = await self.core.aget_many(made)
        return {made[key]: self._copy(value) for key, value in found.items()}

    async def aset_many(
        self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        """Async :meth:`set_many`."""
        if not data:
            return []
        made = self._made_keys(data, version)
        seconds = self._seconds(timeout)
        if seconds is not None and seconds <= 0:
            await self.core.adelete_many(made)
            return []
        with pickle_errors():
            failed = await self.core.aset_many(by_made_key(made, data), seconds)
        return [made[key] for key in failed]

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Async :meth:`delete_many`."""
        made = [self.make_and_validate_key(key, version=version) for key in keys]
        if made:
            await self.core.adelete_many(made)

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        """Async :meth:`has_key`."""
        made = self.make_and_validate_key(key, version=version)
        return await self.core.aget(made, MISSING) is not MISSING

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Async :meth:`incr` (run in a thread: the core has no async expiry read)."""
        return await sync_to_async(self.incr, thread_sensitive=True)(key, delta, version)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await self.core.abump()

    async def aclose(self, **kwargs: Any) -> None:
        """Nothing to do (see :meth:`close`)."""
