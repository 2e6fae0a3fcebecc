"""What the feature modules may use of a cache: the ``CacheState`` protocol.

Locks, ``inspect``, shared stats, write-behind, write-through/around and ``@cached`` are
written against this protocol, not against :class:`~cacheplug.Cache`: they receive the cache
as a ``CacheState`` and never import the modules that build it (not even for typing), so the
dependencies run one way, ``Cache`` -> features -> this protocol. ``Cache`` satisfies it
structurally; mypy checks that wherever a feature is handed the cache.

Each member is listed because some feature uses it; one that no feature uses any more goes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from cacheplug._clock import Clock
from cacheplug._codec import EntryCodec
from cacheplug._keys import KeyBuilder
from cacheplug._metrics import CacheStats
from cacheplug._stampede import Plan, XFetch
from cacheplug._tags import VersionKeys
from cacheplug._types import DefaultType, Tags, Ttl
from cacheplug.stores.base import Store, VersionCheck

T = TypeVar("T")


class CacheState(Protocol):
    """The state and the calls of one cache that its features use."""

    # -- state --------------------------------------------------------------------------------

    @property
    def _store(self) -> Store: ...

    @property
    def _keys(self) -> KeyBuilder: ...

    @property
    def _codec(self) -> EntryCodec: ...

    @property
    def _versions(self) -> VersionKeys: ...

    @property
    def _clock(self) -> Clock: ...

    @property
    def _now(self) -> Callable[[], float]: ...

    @property
    def store(self) -> Store: ...

    # -- store calls under the failure policy, and the plan drivers (``_io``) ----------------

    def _call(self, operation: str, strict: bool, fn: Callable[..., Any], *args: Any) -> Any: ...

    async def _acall(
        self, operation: str, strict: bool, fn: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any: ...

    def _run(self, plan: Plan, loader: Callable[[], Any] | None = None) -> Any: ...

    async def _arun(self, plan: Plan, loader: Callable[[], Any] | None = None) -> Any: ...

    # -- policies the writes share with the reads ---------------------------------------------

    def _ttl(self, ttl: Ttl) -> float | None: ...

    def _store_ttl_ms(self, ttl: float | None, stale_ttl: float | None = None) -> int | None: ...

    def _version_keys(self, tags: tuple[str, ...]) -> tuple[str, ...]: ...

    def _write_args(
        self, skey: str, value: Any, ttl: float | None, version_keys: Sequence[str], read: Any
    ) -> tuple[bytes, list[VersionCheck]] | None: ...

    def _existing_versions(
        self, version_keys: Sequence[str], read: Any, near: str | None = None
    ) -> Any: ...

    async def _aexisting_versions(
        self, version_keys: Sequence[str], read: Any, near: str | None = None
    ) -> Any: ...

    def _invalidate_entries(self, operation: str, keys: Iterable[str]) -> Any: ...

    async def _ainvalidate_entries(self, operation: str, keys: Iterable[str]) -> Any: ...

    def _drop_local(self, store_keys: Iterable[str]) -> None: ...

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
