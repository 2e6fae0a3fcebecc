"""The async half of the ``Cache`` API: every call's ``a``-prefixed twin.

These methods mirror the sync ones in ``_cache`` line for line; all decisions are made by
``CacheCore`` (and the plans it builds), only the I/O is awaited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from cacheplug._config import ttl_ms, ttl_seconds
from cacheplug._core import CacheCore
from cacheplug._incr import raw_counter_plan, signed_counter_plan
from cacheplug._io import FAILED
from cacheplug._stampede import XFetch
from cacheplug._types import DEFAULT, MISSING, DefaultType, Ttl

T = TypeVar("T")


class AsyncCacheAPI(CacheCore):
    """Async methods of :class:`~cacheplug.Cache`."""

    async def aget(self, key: str, default: Any = None) -> Any:
        """Async :meth:`~cacheplug.Cache.get`."""
        skey = self._keys.data(key)
        value = self._hit(skey, await self._aread(skey, self.strict))
        return default if value is MISSING else value

    async def aget_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]] | Callable[[], T],
        ttl: Ttl = DEFAULT,
        *,
        stale_ttl: float | DefaultType = DEFAULT,
        early: XFetch | DefaultType | None = DEFAULT,
        refresh_ahead: float | DefaultType | None = DEFAULT,
    ) -> T:
        """Async :meth:`~cacheplug.Cache.get_or_load`; ``loader`` may be a coroutine function.

        Concurrent tasks of one event loop share one load; other loops, threads and
        processes are coordinated by the store lease.
        """
        skey = self._keys.data(key)
        raw = await self._aread(skey, False)
        options = (ttl, stale_ttl, early, refresh_ahead)
        value = self._answer(skey, raw, loader, options, self._arefresh_soon)
        if value is not MISSING:
            return value  # type: ignore[no-any-return]
        policy = self._read_policy(*options)

        async def fill() -> T:
            return await self._arun(self._fill_plan(skey, policy, check_first=False), loader)  # type: ignore[no-any-return]

        return await self._aflights.run(skey, fill)

    async def aset(self, key: str, value: Any, ttl: Ttl = DEFAULT) -> bool:
        """Async :meth:`~cacheplug.Cache.set`."""
        skey = self._keys.data(key)
        ttl_s = self._ttl(ttl)
        record = self._encode(skey, value, ttl_s, 0.0)
        if record is None:
            await self._acall("delete", self.strict, self._store.adelete, skey)
            return False
        result = await self._acall(
            "set", self.strict, self._store.aset, skey, record, self._store_ttl_ms(ttl_s)
        )
        return result is not FAILED

    async def aadd(self, key: str, value: Any, ttl: Ttl = DEFAULT) -> bool:
        """Async :meth:`~cacheplug.Cache.add`."""
        skey = self._keys.data(key)
        ttl_s = self._ttl(ttl)
        record = self._encode(skey, value, ttl_s, 0.0)
        if record is None:
            return False
        result = await self._acall(
            "add", self.strict, self._store.aadd, skey, record, self._store_ttl_ms(ttl_s)
        )
        return result is True

    async def adelete(self, key: str) -> bool:
        """Async :meth:`~cacheplug.Cache.delete`."""
        entries = self._invalidation([key])
        result = await self._acall("delete", self.strict, self._store.ainvalidate, entries)
        return result is not FAILED and result > 0

    async def aget_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Async :meth:`~cacheplug.Cache.get_many`."""
        keys = list(keys)
        skeys = self._keys.data_many(keys)
        raws = await self._acall("get_many", self.strict, self._store.aget_many, skeys)
        if raws is FAILED:
            raws = [None] * len(keys)
        return self._collect(keys, skeys, raws)

    async def aset_many(self, mapping: Mapping[str, Any], ttl: Ttl = DEFAULT) -> list[str]:
        """Async :meth:`~cacheplug.Cache.set_many`."""
        items, too_large, ttl_s = self._encode_many(mapping, ttl)
        failed = list(too_large)
        if too_large:
            skeys = self._keys.data_many(too_large)
            await self._acall("delete_many", self.strict, self._store.adelete_many, skeys)
        if items:
            pairs = [(skey, record) for _, skey, record in items]
            result = await self._acall(
                "set_many", self.strict, self._store.aset_many, pairs, self._store_ttl_ms(ttl_s)
            )
            if result is FAILED:
                failed += [key for key, _, _ in items]
        return failed

    async def adelete_many(self, keys: Iterable[str]) -> int:
        """Async :meth:`~cacheplug.Cache.delete_many`."""
        entries = self._invalidation(list(keys))
        result = await self._acall("delete_many", self.strict, self._store.ainvalidate, entries)
        return 0 if result is FAILED else int(result)

    async def aincr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Async :meth:`~cacheplug.Cache.incr`."""
        return int(await self._arun(self._counter_plan(key, delta, ttl)))

    async def adecr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Async :meth:`~cacheplug.Cache.decr`."""
        _check_delta(delta)
        return await self.aincr(key, -delta, ttl=ttl)

    async def aclose(self) -> None:
        """Async :meth:`~cacheplug.Cache.close`: also cancels this loop's background refreshes
        and releases its connections."""
        await self._background.ashutdown()
        self._background.shutdown()
        await self._store.aclose()
        self._store.close()

    # -- shared by both APIs -----------------------------------------------------------------

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

    def _counter_plan(self, key: str, delta: int, ttl: float | None) -> Any:
        _check_delta(delta)
        skey = self._keys.data(key)
        ttl_s = ttl_seconds(ttl, None)
        common: dict[str, Any] = {
            "key": key,
            "store_key": skey,
            "delta": delta,
            "ttl_ms": ttl_ms(ttl_s),
            "decode": self._codec.decode,
        }
        if not self._codec.signed:
            return raw_counter_plan(**common)

        def encode(value: int, fresh_until: float | None) -> bytes | None:
            return self._encode(skey, value, ttl_s, 0.0, fresh_until)

        return signed_counter_plan(**common, encode=encode)


def _check_delta(delta: int) -> None:
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise TypeError(f"delta must be an int, not {type(delta).__name__}")
