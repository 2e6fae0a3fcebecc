"""Write strategies: write-through and write-around.

**Write-through** runs the writer (the source of truth) first, then caches the value it
wrote, but only when no other write of the key overlapped. Each key has a write counter
next to it (same slot), incremented when a write starts and again when its writer has
returned. A writer whose two increments are consecutive (``end == start + 1``) overlapped no
other writer, and stores its value on the condition that the counter still holds ``end``
(checked atomically with the store, like a tag version). Any doubt, such as another writer in
between, a refused store, a store error or a writer that raised, invalidates the key instead:
the next read loads what the database holds. So two concurrent writers can never leave the
older value cached, whatever order their database commits took. Storing also drops the key's
lease, so a load that read the database before the write cannot store its older result.

**Write-around** runs the writer and then invalidates the key (and tags): the cache is
filled by the next read. This is what the adapters do for ORM writes.
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import isawaitable
from typing import Any, TypeVar

from cacheplug._engine.protocol import CacheState
from cacheplug._engine.writes import existing_versions_plan
from cacheplug._types import BOOKKEEPING_TTL_MS, DEFAULT, FAILED, Tags, Ttl
from cacheplug.encoding._tags import tag_names
from cacheplug.exceptions import CacheError

T = TypeVar("T")


def write_through(
    cache: CacheState,
    key: str,
    value: Any,
    writer: Callable[[], T],
    ttl: Ttl = DEFAULT,
    tags: Tags = None,
) -> T:
    """See :meth:`cacheplug.Cache.write_through`."""
    skey = cache._engine._keys.data(key)
    counter = cache._engine._keys.writes_of(skey)
    store = cache._engine._store
    try:
        started: int | None = store.incr(counter, 1, BOOKKEEPING_TTL_MS)
    except CacheError:
        started = None
    try:
        result = writer()
    except BaseException:
        _finish(cache, counter)
        cache._engine._invalidator.entries("write_through", [key])
        raise
    ended = _finish(cache, counter)
    if (
        started is None
        or ended != started + 1
        or not _store(cache, skey, value, ttl, tags, counter, ended)
    ):
        cache._engine._invalidator.entries("write_through", [key])
    cache._engine._drop_local([skey])
    return result


def _finish(cache: CacheState, counter: str) -> int | None:
    try:
        return cache._engine._store.incr(counter, 1, BOOKKEEPING_TTL_MS)
    except CacheError:
        return None


def _store(
    cache: CacheState, skey: str, value: Any, ttl: Ttl, tags: Tags, counter: str, ended: int
) -> bool:
    """Store ``value`` if the write counter still holds ``ended`` and the tag versions read
    hold; True when stored."""
    version_keys = cache._engine._version_keys(tag_names(tags))
    ttl_s = cache._engine._ttl(ttl)
    read = cache._engine._call(
        "write_through", False, cache._engine._store.get_many, list(version_keys)
    )
    read = cache._engine._run(existing_versions_plan(cache._engine, version_keys, read, skey))
    written = cache._engine._write_args(skey, value, ttl_s, version_keys, read)
    if written is None:
        return False
    record, conditions = written
    result = cache._engine._call(
        "write_through",
        False,
        cache._engine._store.put,
        skey,
        record,
        cache._engine._store_ttl_ms(ttl_s),
        cache._engine._keys.lease_of(skey),
        [*conditions, (counter, ended, False)],
    )
    return result is not FAILED and result is True


def write_around(cache: CacheState, key: str, writer: Callable[[], T], tags: Tags = None) -> T:
    """See :meth:`cacheplug.Cache.write_around`."""
    try:
        return writer()
    finally:
        # Whether the writer got to commit or not is unknown when it raised: invalidate
        # either way (a miss is the cheap side of doubt).
        cache.invalidate(key)
        if tags is not None:
            cache.invalidate_tags(*tag_names(tags))


async def awrite_through(
    cache: CacheState,
    key: str,
    value: Any,
    writer: Callable[[], Any],
    ttl: Ttl = DEFAULT,
    tags: Tags = None,
) -> Any:
    """Async :func:`write_through`; ``writer`` may be a coroutine function."""
    skey = cache._engine._keys.data(key)
    counter = cache._engine._keys.writes_of(skey)
    store = cache._engine._store
    try:
        started: int | None = await store.aincr(counter, 1, BOOKKEEPING_TTL_MS)
    except CacheError:
        started = None
    try:
        result = writer()
        if isawaitable(result):
            result = await result
    except BaseException:
        await _afinish(cache, counter)
        await cache._engine._invalidator.aentries("write_through", [key])
        raise
    ended = await _afinish(cache, counter)
    if (
        started is None
        or ended != started + 1
        or not await _astore(cache, skey, value, ttl, tags, counter, ended)
    ):
        await cache._engine._invalidator.aentries("write_through", [key])
    cache._engine._drop_local([skey])
    return result


async def _afinish(cache: CacheState, counter: str) -> int | None:
    try:
        return await cache._engine._store.aincr(counter, 1, BOOKKEEPING_TTL_MS)
    except CacheError:
        return None


async def _astore(
    cache: CacheState, skey: str, value: Any, ttl: Ttl, tags: Tags, counter: str, ended: int
) -> bool:
    version_keys = cache._engine._version_keys(tag_names(tags))
    ttl_s = cache._engine._ttl(ttl)
    read = await cache._engine._acall(
        "write_through", False, cache._engine._store.aget_many, list(version_keys)
    )
    read = await cache._engine._arun(
        existing_versions_plan(cache._engine, version_keys, read, skey)
    )
    written = cache._engine._write_args(skey, value, ttl_s, version_keys, read)
    if written is None:
        return False
    record, conditions = written
    result = await cache._engine._acall(
        "write_through",
        False,
        cache._engine._store.aput,
        skey,
        record,
        cache._engine._store_ttl_ms(ttl_s),
        cache._engine._keys.lease_of(skey),
        [*conditions, (counter, ended, False)],
    )
    return result is not FAILED and result is True


async def awrite_around(
    cache: CacheState, key: str, writer: Callable[[], Any], tags: Tags = None
) -> Any:
    """Async :func:`write_around`; ``writer`` may be a coroutine function."""
    try:
        result = writer()
        return await result if isawaitable(result) else result
    finally:
        await cache.ainvalidate(key)
        if tags is not None:
            await cache.ainvalidate_tags(*tag_names(tags))
