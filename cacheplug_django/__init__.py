"""Django integration for cacheplug (the ``cacheplug_django`` app).

Add ``"cacheplug_django"`` to ``INSTALLED_APPS`` and a ``CACHEPLUG`` dict to the settings (see
``cacheplug_django.conf``); then::

    from cacheplug_django import cache, instance_tag

    @cache.cached(ttl=600, depends_on=[Product])
    def bestsellers(): ...

Every ORM write (``save``, ``delete``, ``QuerySet.update``/``delete``, bulk operations,
many-to-many changes, raw SQL on a Django cursor) invalidates what depends on the rows and
tables it wrote, after its transaction commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cacheplug_django._cache import DjangoCache
    from cacheplug_django._state import edge_purges, outbox_relays
    from cacheplug_django.sinks import upsert_sink
    from cacheplug_django.tags import instance_tag, model_tags
    from cacheplug_django.views import cache_view, invalidate_pages
    from cacheplug_django.warmers import warmer

    cache: DjangoCache

__all__ = [
    "cache",
    "cache_view",
    "edge_purges",
    "instance_tag",
    "invalidate_pages",
    "model_tags",
    "outbox_relays",
    "upsert_sink",
    "warmer",
]


def __getattr__(name: str) -> Any:
    # Importing the package must not import Django's models before the app registry is ready
    # (``INSTALLED_APPS`` imports it first); these load on first use.
    if name == "cache":
        from cacheplug_django._state import cache

        return cache
    if name in ("outbox_relays", "edge_purges"):
        from cacheplug_django import _state

        return getattr(_state, name)
    if name in ("cache_view", "invalidate_pages"):
        from cacheplug_django import views

        return getattr(views, name)
    if name == "warmer":
        from cacheplug_django.warmers import warmer

        return warmer
    if name == "upsert_sink":
        from cacheplug_django.sinks import upsert_sink

        return upsert_sink
    if name in ("instance_tag", "model_tags"):
        from cacheplug_django import tags

        return getattr(tags, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
