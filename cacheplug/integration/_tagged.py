"""The cache object an ORM adapter hands its users: a :class:`~cacheplug.Cache` whose reads
also take ``depends_on=[Model, ...]``.

What the adapters used to write twice (``cacheplug_django``'s ``cache`` and
``cacheplug_flask``'s ``CachePlug``), written once:

- the tags an entry is stored with: the ``tags`` given, the table tags of ``depends_on``, and
  what row tags bring along (:func:`~cacheplug.integration.stored_tags`), resolved once per
  call site (call sites pass the same tags and models again and again);
- the uncommitted-write bypass: a read that depends on something the current transaction
  wrote and has not committed goes around the cache (``max_staleness=0``): it must neither
  be answered from the cache (the writer already sees its new rows) nor store what it loads
  (nobody else can see those rows yet);
- ``cached(depends_on=...)``: the models' tags are resolved when the function is decorated
  (a typo fails at import, not per call) and merged with the decorator's own ``tags``.

The adapter says how: :class:`ModelTagging` holds its ORM's three answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from cacheplug import DEFAULT, CacheDecorator
from cacheplug._memo import BoundedMemo
from cacheplug._types import NOTHING
from cacheplug.features._decorators import ReadOptions
from cacheplug.integration._calls import _log as _calls
from cacheplug.integration._capture import AUTO, audited, is_auto, recording
from cacheplug.integration._table_tags import stored_tags

if TYPE_CHECKING:
    from cacheplug import Cache

__all__ = ["ModelTagging", "TaggedCache"]

T = TypeVar("T")


@dataclass(frozen=True)
class ModelTagging:
    """What an ORM adapter knows that :class:`TaggedCache` needs."""

    model_tags: Callable[..., list[str]]
    """``model_tags(*models)``: the tags of whole models (raises for what is not one)."""
    parents: Callable[[str], Iterable[str]]
    """``parents(table)``: the tables whose rows ``table``'s rows extend (inheritance)."""
    uncommitted: Callable[[list[str]], bool]
    """``uncommitted(tags)``: True when the current transaction wrote something ``tags``
    depend on and has not committed."""
    anything_uncommitted: Callable[[], bool] = lambda: False
    """True when the current transaction wrote anything and has not committed (an ``auto``
    read, whose dependencies are known only once it loaded, then goes around the cache)."""
    auto_default: Callable[[], bool] = lambda: False
    """True when every read is ``depends_on="auto"``, what it names added (a setting)."""
    audit: Callable[[], bool] = lambda: False
    """True when loaders with an explicit ``depends_on`` are watched for tables they do not
    declare (``DEBUG``, or a setting)."""


