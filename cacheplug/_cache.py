"""The ``Cache`` facade: one object per configured cache, sync and async.

The sync and async methods share every policy decision (key building, TTLs, encoding and
decoding, what a failure means); only the store I/O differs between them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from cacheplug._clock import SYSTEM_CLOCK, Clock
from cacheplug._codec import EntryCodec
from cacheplug._config import (
    CacheOptions,
    SerializerName,
    choose_serializer,
    ttl_ms,
    ttl_seconds,
)
from cacheplug._envelope import NEVER
from cacheplug._exceptions import CacheUnavailable, NotACounter
from cacheplug._keys import KeyBuilder
from cacheplug._metrics import CacheStats, Counters
from cacheplug._resilience import BurstLogger, CircuitBreaker
from cacheplug._serializers import Serializer
from cacheplug._signing import Signer
from cacheplug._types import DEFAULT, MISSING, Ttl
from cacheplug.stores import store_from_url
from cacheplug.stores.base import Store
from cacheplug.stores.memory import MemoryStore

if TYPE_CHECKING:
    from cacheplug._decorators import CacheDecorator, KeySpec

T = TypeVar("T")

_FAILED: Any = object()  # a store call that failed or was refused by the breaker
_COUNTER_RETRIES = 3


class Cache:
    """A cache over one store.

    ``Cache()`` keeps values in this process (:class:`MemoryStore`); ``Cache("redis://...")``
    or ``Cache(RedisStore(...))`` shares them through Redis.

    Options (each with its default):

    - ``namespace="default"``: keeps this cache's keys apart from other caches on the store.
    - ``default_ttl=300.0``: seconds, for calls that pass no ``ttl``; ``None`` = no expiry.
    - ``secret=None``: signs entries with HMAC-SHA256 and enables pickle on shared stores.
      ``secret_fallbacks=()``: older secrets still accepted while entries age out.
    - ``serializer="auto"``: pickle when entries are signed or the store is in-process,
      data-only JSON otherwise; or ``"pickle"``, ``"json"``, ``"unsafe-pickle"``, or an object.
    - ``compress_min_bytes=None``: zlib-compress payloads at least this large.
    - ``max_value_bytes=1048576``: larger entries are not cached (and never half-written).
    - ``strict=False``: explicit ``get``/``set``/... raise :class:`CacheUnavailable` instead of
      failing open. ``get_or_load`` and ``cached`` always fail open.
    - ``breaker=None``: a :class:`CircuitBreaker` (default: 3 failures, 2 s open).
    - ``clock=None``: a :class:`~cacheplug.testing.FakeClock` in tests.
    """

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        namespace: str = "default",
        default_ttl: float | None = 300.0,
        secret: str | bytes | None = None,
        secret_fallbacks: Sequence[str | bytes] = (),
        serializer: SerializerName | Serializer = "auto",
        compress_min_bytes: int | None = None,
        max_value_bytes: int = 1024 * 1024,
        strict: bool = False,
        breaker: CircuitBreaker | None = None,
        clock: Clock | None = None,
    ) -> None:
        if store is None:
            store = MemoryStore()
        elif isinstance(store, str):
            store = store_from_url(store)
        elif not isinstance(store, Store):
            raise TypeError(f"store must be a Store or a URL string, not {type(store).__name__}")
        self._store = store
        self._keys = KeyBuilder(namespace)
        self._clock = clock or SYSTEM_CLOCK
        self.default_ttl = ttl_seconds(default_ttl, None)
        self.strict = strict
        signer = Signer(secret, secret_fallbacks) if secret is not None else None
        self._codec = EntryCodec(
            choose_serializer(serializer, store, signer),
            signer,
            compress_min_bytes=compress_min_bytes,
            max_value_bytes=max_value_bytes,
        )
        self._breaker = breaker or CircuitBreaker(clock=self._clock.monotonic)
        self._counters = Counters()
        self._error_log = BurstLogger(clock=self._clock.monotonic)
        self._oversize_log = BurstLogger(clock=self._clock.monotonic)
        self._now = time.time if clock is None else clock.time

    @classmethod
    def from_url(cls, url: str, /, **options: Unpack[CacheOptions]) -> Cache:
        """The cache for a store URL: ``memory://``, ``redis://``, ``rediss://``, ``unix://``."""
        return cls(store_from_url(url), **options)

    def __repr__(self) -> str:
        return f"<Cache namespace={self.namespace!r} store={self._store!r}>"

    @property
    def namespace(self) -> str:
        """The namespace this cache's keys live in."""
        return self._keys.namespace

    @property
    def store(self) -> Store:
        """The store underneath (for inspection; policies do not apply to direct use)."""
        return self._store

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker guarding the store."""
        return self._breaker

    def store_key(self, key: str) -> str:
        """The key under which ``key``'s value is kept in the store."""
        return self._keys.data(key)

    def stats(self) -> CacheStats:
        """A snapshot of this cache's counters."""
        return self._counters.snapshot()

    def reset_stats(self) -> None:
        """Set every counter back to zero."""
        self._counters.reset()

    # -- shared policy -----------------------------------------------------------------------

    def _ttl(self, ttl: Ttl) -> float | None:
        return ttl_seconds(ttl, self.default_ttl)

    def _encode(
        self, skey: str, value: Any, ttl: float | None, compute_time: float
    ) -> bytes | None:
        now = self._now()
        record = self._codec.encode(
            skey,
            value,
            created_at=now,
            fresh_until=NEVER if ttl is None else now + ttl,
            compute_time=compute_time,
        )
        if record is None:
            self._counters.oversize += 1
            self._oversize_log.warning(
                f"cacheplug: a {type(value).__name__} value for {skey!r} is larger than "
                f"max_value_bytes={self._codec.max_value_bytes} and was not cached"
            )
        else:
            self._counters.bytes_written += len(record)
        return record

    def _hit(self, skey: str, raw: bytes | None) -> Any:
        """The value in ``raw`` if it is a usable, fresh entry (counted), else ``MISSING``."""
        counters = self._counters
        if raw is not None:
            counters.bytes_read += len(raw)
            entry = self._codec.decode(skey, raw)
            if entry is None:
                self._discarded(skey)
            elif entry[2] >= self._now():  # fresh_until
                counters.hits += 1
                return entry[0]
        counters.misses += 1
        return MISSING

    def _discarded(self, skey: str) -> None:
        self._counters.discarded += 1
        self._error_log.warning(
            f"cacheplug: discarded the entry under {skey!r}: bad signature, unknown format "
            "or undecodable payload (if the secret was rotated, list the old one in "
            "secret_fallbacks)"
        )

    def _refused(self, operation: str, strict: bool) -> Any:
        if strict:
            raise CacheUnavailable(
                f"{operation} not attempted: the circuit breaker is open after repeated "
                "store failures; it lets a probe through after "
                f"{self._breaker.reset_timeout} s"
            )
        return _FAILED

    def _failed(self, exc: CacheUnavailable, operation: str, strict: bool) -> Any:
        self._counters.errors += 1
        self._breaker.record_failure()
        self._error_log.warning(
            f"cacheplug: {operation} failed on {self._store!r}; falling through", exc
        )
        if strict:
            raise exc
        return _FAILED

    # -- sync I/O ----------------------------------------------------------------------------

    def _call(self, operation: str, strict: bool, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` under the failure policy: ``_FAILED`` (or a raise, if ``strict``)
        when the breaker refuses or the store fails."""
        breaker = self._breaker
        if breaker.tripped and not breaker.allow():
            return self._refused(operation, strict)
        try:
            result = fn(*args)
        except CacheUnavailable as exc:
            return self._failed(exc, operation, strict)
        if breaker.tripped:
            breaker.record_success()
        return result

    def _read(self, skey: str, strict: bool) -> bytes | None:
        # The hot path: while the breaker has seen no failure, one flag check and the GET.
        if self._breaker.tripped:
            raw = self._call("get", strict, self._store.get, skey)
            return None if raw is _FAILED else raw
        try:
            return self._store.get(skey)
        except CacheUnavailable as exc:
            self._failed(exc, "get", strict)
            return None

    def _load(self, skey: str, loader: Callable[[], T], ttl: Ttl) -> T:
        ttl_s = self._ttl(ttl)
        started = time.perf_counter()
        value = loader()
        self._counters.loads += 1
        record = self._encode(skey, value, ttl_s, time.perf_counter() - started)
        if record is not None:
            self._call("set", False, self._store.set, skey, record, ttl_ms(ttl_s))
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """The cached value of ``key``, or ``default``. A cached ``None`` is a hit."""
        skey = self._keys.data(key)
        value = self._hit(skey, self._read(skey, self.strict))
        return default if value is MISSING else value

    def get_or_load(self, key: str, loader: Callable[[], T], ttl: Ttl = DEFAULT) -> T:
        """The cached value of ``key``; on a miss, ``loader()``'s result, cached for ``ttl``.

        Never raises because of the store: when it is down, ``loader()`` is called.
        Exceptions from ``loader`` propagate and nothing is cached.
        """
        skey = self._keys.data(key)
        value = self._hit(skey, self._read(skey, False))
        if value is MISSING:
            return self._load(skey, loader, ttl)
        return value  # type: ignore[no-any-return]

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
        result = self._call("set", self.strict, self._store.set, skey, record, ttl_ms(ttl_s))
        return result is not _FAILED

    def add(self, key: str, value: Any, ttl: Ttl = DEFAULT) -> bool:
        """Cache ``value`` only if ``key`` has no value yet; True when stored."""
        skey = self._keys.data(key)
        ttl_s = self._ttl(ttl)
        record = self._encode(skey, value, ttl_s, 0.0)
        if record is None:
            return False
        result = self._call("add", self.strict, self._store.add, skey, record, ttl_ms(ttl_s))
        return result is True

    def delete(self, key: str) -> bool:
        """Remove ``key``'s value; True when there was one."""
        result = self._call("delete", self.strict, self._store.delete, self._keys.data(key))
        return result is True

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` that are present, as ``{key: value}``."""
        keys = list(keys)
        skeys = self._keys.data_many(keys)
        raws = self._call("get_many", self.strict, self._store.get_many, skeys)
        if raws is _FAILED:
            raws = [None] * len(keys)
        return self._collect(keys, skeys, raws)

    def set_many(self, mapping: Mapping[str, Any], ttl: Ttl = DEFAULT) -> list[str]:
        """Cache every value of ``mapping``; the keys that could not be stored."""
        items, too_large, ttl_s = self._encode_many(mapping, ttl)
        failed = list(too_large)
        if too_large:
            self._call(
                "delete_many",
                self.strict,
                self._store.delete_many,
                [self._keys.data(k) for k in too_large],
            )
        if items:
            result = self._call(
                "set_many",
                self.strict,
                self._store.set_many,
                [(s, r) for _, s, r in items],
                ttl_ms(ttl_s),
            )
            if result is _FAILED:
                failed += [k for k, _, _ in items]
        return failed

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the values of ``keys``; how many there were."""
        skeys = [self._keys.data(k) for k in keys]
        result = self._call("delete_many", self.strict, self._store.delete_many, skeys)
        return 0 if result is _FAILED else result

    def incr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Atomically add ``delta`` to the integer under ``key`` and return the new value.

        A missing key starts at 0 and gets ``ttl`` (default: no expiry); an existing counter
        keeps its TTL. An integer cached with ``set`` becomes a counter. Counters are stored
        as plain integers (so the store can update them atomically) and are not signed.
        Store failures raise :class:`CacheUnavailable`: a counter cannot fail open.
        """
        skey = self._keys.data(key)
        ms = ttl_ms(ttl_seconds(ttl, None))
        self._check_delta(delta)
        for _ in range(_COUNTER_RETRIES):
            try:
                return int(self._call("incr", True, self._store.incr, skey, delta, ms))
            except NotACounter:
                raw = self._call("get", True, self._store.get, skey)
                converted = self._as_counter(key, skey, raw)
                if converted is not None:
                    self._call("incr", True, self._store.compare_and_swap, skey, raw, converted)
        raise CacheUnavailable(f"the value of {key!r} kept changing while being incremented")

    def decr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """``incr(key, -delta)``."""
        self._check_delta(delta)
        return self.incr(key, -delta, ttl=ttl)

    def close(self) -> None:
        """Release the store's connections."""
        self._store.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers shared by sync and async ----------------------------------------------------

    def _collect(
        self, keys: list[str], skeys: list[str], raws: list[bytes | None]
    ) -> dict[str, Any]:
        found, discarded, size = self._codec.decode_many(keys, skeys, raws, self._now())
        for skey in discarded:
            self._discarded(skey)
        counters = self._counters
        counters.bytes_read += size
        counters.hits += len(found)
        counters.misses += len(keys) - len(found)
        return found

    def _encode_many(
        self, mapping: Mapping[str, Any], ttl: Ttl
    ) -> tuple[list[tuple[str, str, bytes]], list[str], float | None]:
        ttl_s = self._ttl(ttl)
        items: list[tuple[str, str, bytes]] = []
        too_large: list[str] = []
        for key, value in mapping.items():
            skey = self._keys.data(key)
            record = self._encode(skey, value, ttl_s, 0.0)
            if record is None:
                too_large.append(key)
            else:
                items.append((key, skey, record))
        return items, too_large, ttl_s

    @staticmethod
    def _check_delta(delta: int) -> None:
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise TypeError(f"delta must be an int, not {type(delta).__name__}")

    def _as_counter(self, key: str, skey: str, raw: bytes | None) -> bytes | None:
        """The counter record replacing a cached integer ``raw``; None if ``raw`` vanished."""
        if raw is None:
            return None
        entry = self._codec.decode(skey, raw)
        if entry is None or type(entry.value) is not int:
            kind = "an undecodable" if entry is None else f"a {type(entry.value).__name__}"
            raise NotACounter(f"{key!r} holds {kind} value, not an integer counter")
        return str(entry.value).encode("ascii")

    # -- async I/O ---------------------------------------------------------------------------

    async def _acall(
        self, operation: str, strict: bool, fn: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any:
        breaker = self._breaker
        if breaker.tripped and not breaker.allow():
            return self._refused(operation, strict)
        try:
            result = await fn(*args)
        except CacheUnavailable as exc:
            return self._failed(exc, operation, strict)
        if breaker.tripped:
            breaker.record_success()
        return result

    async def _aread(self, skey: str, strict: bool) -> bytes | None:
        if self._breaker.tripped:
            raw = await self._acall("get", strict, self._store.aget, skey)
            return None if raw is _FAILED else raw
        try:
            return await self._store.aget(skey)
        except CacheUnavailable as exc:
            self._failed(exc, "get", strict)
            return None

    async def _aload(
        self, skey: str, loader: Callable[[], Awaitable[T]] | Callable[[], T], ttl: Ttl
    ) -> T:
        ttl_s = self._ttl(ttl)
        started = time.perf_counter()
        value = loader()
        if isawaitable(value):
            value = await value
        self._counters.loads += 1
        record = self._encode(skey, value, ttl_s, time.perf_counter() - started)
        if record is not None:
            await self._acall("set", False, self._store.aset, skey, record, ttl_ms(ttl_s))
        return value

    async def aget(self, key: str, default: Any = None) -> Any:
        """Async :meth:`get`."""
        skey = self._keys.data(key)
        value = self._hit(skey, await self._aread(skey, self.strict))
        return default if value is MISSING else value

    async def aget_or_load(
        self, key: str, loader: Callable[[], Awaitable[T]] | Callable[[], T], ttl: Ttl = DEFAULT
    ) -> T:
        """Async :meth:`get_or_load`; ``loader`` may be a coroutine function."""
        skey = self._keys.data(key)
        value = self._hit(skey, await self._aread(skey, False))
        if value is MISSING:
            return await self._aload(skey, loader, ttl)
        return value  # type: ignore[no-any-return]

    async def aset(self, key: str, value: Any, ttl: Ttl = DEFAULT) -> bool:
        """Async :meth:`set`."""
        skey = self._keys.data(key)
        ttl_s = self._ttl(ttl)
        record = self._encode(skey, value, ttl_s, 0.0)
        if record is None:
            await self._acall("delete", self.strict, self._store.adelete, skey)
            return False
        result = await self._acall(
            "set", self.strict, self._store.aset, skey, record, ttl_ms(ttl_s)
        )
        return result is not _FAILED

    async def aadd(self, key: str, value: Any, ttl: Ttl = DEFAULT) -> bool:
        """Async :meth:`add`."""
        skey = self._keys.data(key)
        ttl_s = self._ttl(ttl)
        record = self._encode(skey, value, ttl_s, 0.0)
        if record is None:
            return False
        result = await self._acall(
            "add", self.strict, self._store.aadd, skey, record, ttl_ms(ttl_s)
        )
        return result is True

    async def adelete(self, key: str) -> bool:
        """Async :meth:`delete`."""
        result = await self._acall("delete", self.strict, self._store.adelete, self._keys.data(key))
        return result is True

    async def aget_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Async :meth:`get_many`."""
        keys = list(keys)
        skeys = self._keys.data_many(keys)
        raws = await self._acall("get_many", self.strict, self._store.aget_many, skeys)
        if raws is _FAILED:
            raws = [None] * len(keys)
        return self._collect(keys, skeys, raws)

    async def aset_many(self, mapping: Mapping[str, Any], ttl: Ttl = DEFAULT) -> list[str]:
        """Async :meth:`set_many`."""
        items, too_large, ttl_s = self._encode_many(mapping, ttl)
        failed = list(too_large)
        if too_large:
            await self._acall(
                "delete_many",
                self.strict,
                self._store.adelete_many,
                [self._keys.data(k) for k in too_large],
            )
        if items:
            result = await self._acall(
                "set_many",
                self.strict,
                self._store.aset_many,
                [(s, r) for _, s, r in items],
                ttl_ms(ttl_s),
            )
            if result is _FAILED:
                failed += [k for k, _, _ in items]
        return failed

    async def adelete_many(self, keys: Iterable[str]) -> int:
        """Async :meth:`delete_many`."""
        skeys = [self._keys.data(k) for k in keys]
        result = await self._acall("delete_many", self.strict, self._store.adelete_many, skeys)
        return 0 if result is _FAILED else result

    async def aincr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Async :meth:`incr`."""
        skey = self._keys.data(key)
        ms = ttl_ms(ttl_seconds(ttl, None))
        self._check_delta(delta)
        for _ in range(_COUNTER_RETRIES):
            try:
                return int(await self._acall("incr", True, self._store.aincr, skey, delta, ms))
            except NotACounter:
                raw = await self._acall("get", True, self._store.aget, skey)
                converted = self._as_counter(key, skey, raw)
                if converted is not None:
                    await self._acall(
                        "incr", True, self._store.acompare_and_swap, skey, raw, converted
                    )
        raise CacheUnavailable(f"the value of {key!r} kept changing while being incremented")

    async def adecr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Async :meth:`decr`."""
        self._check_delta(delta)
        return await self.aincr(key, -delta, ttl=ttl)

    async def aclose(self) -> None:
        """Async :meth:`close`: releases this event loop's connections too."""
        await self._store.aclose()
        self._store.close()

    # -- decorator ---------------------------------------------------------------------------

    def cached(self, ttl: Ttl = DEFAULT, *, key: KeySpec | None = None) -> CacheDecorator:
        """Cache a function's results (sync or async) under keys built from its arguments.

        ``key`` is a format string over the parameters (``"product:{product_id}"``), a
        callable taking the same arguments, or ``None`` for ``module.qualname`` plus the
        arguments. The wrapped function gains ``invalidate(*args, **kwargs)`` (and
        ``ainvalidate`` for async functions) and ``key_for(*args, **kwargs)``.
        """
        from cacheplug._decorators import CacheDecorator

        return CacheDecorator(self, ttl, key)
