"""The adapter's process-wide objects: the settings, the cache built from them, the ORM hooks
feeding it invalidations."""

from __future__ import annotations

from typing import Final

from cacheplug_django._cache import DjangoCache
from cacheplug_django.conf import SettingsHolder
from cacheplug_django.orm import Invalidate, WriteHooks

settings: Final = SettingsHolder()
cache: Final = DjangoCache(settings)


def _invalidator() -> Invalidate | None:
    if not settings.get().invalidate_on_write:
        return None
    core = cache.core
    return lambda tags, again_after: core.invalidate_tags(*tags, again_after=again_after)


hooks: Final = WriteHooks(_invalidator)


def publish_stats() -> None:
    """Share this process's counters (at most every 10 s), once the cache is in use."""
    core = cache.built
    if core is not None:
        core.publish_stats(every=10.0)