class TaggedCache:
    """A :class:`~cacheplug.Cache` with ``depends_on=`` models and the uncommitted-write
    bypass; every other :class:`~cacheplug.Cache` method is the core's.

    ``core()`` gives the cache to act on, at each call (built on first use, or the current
    app's); ``tagging`` is the adapter's ORM (see :class:`ModelTagging`). Adapters extend this
    class with their framework's entry points; what varies between them is passed in.
    """

    def __init__(self, core: Callable[[], Cache], tagging: ModelTagging) -> None:
        self._core = core
        self._tagging = tagging
        self._tags_memo: BoundedMemo[Any, tuple[str, ...]] = BoundedMemo()

    @property
    def core(self) -> Cache:
        """The underlying :class:`cacheplug.Cache`."""
        return self._core()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never the core's private state (nor a half-built self's)
            raise AttributeError(name)
        return getattr(self.core, name)

    def clear_tags_memo(self) -> None:
        """Forget the tags resolved so far (models are resolved again at the next read)."""
        self._tags_memo = BoundedMemo()

    def tags_for(
        self, tags: Iterable[str] | str | None, depends_on: Sequence[Any] = ()
    ) -> list[str]:
        """The tags an entry is stored with: ``tags``, the tags of ``depends_on`` models, and
        the "rows unknown" tags each row tag brings along."""
        named = (tags,) if isinstance(tags, str) else tuple(tags or ())
        memo = self._tags_memo
        memo_key: Any = (named, tuple(depends_on))
        try:
            found = memo.get(memo_key)
        except TypeError:  # an unhashable model argument: let model_tags() say what is wrong
            found, memo_key = None, None
        if found is None:
            tagging = self._tagging
            found = tuple(stored_tags([*named, *tagging.model_tags(*depends_on)], tagging.parents))
            if memo_key is not None:
                memo.remember(memo_key, found)
        return list(found)

    def _prepared(
        self,
        tags: Iterable[str] | str | None,
        depends_on: Sequence[Any] | str,
        loader: Callable[[], Any],
        options: dict[str, Any],
    ) -> tuple[list[str] | None, Callable[[], Any]]:
        """The tags a read passes to the core, and its loader: for an ``auto`` read (every
        read, with the setting), no tags up front, and a loader recording what it reads (its
        own ``tags`` and models declared first); under the audit, one watched."""
        tagging = self._tagging
        if is_auto(depends_on) or tagging.auto_default():
            # With the setting, what a read names is declared on top of what it reads.
            declared = self.tags_for(tags, () if is_auto(depends_on) else depends_on)
            if tagging.anything_uncommitted():
                options["max_staleness"] = 0  # its dependencies are not known before it loads
            return None, recording(loader, declared)
        if isinstance(depends_on, str):
            raise TypeError(
                f"depends_on takes models or {AUTO!r}, not {depends_on!r} (a model named by a "
                "string goes in a list)"
            )
        all_tags = self._read_tags(tags, depends_on, options)
        if depends_on and tagging.audit():
            return all_tags, audited(loader, all_tags or ())
        return all_tags, loader

    def _read_tags(
        self, tags: Iterable[str] | str | None, depends_on: Sequence[Any], options: dict[str, Any]
    ) -> list[str] | None:
        """The tags of a read, switching ``options`` to bypass the cache when the current
        transaction wrote what they depend on."""
        all_tags = self.tags_for(tags, depends_on)
        if not all_tags:
            return None
        if self._tagging.uncommitted(all_tags):
            options["max_staleness"] = 0  # our own uncommitted write: read around the cache
        return all_tags

    def read_tags(
        self, tags: Iterable[str] | str | None, depends_on: Sequence[Any] | str = ()
    ) -> tuple[str, ...] | None:
        """The tags a read with these arguments passes to the core: ``None`` for an ``auto``
        read (its entry records what its load read) or one without tags."""
        if is_auto(depends_on) or self._tagging.auto_default():
            return None
        return tuple(self.tags_for(tags, depends_on)) or None

    def edge_version_keys(
        self, tags: Iterable[str] | str | None, depends_on: Sequence[Any] | str = ()
    ) -> tuple[str, ...] | None:
        """The version keys a page read with these arguments is checked against (what its
        edge keys are made of); ``None`` for an ``auto`` read, whose dependencies are known
        only once its load ran: such a page is not given to the edge, which could then never
        be purged of it."""
        if is_auto(depends_on) or self._tagging.auto_default():
            return None
        core: Any = self._core()
        keys: tuple[str, ...] = core.version_keys(*self.tags_for(tags, depends_on))
        return keys

    def plain_hit(
        self,
        key: str,
        tags: tuple[str, ...] | None,
        store: bool = True,
        wanted: Callable[[Any], bool] = lambda value: True,
    ) -> Any:
        """The fresh value held for ``key`` read with ``tags`` (as :meth:`read_tags` gives
        them): from the L1 tier, or (``store``) from the store, if ``wanted(value)``;
        ``NOTHING`` for anything else (absent, stale, an uncommitted write of this thread's
        transaction, a pending invalidation, ...), which the general read decides and counts.
        See ``cacheplug._engine.plain_hits``; ``store=False`` for an event loop (no
        blocking)."""
        core = self._core()
        paths = core._engine._plain_hits_paths
        if paths is None or self._tagging.anything_uncommitted():
            return NOTHING
        if (log := _calls.get()) is None:
            return paths[store](key, tags, wanted)
        path = paths[store]
        return log.read(core, "page", key, tags, lambda _: path(key, tags, wanted))

    def get(self, key: str, default: Any = None) -> Any:
        """:meth:`cacheplug.Cache.get`."""
        if (log := _calls.get()) is None:
            return self.core.get(key, default)
        core = self.core
        return log.read(core, "get", key, None, lambda _: core.get(key, default))

    def get_or_load(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: Any = DEFAULT,
        *,
        tags: Iterable[str] | str | None = None,
        depends_on: Sequence[Any] | str = (),
        **options: Any,
    ) -> T:
        """:meth:`cacheplug.Cache.get_or_load`, plus ``depends_on``: models whose writes
        invalidate the entry, or ``"auto"``: what ``loader`` reads through the ORM (see
        :mod:`cacheplug.integration._capture`). Reads of what the current transaction wrote
        and has not committed yet go around the cache."""
        all_tags, loader = self._prepared(tags, depends_on, loader, options)
        if (log := _calls.get()) is None:
            return self.core.get_or_load(key, loader, ttl, tags=all_tags, **options)
        core = self.core

        def read(timed: Callable[[], T] | None) -> T:
            assert timed is not None
            return core.get_or_load(key, timed, ttl, tags=all_tags, **options)

        return cast("T", log.read(core, "get_or_load", key, all_tags, read, loader))

    async def aget_or_load(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: Any = DEFAULT,
        *,
        tags: Iterable[str] | str | None = None,
        depends_on: Sequence[Any] | str = (),
        **options: Any,
    ) -> Any:
        """Async :meth:`get_or_load`."""
        all_tags, loader = self._prepared(tags, depends_on, loader, options)
        return await self.core.aget_or_load(key, loader, ttl, tags=all_tags, **options)

    def set(
        self,
        key: str,
        value: Any,
        ttl: Any = DEFAULT,
        *,
        tags: Iterable[str] | str | None = None,
        depends_on: Sequence[Any] = (),
    ) -> bool:
        """:meth:`cacheplug.Cache.set`, plus ``depends_on``."""
        all_tags = self.tags_for(tags, depends_on) or None
        if (log := _calls.get()) is None:
            return self.core.set(key, value, ttl, tags=all_tags)
        started = time.perf_counter()
        try:
            return self.core.set(key, value, ttl, tags=all_tags)
        finally:
            log.wrote("set", key, all_tags, time.perf_counter() - started)

    async def aset(
        self,
        key: str,
        value: Any,
        ttl: Any = DEFAULT,
        *,
        tags: Iterable[str] | str | None = None,
        depends_on: Sequence[Any] = (),
    ) -> bool:
        """Async :meth:`set`."""
        return await self.core.aset(key, value, ttl, tags=self.tags_for(tags, depends_on) or None)

    def cached(
        self,
        ttl: Any = DEFAULT,
        *,
        key: Any = None,
        tags: Any = None,
        depends_on: Sequence[Any] | str = (),
        stale_ttl: Any = DEFAULT,
        early: Any = DEFAULT,
        refresh_ahead: Any = DEFAULT,
    ) -> CacheDecorator:
        """:meth:`cacheplug.Cache.cached`, plus ``depends_on``: models whose writes invalidate
        every cached result of the function, or ``"auto"``: what each call reads."""
        if is_auto(depends_on):
            options = ReadOptions(stale_ttl=stale_ttl, early=early, refresh_ahead=refresh_ahead)
            return CacheDecorator(cast("Cache", _AutoReads(self)), ttl, key, options, tags)
        extra = self._tagging.model_tags(*depends_on)  # now: a typo fails at import
        if callable(tags):
            user = tags
            tags = lambda *args, **kwargs: [*user(*args, **kwargs), *extra]  # noqa: E731
        elif extra:
            tags = [*([tags] if isinstance(tags, str) else tags or ()), *extra]
        options = ReadOptions(stale_ttl=stale_ttl, early=early, refresh_ahead=refresh_ahead)
        # The decorator calls this object's get_or_load: row tags and the bypass apply.
        return CacheDecorator(cast("Cache", self), ttl, key, options, tags)


class _AutoReads:
    """What a ``cached(depends_on="auto")`` function reads through: the tagged cache, its
    reads ``auto``."""

    def __init__(self, cache: TaggedCache) -> None:
        self._cache = cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cache, name)

    def get_or_load(
        self, key: str, loader: Callable[[], Any], ttl: Any = DEFAULT, **options: Any
    ) -> Any:
        return self._cache.get_or_load(key, loader, ttl, depends_on=AUTO, **options)

    async def aget_or_load(
        self, key: str, loader: Callable[[], Any], ttl: Any = DEFAULT, **options: Any
    ) -> Any:
        return await self._cache.aget_or_load(key, loader, ttl, depends_on=AUTO, **options)
