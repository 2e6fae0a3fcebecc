"""``cacheplug_django.cache``: the project's :class:`cacheplug.Cache`, built from the
``CACHEPLUG`` setting on first use, with Django's vocabulary added: ``depends_on=`` models,
row tags kept coherent with every ORM write, and a transaction's own reads bypassing what it
wrote (the shared :class:`cacheplug.integration.TaggedCache`, told about Django's ORM)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Final, TypeVar

from django.db import models

from cacheplug import Cache, CacheUnavailable
from cacheplug.integration import ModelTagging, TaggedCache
from cacheplug_django.conf import (
    SettingsHolder,
    audit_dependencies,
    auto_dependencies,
    build_store,
)
from cacheplug_django.orm import committed, pending_any, pending_covers
from cacheplug_django.tags import model_tags, parents_of

T = TypeVar("T")
logger = logging.getLogger("cacheplug_django")
Models = Sequence[type[models.Model] | str]
DJANGO_ORM: Final = ModelTagging(
    model_tags,
    parents_of,
    pending_covers,
    anything_uncommitted=pending_any,
    auto_default=auto_dependencies,
    audit=audit_dependencies,
)
"""Django's answers to :class:`~cacheplug.integration.TaggedCache`: the tags of models and
their parents' tables, what the thread's open transactions wrote, and the dependency
settings."""


class DjangoCache(TaggedCache):
    """The configured cache. Every :class:`cacheplug.Cache` method is available; reads also
    take ``depends_on=[Model, "app.Model"]``."""

    def __init__(
        self, settings: SettingsHolder, on_built: Callable[[Cache], None] | None = None
    ) -> None:
        super().__init__(self._built_or_build, DJANGO_ORM)
        self._settings = settings
        self._on_built = on_built
        self._lock = threading.Lock()
        self._cache: Cache | None = None

    def _built_or_build(self) -> Cache:
        cache = self._cache
        built = False
        if cache is None:
            with self._lock:
                cache = self._cache
                if cache is None:
                    current = self._settings.get()
                    cache = self._cache = Cache(build_store(current.store), **current.options)
                    # Invalidations of writes committed while the cache could not be built
                    # apply before it answers its first read.
                    committed.replay(cache)
                    built = True
        if built and self._on_built is not None:
            self._on_built(cache)
        return cache

    @property
    def built(self) -> Cache | None:
        """The underlying cache if it has been built (``None`` before first use)."""
        return self._cache

    def reset(self) -> None:
        """Close the cache; the next use builds it from the settings again."""
        with self._lock:
            cache, self._cache = self._cache, None
            self.clear_tags_memo()
        self._settings.reset()
        if cache is not None:
            cache.close()

    def __repr__(self) -> str:
        return f"<DjangoCache {self._cache!r}>"

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
