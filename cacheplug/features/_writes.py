"""Write-around: run the writer, then invalidate the key (and tags); the cache is filled by the
next read. This is what the adapters do for ORM writes. (Write-through is a plan of the
engine: ``cacheplug._engine.write_through``.)
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import isawaitable
from typing import Any, TypeVar

from cacheplug._engine.protocol import CacheState
from cacheplug._types import Tags
from cacheplug.encoding._tags import tag_names

T = TypeVar("T")


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
