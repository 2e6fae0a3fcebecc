"""The ``Cache`` facade: one object per configured cache, sync and async.

The sync methods live here, the async twins in ``_async_api``; both leave every decision to
``CacheCore`` and differ only in how they do I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from cacheplug._async_api import AsyncCacheAPI, _check_delta
from cacheplug._config import CacheOptions
from cacheplug._io import FAILED
from cacheplug._locks import Lock
from cacheplug._stampede import XFetch
from cacheplug._types import DEFAULT, MISSING, DefaultType, Ttl
from cacheplug.stores import store_from_url

if TYPE_CHECKING:
    from cacheplug._decorators import CacheDecorator, KeySpec

T = TypeVar("T")


class Cache(AsyncCacheAPI):
    """A cache over one store.

    ``Cache()`` keeps values in this process (:class:`MemoryStore`); ``Cache("redis://...")``
    or ``Cache(RedisStore(...))`` shares them through Redis.

    Options (each with its default):

    - ``namespace="default"``: keeps this cache's keys apart from other caches on the store.
    - ``default_ttl=300.0``: seconds, for calls that pass no ``ttl``; ``None`` = no expiry.
    - ``stale_ttl=0.0``: seconds an expired entry may still be served while one caller
      refreshes it in the background (stale-while-revalidate); 0 = off.
    - ``early=None``: an :class:`XFetch` for probabilistic early recomputation.
    - ``refresh_ahead=None``: a fraction of the ttl (e.g. 0.8) after which a hit triggers a
      background refresh.
    - ``lock_timeout=10.0``: seconds a loader may hold a key's lease; a crashed loader's
      lease expires after this.
    - ``wait_timeout=None``: seconds a caller waits for another's load before loading
      itself (without storing); ``None`` = ``lock_timeout``.
    - ``secret=None``: signs entries (keyed BLAKE2b) and enables pickle on shared stores.
      ``secret_fallbacks=()``: older secrets still accepted while entries age out.
    - ``serializer="auto"``: pickle when entries are signed or the store is in-process,
      data-only JSON otherwise; or ``"pickle"``, ``"json"``, ``"unsafe-pickle"``, or an object.
    - ``compress_min_bytes=None``: zlib-compress payloads at least this large.
    - ``max_value_bytes=1048576``: larger entries are not cached (and never half-written).
    - ``strict=False``: explicit ``get``/``set``/... raise :class:`CacheUnavailable` instead of
      failing open. ``get_or_load`` and ``cached`` always fail open.
    - ``background_workers=4``: threads for background refreshes.
    - ``breaker=None``: a :class:`CircuitBreaker` (default: 3 failures, 2 s open).
    - ``clock=None``: a :class:`~cacheplug.testing.FakeClock` in tests.
    """

    @classmethod
    def from_url(cls, url: str, /, **options: Unpack[CacheOptions]) -> Cache:
        """The cache for a store URL: ``memory://``, ``redis://``, ``rediss://``, ``unix://``."""
        return cls(store_from_url(url), **options)

    def get(self, key: str, default: Any = None) -> Any:
        """The cached value of ``key``, or ``default``. A cached ``None`` is a hit."""
        skey = self._keys.data(key)
        value = self._hit(skey, self._read(skey, self.strict))
        return default if value is MISSING else value

    def get_or_load(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: Ttl = DEFAULT,
        *,
        stale_ttl: float | DefaultType = DEFAULT,
        early: XFetch | DefaultType | None = DEFAULT,
        refresh_ahead: float | DefaultType | None = DEFAULT,
    ) -> T:
        """The cached value of ``key``; on a miss, ``loader()``'s result, cached for ``ttl``.

        Protected against stampedes: concurrent callers in this process share one loader
        call, and across processes only the holder of the key's lease loads while the others
        wait for its result. ``stale_ttl``, ``early`` and ``refresh_ahead`` override the
        cache's defaults for this call. Never raises because of the store: when it is down,
        ``loader()`` is called. Exceptions from ``loader`` propagate and nothing is cached.
        """
        skey = self._keys.data(key)
        raw = self._read(skey, False)
        options = (ttl, stale_ttl, early, refresh_ahead)
        value = self._answer(skey, raw, loader, options, self._refresh_soon)
        if value is not MISSING:
            return value  # type: ignore[no-any-return]
        policy = self._read_policy(*options)
        plan = self._fill_plan
        return self._flights.run(  # type: ignore[no-any-return]
            skey, lambda: self._run(plan(skey, policy, check_first=False), loader)
        )

    def set(self, key: str, value: Any, ttl: Ttl = DEFAULT) -> bool:
        """Cache ``value`` under ``key``; True when stored.

        A value over ``max_value_bytes`` is not stored and any older value is removed.
        """
        skey = self._keys.data(key)
        ttl_s = self._ttl(ttl)
        record = self._encode(skey, value, ttl_s, 0.0)
        if record is None:
            self._call("delete", self.strict, self._store.delete, skey)
            return False
        result = self._call(
            "set", self.strict, self._store.set, skey, record, self._store_ttl_ms(ttl_s)
        )
        return result is not FAILED

    def add(self, key: str, value: Any, ttl: Ttl = DEFAULT) -> bool:
        """Cache ``value`` only if ``key`` has no value yet; True when stored."""
        skey = self._keys.data(key)
        ttl_s = self._ttl(ttl)
        record = self._encode(skey, value, ttl_s, 0.0)
        if record is None:
            return False
        result = self._call(
            "add", self.strict, self._store.add, skey, record, self._store_ttl_ms(ttl_s)
        )
        return result is True

    def delete(self, key: str) -> bool:
        """Remove ``key``'s value; True when there was one.

        Its lease goes too, so a load that started before cannot store its (older) result,
        and callers arriving from now on never share a load that started before.
        """
        entries = self._invalidation([key])
        result = self._call("delete", self.strict, self._store.invalidate, entries)
        return result is not FAILED and result > 0

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` that are present, as ``{key: value}``."""
        keys = list(keys)
        skeys = self._keys.data_many(keys)
        raws = self._call("get_many", self.strict, self._store.get_many, skeys)
        if raws is FAILED:
            raws = [None] * len(keys)
        return self._collect(keys, skeys, raws)

    def set_many(self, mapping: Mapping[str, Any], ttl: Ttl = DEFAULT) -> list[str]:
        """Cache every value of ``mapping``; the keys that could not be stored."""
        items, too_large, ttl_s = self._encode_many(mapping, ttl)
        failed = list(too_large)
        if too_large:
            skeys = self._keys.data_many(too_large)
            self._call("delete_many", self.strict, self._store.delete_many, skeys)
        if items:
            pairs = [(skey, record) for _, skey, record in items]
            result = self._call(
                "set_many", self.strict, self._store.set_many, pairs, self._store_ttl_ms(ttl_s)
            )
            if result is FAILED:
                failed += [key for key, _, _ in items]
        return failed

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the values of ``keys`` (and their leases, as :meth:`delete`); how many
        there were."""
        entries = self._invalidation(list(keys))
        result = self._call("delete_many", self.strict, self._store.invalidate, entries)
        return 0 if result is FAILED else int(result)

    def incr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Atomically add ``delta`` to the integer under ``key`` and return the new value.

        A missing key starts at 0 and gets ``ttl`` (default: no expiry); an existing counter
        keeps its TTL. An integer cached with ``set`` becomes a counter; anything else raises
        :class:`NotACounter`. Store failures raise :class:`CacheUnavailable`: a counter cannot
        fail open. See ``docs/core.md`` for how counters are stored (signed on signed caches).
        """
        return int(self._run(self._counter_plan(key, delta, ttl)))

    def decr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """``incr(key, -delta)``."""
        _check_delta(delta)
        return self.incr(key, -delta, ttl=ttl)

    def lock(
        self,
        name: str,
        timeout: float = 30.0,
        *,
        blocking: bool = True,
        blocking_timeout: float | None = None,
    ) -> Lock:
        """A distributed lock for your own jobs: ``with cache.lock("report:daily"): ...``.

        ``timeout``: seconds the lock is held at most (a crashed holder's lock expires);
        extend it with ``lock.extend()``. ``blocking_timeout``: seconds to wait for it
        (``None``: as long as it takes). Release is token-checked: a lock that expired and was
        taken by someone else is never released by its former holder.
        """
        return Lock(self, name, timeout, blocking=blocking, blocking_timeout=blocking_timeout)

    def close(self) -> None:
        """Finish background refreshes and release the store's connections."""
        self._background.shutdown()
        self._store.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def cached(
        self,
        ttl: Ttl = DEFAULT,
        *,
        key: KeySpec | None = None,
        stale_ttl: float | DefaultType = DEFAULT,
        early: XFetch | DefaultType | None = DEFAULT,
        refresh_ahead: float | DefaultType | None = DEFAULT,
    ) -> CacheDecorator:
        """Cache a function's results (sync or async) under keys built from its arguments.

        ``key`` is a format string over the parameters (``"product:{product_id}"``), a
        callable taking the same arguments, or ``None`` for ``module.qualname`` plus the
        arguments. ``stale_ttl``, ``early`` and ``refresh_ahead`` are passed to
        :meth:`get_or_load`. The wrapped function gains ``invalidate(*args, **kwargs)`` (and
        ``ainvalidate`` for async functions) and ``key_for(*args, **kwargs)``.
        """
        from cacheplug._decorators import CacheDecorator, ReadOptions

        options = ReadOptions(stale_ttl=stale_ttl, early=early, refresh_ahead=refresh_ahead)
        self._read_policy(ttl, stale_ttl, early, refresh_ahead)  # validate now, not per call
        return CacheDecorator(self, ttl, key, options)
