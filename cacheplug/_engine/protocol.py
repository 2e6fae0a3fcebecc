"""What the features may use of a cache: the ``CacheState`` protocol.

Features that only need the engine (locks, ``inspect``, shared stats) are handed the
:class:`~cacheplug._engine.reads.Engine` itself. Those that also call the cache's public API
(write-through/around, write-behind, ``@cached``) are written against this protocol, not
against :class:`~cacheplug.Cache`: they never import ``cacheplug.cache`` (not even for typing),
so the dependencies run one way, ``Cache`` -> features -> the engine. ``Cache`` satisfies it
structurally; mypy checks that wherever a feature is handed the cache.

Each member is listed because some feature uses it; one that no feature uses any more goes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from cacheplug._engine.metrics import CacheStats
from cacheplug._engine.plans import XFetch
from cacheplug._engine.reads import Engine
from cacheplug._types import DefaultType, Tags, Ttl
from cacheplug.stores.base import Store

T = TypeVar("T")


class CacheState(Protocol):
    """The state and the calls of one cache that its features use."""

    # -- the engine ------------------------------------------------------------------------

    @property
    def _engine(self) -> Engine: ...

    @property
    def store(self) -> Store: ...

    # -- the public calls features make -------------------------------------------------------

    def get_or_load(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: Ttl = ...,
        *,
        tags: Tags = None,
        stale_ttl: float | DefaultType = ...,
        early: XFetch | DefaultType | None = ...,
        refresh_ahead: float | DefaultType | None = ...,
    ) -> T: ...

    async def aget_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T]] | Callable[[], T],
        ttl: Ttl = ...,
        *,
        tags: Tags = None,
        stale_ttl: float | DefaultType = ...,
        early: XFetch | DefaultType | None = ...,
        refresh_ahead: float | DefaultType | None = ...,
    ) -> T: ...

    def set(self, key: str, value: Any, ttl: Ttl = ..., *, tags: Tags = None) -> bool: ...

    def delete(self, key: str) -> bool: ...

    async def adelete(self, key: str) -> bool: ...

    def invalidate(self, *keys: str, again_after: float | None = None) -> None: ...

    async def ainvalidate(self, *keys: str, again_after: float | None = None) -> None: ...

    def invalidate_tags(self, *tags: str, again_after: float | None = None) -> None: ...

    async def ainvalidate_tags(self, *tags: str, again_after: float | None = None) -> None: ...

    def stats(self) -> CacheStats: ...

    def hot_keys(self, top: int = 20) -> list[tuple[str, float]]: ...
