"""The async methods of ``Cache``: each call's ``a``-prefixed twin.

The same decisions and plans as the sync methods in ``cache``, handed to the async driver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from inspect import isawaitable
from typing import Any, TypeVar, cast

from cacheplug._engine.counters import check_delta, counter_plan
from cacheplug._engine.invalidation import Invalidator
from cacheplug._engine.loads import Loads
from cacheplug._engine.plans import XFetch
from cacheplug._engine.protocol import CacheState
from cacheplug._engine.read_many import get_many_plan
from cacheplug._engine.reads import Engine
from cacheplug._engine.replicas import Replicas
from cacheplug._engine.write_through import write_through_plan
from cacheplug._engine.writes import add_plan, set_many_plan, set_plan
from cacheplug._types import BYPASS, DEFAULT, FAILED, MISSING, NOTHING, DefaultType, Tags, Ttl
from cacheplug.encoding._tags import Unread, tag_names

T = TypeVar("T")


class AsyncMethods:
    """Async methods of :class:`~cacheplug.Cache` (over the components it composes)."""

    _engine: Engine
    _loads: Loads
    _replicas: Replicas
    _invalidator: Invalidator

    async def aget(self, key: str, default: Any = None) -> Any:
        """Async :meth:`~cacheplug.Cache.get`."""
        engine = self._engine
        skey, version_keys, found, epoch = engine._begin_get(key)
        if found is BYPASS:
            return default
        if found is not NOTHING:
            return found
        values = await engine._aread([skey, *version_keys], engine.strict)
        value = engine._finish_get(skey, values, version_keys, epoch)
        if isinstance(value, Unread):  # it records version keys not read yet
            values += await engine._aread(value.keys, engine.strict)
            value = engine._hit(skey, values, [*version_keys, *value.keys])
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
        engine = self._engine
        if replicas is not None or engine._hot_replicas:  # one test on the usual path
            copies = self._replicas.copies(
                key, replicas, stale_ttl, early, refresh_ahead, max_staleness
            )
            if copies:

                async def plain() -> T:
                    return await self.aget_or_load(
                        key, loader, ttl, tags=tags, negative_ttl=negative_ttl, replicas=0
                    )

                plan = self._replicas.plan(key, tags, ttl, negative_ttl, copies)
                found = await engine._arun(plan, plain)
                if found is BYPASS:
                    value = loader()
                    return await value if isawaitable(value) else value
                return await plain() if found is NOTHING else found
        skey, version_keys, found, epoch = engine._begin_read(
            key, tags, early, refresh_ahead, max_staleness
        )
        if found is BYPASS:
            value = loader()
            return await value if isawaitable(value) else value
        if found is not NOTHING:
            return found  # type: ignore[no-any-return]
        values = await engine._aread([skey, *version_keys], False)
        options = (ttl, stale_ttl, early, refresh_ahead, max_staleness, negative_ttl)
        loads = self._loads
        answer = engine._finish_read(
            skey, values, version_keys, loader, options, epoch, loads.arefresh_soon
        )
        if answer is MISSING and tags is None:
            recorded = engine._unread_keys(skey, version_keys)
            if recorded is not None:  # it records tags its load discovered: check them too
                version_keys = recorded
                values = await engine._aread([skey, *version_keys], False)
                answer = engine._finish_read(
                    skey, values, version_keys, loader, options, epoch, loads.arefresh_soon
                )
        if answer is not MISSING:
            return answer  # type: ignore[no-any-return]
        return await loads.afill(skey, version_keys, options, loader)  # type: ignore[no-any-return]

    async def aget_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Async :meth:`~cacheplug.Cache.get_many`."""
        found: dict[str, Any] = await self._engine._arun(get_many_plan(self._engine, keys))
        return found

    async def aset(self, key: str, value: Any, ttl: Ttl = DEFAULT, *, tags: Tags = None) -> bool:
        """Async :meth:`~cacheplug.Cache.set`."""
        stored: bool = await self._engine._arun(set_plan(self._engine, key, value, ttl, tags))
        return stored

    async def aadd(self, key: str, value: Any, ttl: Ttl = DEFAULT, *, tags: Tags = None) -> bool:
        """Async :meth:`~cacheplug.Cache.add`."""
        stored: bool = await self._engine._arun(add_plan(self._engine, key, value, ttl, tags))
        return stored

    async def aset_many(
        self, mapping: Mapping[str, Any], ttl: Ttl = DEFAULT, *, tags: Tags = None
    ) -> list[str]:
        """Async :meth:`~cacheplug.Cache.set_many`."""
        plan = set_many_plan(self._engine, mapping, ttl, tags)
        failed: list[str] = await self._engine._arun(plan)
        return failed

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
        plan = write_through_plan(self._engine, key, value, ttl, tags)
        result: T = await self._engine._arun(plan, writer)
        return result

    async def awrite_around(
        self,
        key: str,
        writer: Callable[[], Awaitable[T]] | Callable[[], T],
        *,
        tags: Tags = None,
    ) -> T:
        """Async :meth:`~cacheplug.Cache.write_around`."""
        from cacheplug.features._writes import awrite_around

        return await awrite_around(cast("CacheState", self), key, writer, tags)  # type: ignore[no-any-return]

    async def aincr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Async :meth:`~cacheplug.Cache.incr`."""
        engine = self._engine
        engine._drop_local([engine._keys.data(key)])
        try:
            return int(await engine._arun(counter_plan(engine, key, delta, ttl)))
        finally:
            engine._drop_local([engine._keys.data(key)])

    async def adecr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Async :meth:`~cacheplug.Cache.decr`."""
        check_delta(delta)
        return await self.aincr(key, -delta, ttl=ttl)

    async def adelete(self, key: str) -> bool:
        """Async :meth:`~cacheplug.Cache.delete`."""
        result = await self._invalidator.aentries("delete", [key])
        return result is not FAILED and bool(result > 0)

    async def adelete_many(self, keys: Iterable[str]) -> int:
        """Async :meth:`~cacheplug.Cache.delete_many`."""
        result = await self._invalidator.aentries("delete_many", keys)
        return 0 if result is FAILED else int(result)

    async def ainvalidate(self, *keys: str, again_after: float | None = None) -> None:
        """Async :meth:`~cacheplug.Cache.invalidate`."""
        invalidator = self._invalidator
        invalidator.again(again_after, lambda: invalidator.entries("invalidate", keys))
        await invalidator.aentries("invalidate", keys)

    async def ainvalidate_tags(self, *tags: str, again_after: float | None = None) -> None:
        """Async :meth:`~cacheplug.Cache.invalidate_tags`."""
        version_keys = self._engine._versions.of_tags(tag_names(tags, None))  # any number
        invalidator = self._invalidator
        invalidator.again(again_after, lambda: invalidator.bump(version_keys, "tag"))
        await invalidator.abump(version_keys, "tag")

    async def abump(self) -> None:
        """Async :meth:`~cacheplug.Cache.bump`."""
        await self._invalidator.abump([self._engine._versions.implicit[-1]], "namespace")

    async def aclose(self, flush_timeout: float = 5.0) -> None:
        """Async :meth:`~cacheplug.Cache.close`: also cancels this loop's background refreshes
        and releases its connections."""
        engine = self._engine
        await engine._background.ashutdown()
        # It may wait: not on the loop.
        await asyncio.to_thread(self._invalidator.shutdown, flush_timeout)
        await engine._store.aclose()
        engine._store.close()
