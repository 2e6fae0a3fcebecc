"""The async half of the ``Cache`` API: every call's ``a``-prefixed twin.

These methods mirror the sync ones in ``_cache`` line for line; all decisions are made by
``CacheCore`` (and the plans it builds), only the I/O is awaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from inspect import isawaitable
from typing import Any, TypeVar

from cacheplug._config import ttl_ms, ttl_seconds
from cacheplug._incr import raw_counter_plan, signed_counter_plan
from cacheplug._invalidation import Invalidations
from cacheplug._read_many import get_many_plan
from cacheplug._stampede import XFetch
from cacheplug._tags import (
    Recorded,
    Unread,
    fresh_version,
    tag_names,
)
from cacheplug._types import BYPASS, DEFAULT, FAILED, MISSING, NOTHING, DefaultType, Tags, Ttl
from cacheplug._write_plans import add_plan, existing_versions_plan, set_many_plan, set_plan

T = TypeVar("T")


class AsyncCacheAPI(Invalidations):
    """Async methods of :class:`~cacheplug.Cache`."""

    async def aget(self, key: str, default: Any = None) -> Any:
        """Async :meth:`~cacheplug.Cache.get`."""
        skey, version_keys, found, epoch = self._begin_get(key)
        if found is BYPASS:
            return default
        if found is not NOTHING:
            return found
        values = await self._aread([skey, *version_keys], self.strict)
        value = self._finish_get(skey, values, version_keys, epoch)
        if isinstance(value, Unread):  # it records version keys not read yet
            values += await self._aread(value.keys, self.strict)
            value = self._hit(skey, values, [*version_keys, *value.keys])
        return default if value is MISSING or isinstance(value, Unread) else value

    async def aget_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]] | Callable[[], T],
        ttl: Ttl = DEFAULT,
        *,
        tags: Tags = None,
        stale_ttl: float | DefaultType = DEFAULT,
        early: XFetch | DefaultType | None = DEFAULT,
        refresh_ahead: float | DefaultType | None = DEFAULT,
        max_staleness: float | None = None,
        negative_ttl: float | DefaultType | None = DEFAULT,
        replicas: int | None = None,
    ) -> T:
        """Async :meth:`~cacheplug.Cache.get_or_load`; ``loader`` may be a coroutine function.

        Concurrent tasks of one event loop share one load; other loops, threads and
        processes are coordinated by the store lease.
        """
        if replicas is not None or self._hot_replicas:  # one test on the usual path
            copies = self._replication(
                key, replicas, stale_ttl, early, refresh_ahead, max_staleness
            )
            if copies:
                return await self._aget_replicated(key, loader, ttl, tags, negative_ttl, copies)
        skey, version_keys, found, epoch = self._begin_read(
            key, tags, early, refresh_ahead, max_staleness
        )
        if found is BYPASS:
            value = loader()
            return await value if isawaitable(value) else value
        if found is not NOTHING:
            return found  # type: ignore[no-any-return]
        values = await self._aread([skey, *version_keys], False)
        options = (ttl, stale_ttl, early, refresh_ahead, max_staleness, negative_ttl)
        answer = self._finish_read(
            skey, values, version_keys, loader, options, epoch, self._arefresh_soon
        )
        if answer is not MISSING:
            return answer  # type: ignore[no-any-return]
        policy = self._read_policy(*options)
        self._listen_to_bus()

        async def fill() -> tuple[T, bool]:
            plan = self._fill_plan(skey, version_keys, policy, check_first=False)
            return await self._arun(plan, loader)  # type: ignore[no-any-return]

        return await self._aflights.run(self._flight_key(skey, version_keys), fill, version_keys)

    async def _aget_replicated(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]] | Callable[[], T],
        ttl: Ttl,
        tags: Tags,
        negative_ttl: float | DefaultType | None,
        replicas: int,
    ) -> T:
        """Async ``Cache._get_replicated``."""
        skey, version_keys, found, epoch = self._begin_read(key, tags, DEFAULT, DEFAULT, None)
        if found is BYPASS:
            value = loader()
            return await value if isawaitable(value) else value
        if found is not NOTHING:
            return found  # type: ignore[no-any-return]
        replica = self._pick_replica(skey, version_keys, replicas)
        if replica is None:
            return await self.aget_or_load(
                key, loader, ttl, tags=tags, negative_ttl=negative_ttl, replicas=0
            )
        values = await self._aread([replica[0], *replica[2]], False)
        answer = self._replica_hit(skey, version_keys, replica, values, epoch)
        if answer is not MISSING:
            return answer  # type: ignore[no-any-return]
        read: Any = values[1:]
        positions, args = self._replica_ensure_args(replica, read)
        created = await self._acall("get", False, self._store.aensure_versions, *args)
        read = self._merge_versions(read, positions, created)
        primary = self._primary_value(
            skey, version_keys, await self._aread([skey, *version_keys], False)
        )
        if primary is None:
            value = await self.aget_or_load(
                key, loader, ttl, tags=tags, negative_ttl=negative_ttl, replicas=0
            )
            fresh_for = self._loaded_ttl(ttl, negative_ttl, value)
        else:
            self._counters.hits += 1
            value, fresh_for = primary
        write = self._replica_write(replica, read, value, fresh_for)
        if write is not None:
            await self._acall("get", False, self._store.aput, *write)
        return value

    async def awrite_through(
        self,
        key: str,
        value: Any,
        writer: Callable[[], Awaitable[T]] | Callable[[], T],
        ttl: Ttl = DEFAULT,
        *,
        tags: Tags = None,
    ) -> T:
        """Async :meth:`~cacheplug.Cache.write_through`; ``writer`` may be a coroutine
        function."""
        from cacheplug._writes import awrite_through

        return await awrite_through(self, key, value, writer, ttl, tags)  # type: ignore[arg-type,no-any-return]

    async def awrite_around(
        self,
        key: str,
        writer: Callable[[], Awaitable[T]] | Callable[[], T],
        *,
        tags: Tags = None,
    ) -> T:
        """Async :meth:`~cacheplug.Cache.write_around`."""
        from cacheplug._writes import awrite_around

        return await awrite_around(self, key, writer, tags)  # type: ignore[arg-type,no-any-return]

    async def aset(self, key: str, value: Any, ttl: Ttl = DEFAULT, *, tags: Tags = None) -> bool:
        """Async :meth:`~cacheplug.Cache.set`."""
        stored: bool = await self._arun(set_plan(self, key, value, ttl, tags))
        return stored

    async def aadd(self, key: str, value: Any, ttl: Ttl = DEFAULT, *, tags: Tags = None) -> bool:
        """Async :meth:`~cacheplug.Cache.add`."""
        stored: bool = await self._arun(add_plan(self, key, value, ttl, tags))
        return stored

    async def adelete(self, key: str) -> bool:
        """Async :meth:`~cacheplug.Cache.delete`."""
        result = await self._ainvalidate_entries("delete", [key])
        return result is not FAILED and bool(result > 0)

    async def ainvalidate(self, *keys: str, again_after: float | None = None) -> None:
        """Async :meth:`~cacheplug.Cache.invalidate`."""
        self._again(again_after, lambda: self._invalidate_entries("invalidate", keys))
        await self._ainvalidate_entries("invalidate", keys)

    async def ainvalidate_tags(self, *tags: str, again_after: float | None = None) -> None:
        """Async :meth:`~cacheplug.Cache.invalidate_tags`."""
        version_keys = self._versions.of_tags(tag_names(tags))
        self._again(again_after, lambda: self._bump_now(version_keys, "tag"))
        await self._abump_now(version_keys, "tag")

    async def abump(self) -> None:
        """Async :meth:`~cacheplug.Cache.bump`."""
        await self._abump_now([self._versions.implicit[-1]], "namespace")

    async def aget_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Async :meth:`~cacheplug.Cache.get_many`."""
        found: dict[str, Any] = await self._arun(get_many_plan(self, keys))
        return found

    async def aset_many(
        self, mapping: Mapping[str, Any], ttl: Ttl = DEFAULT, *, tags: Tags = None
    ) -> list[str]:
        """Async :meth:`~cacheplug.Cache.set_many`."""
        failed: list[str] = await self._arun(set_many_plan(self, mapping, ttl, tags))
        return failed

    async def adelete_many(self, keys: Iterable[str]) -> int:
        """Async :meth:`~cacheplug.Cache.delete_many`."""
        result = await self._ainvalidate_entries("delete_many", keys)
        return 0 if result is FAILED else int(result)

    async def _aexisting_versions(
        self, version_keys: Sequence[str], read: Any, near: str | None = None
    ) -> Any:
        """Async ``Cache._existing_versions``."""
        return await self._arun(existing_versions_plan(self, version_keys, read, near))

    async def aincr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Async :meth:`~cacheplug.Cache.incr`."""
        self._drop_local([self._keys.data(key)])
        try:
            return int(await self._arun(self._counter_plan(key, delta, ttl)))
        finally:
            self._drop_local([self._keys.data(key)])

    async def adecr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Async :meth:`~cacheplug.Cache.decr`."""
        _check_delta(delta)
        return await self.aincr(key, -delta, ttl=ttl)

    async def aclose(self, flush_timeout: float = 5.0) -> None:
        """Async :meth:`~cacheplug.Cache.close`: also cancels this loop's background refreshes
        and releases its connections."""
        await self._background.ashutdown()
        await asyncio.to_thread(self._shutdown, flush_timeout)  # it may wait: not on the loop
        await self._store.aclose()
        self._store.close()

    # -- shared by both APIs -----------------------------------------------------------------

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

        def encode(value: int, fresh_until: float | None, recorded: Recorded) -> bytes | None:
            return self._encode(skey, value, ttl_s, 0.0, fresh_until, recorded=recorded)

        def ensure(keys: list[str]) -> tuple[list[str], list[int], int]:
            return keys, [fresh_version() for _ in keys], self._version_keep_ms()

        return signed_counter_plan(
            **common, encode=encode, version_keys=self._implicit, ensure=ensure
        )


def _check_delta(delta: int) -> None:
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise TypeError(f"delta must be an int, not {type(delta).__name__}")
