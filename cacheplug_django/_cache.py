"""``cacheplug_django.cache``: the project's :class:`cacheplug.Cache`, built from the
``CACHEPLUG`` setting on first use, with Django's vocabulary added: ``depends_on=`` models,
row tags kept coherent with every ORM write, and a transaction's own reads bypassing what it
wrote."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

from django.db import models

from cacheplug import DEFAULT, Cache, CacheDecorator, CacheUnavailable, store_from_url
from cacheplug.integration import ReadOptions
from cacheplug_django.conf import SettingsHolder, shared_pool, store_url
from cacheplug_django.orm import committed, pending_covers
from cacheplug_django.tags import model_tags, stored_tags

T = TypeVar("T")
logger = logging.getLogger("cacheplug_django")
Models = Sequence[type[models.Model] | str]


class DjangoCache:
    """The configured cache. Every :class:`cacheplug.Cache` method is available; reads also
    take ``depends_on=[Model, "app.Model"]``."""

    def __init__(self, settings: SettingsHolder) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._cache: Cache | None = None
        # Call sites pass the same tags and models again and again: resolve them once.
        self._tags_memo: dict[Any, tuple[str, ...]] = {}

    @property
    def core(self) -> Cache:
        """The underlying :class:`cacheplug.Cache` (built on first use)."""
        cache = self._cache
        if cache is None:
            with self._lock:
                cache = self._cache
                if cache is None:
                    current = self._settings.get()
                    url = store_url(current.store)
                    pool = shared_pool(current.store)
                    if pool is not None and url is not None:
                        from cacheplug.stores.redis import RedisStore  # needs redis-py

                        store: Any = RedisStore(url, connection_pool=pool)
                    else:
                        store = None if url is None else store_from_url(url)
                    cache = self._cache = Cache(store, **current.options)
                    # Invalidations of writes committed while the cache could not be built
                    # apply before it answers its first read.
                    committed.replay(cache)
        return cache

    @property
    def built(self) -> Cache | None:
        """The underlying cache if it has been built (``None`` before first use)."""
        return self._cache

    def reset(self) -> None:
        """Close the cache; the next use builds it from the settings again."""
        with self._lock:
            cache, self._cache = self._cache, None
            self._tags_memo = {}
        self._settings.reset()
        if cache is not None:
            cache.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.core, name)

    def __repr__(self) -> str:
        return f"<DjangoCache {self._cache!r}>"

    def tags_for(self, tags: Iterable[str] | str | None, depends_on: Models = ()) -> list[str]:
        """The tags an entry is stored with: ``tags``, the tags of ``depends_on`` models, and
        what row tags bring along (see ``cacheplug_django.tags``)."""
        named = (tags,) if isinstance(tags, str) else tuple(tags or ())
        memo_key: Any = (named, tuple(depends_on))
        try:
            found = self._tags_memo.get(memo_key)
        except TypeError:  # an unhashable model argument: let model_tags() say what is wrong
            found, memo_key = None, None
        if found is None:
            found = tuple(stored_tags([*named, *model_tags(*depends_on)]))
            if memo_key is not None:
                if len(self._tags_memo) >= 4096:
                    self._tags_memo.clear()
                self._tags_memo[memo_key] = found
        return list(found)

    def get_or_load(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: Any = DEFAULT,
        *,
        tags: Iterable[str] | str | None = None,
        depends_on: Models = (),
        **options: Any,
    ) -> T:
        """:meth:`cacheplug.Cache.get_or_load`, plus ``depends_on``: models whose writes
        invalidate the entry."""
        all_tags = self.tags_for(tags, depends_on)
        if all_tags and pending_covers(all_tags):
            options["max_staleness"] = 0  # our own uncommitted write: read around the cache
        return self.core.get_or_load(key, loader, ttl, tags=all_tags or None, **options)

    async def aget_or_load(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: Any = DEFAULT,
        *,
        tags: Iterable[str] | str | None = None,
        depends_on: Models = (),
        **options: Any,
    ) -> Any:
        """Async :meth:`get_or_load`."""
        all_tags = self.tags_for(tags, depends_on)
        if all_tags and pending_covers(all_tags):
            options["max_staleness"] = 0
        return await self.core.aget_or_load(key, loader, ttl, tags=all_tags or None, **options)

    def set(
        self,
        key: str,
        value: Any,
        ttl: Any = DEFAULT,
        *,
        tags: Iterable[str] | str | None = None,
        depends_on: Models = (),
    ) -> bool:
        """:meth:`cacheplug.Cache.set`, plus ``depends_on``."""
        all_tags = self.tags_for(tags, depends_on)
        return self.core.set(key, value, ttl, tags=all_tags or None)

    def write_around(
        self,
        key: str,
        writer: Callable[[], T],
        *,
        tags: Iterable[str] | str | None = None,
        using: str = "default",
    ) -> T:
        """Run ``writer()``, then invalidate ``key`` (and ``tags``): at once, or, inside
        ``atomic()`` on database ``using``, when the transaction commits (before that, a
        reader could cache what it still sees)."""
        from django.db import connections, transaction

        def invalidate_now() -> None:
            self.core.invalidate(key)
            if tags:
                self.core.invalidate_tags(*([tags] if isinstance(tags, str) else tags))

        def invalidate() -> None:
            # After the write: a strict cache's CacheUnavailable (the invalidation is queued
            # and retried) must not turn the write into an error.
            try:
                invalidate_now()
            except CacheUnavailable as exc:
                logger.warning("cacheplug: write_around(%r): %s", key, exc)

        try:
            return writer()
        finally:
            if connections[using].in_atomic_block:
                invalidate()  # now, for other readers of the old value...
                transaction.on_commit(invalidate, using=using)  # ...and after the commit
            else:
                invalidate()

    def cached(
        self,
        ttl: Any = DEFAULT,
        *,
        key: Any = None,
        tags: Any = None,
        depends_on: Models = (),
        stale_ttl: Any = DEFAULT,
        early: Any = DEFAULT,
        refresh_ahead: Any = DEFAULT,
    ) -> CacheDecorator:
        """:meth:`cacheplug.Cache.cached`, plus ``depends_on``: models whose writes invalidate
        every cached result of the function."""
        extra = model_tags(*depends_on)  # resolved now: a typo fails at import, not per call
        if callable(tags):
            user = tags
            tags = lambda *args, **kwargs: [*user(*args, **kwargs), *extra]  # noqa: E731
        elif extra:
            tags = [*([tags] if isinstance(tags, str) else tags or ()), *extra]
        options = ReadOptions(stale_ttl=stale_ttl, early=early, refresh_ahead=refresh_ahead)
        # The decorator calls this object's get_or_load: row tags and transactions apply.
        return CacheDecorator(cast(Cache, self), ttl, key, options, tags)
