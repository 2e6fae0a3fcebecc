"""The adapter's process-wide objects: the settings, the cache built from them, the ORM hooks
feeding it invalidations."""

from __future__ import annotations

import threading
from typing import Final

from django.conf import settings as django_settings
from django.db import connections

from cacheplug import Cache
from cacheplug.integration import EdgePurges, OutboxRelay, cache_relay, start_edge_purges
from cacheplug_django._cache import DjangoCache
from cacheplug_django.conf import SettingsHolder, outbox_enabled
from cacheplug_django.orm import Invalidate, WriteHooks, committed
from cacheplug_django.outbox import DjangoOutbox, OutboxWrites

settings: Final = SettingsHolder()


def _relay_at_start(_: object) -> None:
    """Once the cache is built: relay what a process that died left in each database's
    outbox, on a thread (looking for the table is a query)."""
    if not outbox_enabled():
        return

    def start() -> None:
        for alias in django_settings.DATABASES:
            if _in_memory(alias):
                continue  # nothing another process could have left there
            try:
                if hooks.outbox is not None and hooks.outbox.active(connections[alias]):
                    _relay_for(alias)
            finally:
                connections[alias].close()  # this thread's own connection

    threading.Thread(target=start, name="cacheplug-outbox-start", daemon=True).start()


_edge: list[EdgePurges] = []


def _purge_edge(core: Cache) -> None:
    """Once the cache is built: purge the edge ``EDGE`` names after each of its
    invalidations that landed (those of a cache built before stop)."""
    while _edge:
        _edge.pop().close(timeout=0.0)
    purges = start_edge_purges(core, settings.get().edge)
    if purges is not None:
        _edge.append(purges)


def edge_purges() -> EdgePurges | None:
    """The queue purging the edge cache ``CACHEPLUG["EDGE"]`` names (``None`` before the cache
    is built, or without a ``PURGE_URL``): ``waiting()``, ``purged``, ``failures``,
    ``flush(timeout)``."""
    return _edge[0] if _edge else None


def _built(core: Cache) -> None:
    _purge_edge(core)
    _relay_at_start(core)


cache: Final = DjangoCache(settings, on_built=_built)


def _invalidator() -> Invalidate | None:
    if not settings.get().invalidate_on_write:
        return None
    core = cache.core
    return lambda tags, again_after: core.invalidate_tags(*tags, again_after=again_after)


_relays: dict[str, OutboxRelay] = {}


def _relay_for(alias: str) -> OutboxRelay | None:
    """The relay of database ``alias``'s outbox, started on first use."""
    relay = _relays.get(alias)
    if relay is None:
        try:
            core = cache.core
        except Exception:  # a cache that cannot be set up: the rows wait for one that can
            return None
        # SQLite locks the database for a write: delivered rows go with the app's next write.
        sqlite = connections[alias].vendor == "sqlite"
        relay = _relays.setdefault(
            alias,
            cache_relay(
                DjangoOutbox(alias), core, alias, deletes_delivered=not sqlite, edge=edge_purges
            ),
        )
        if not _in_memory(alias):
            # An in-memory database dies with the process, rows and all: nothing to relay
            # for another process, and a second thread on it makes SQLite's shared-cache
            # tables "locked" for the application's own (its tests' included).
            relay.start()
    return relay


def outbox_relays() -> dict[str, OutboxRelay]:
    """The outbox relays this process runs, by database alias (a copy), for
    :class:`cacheplug.prometheus.CacheCollector` and the staff dashboard: one per database
    whose outbox this process wrote to or relays. Empty while the outbox is off
    (``CACHEPLUG["OUTBOX"] = False``)."""
    return dict(_relays) if outbox_enabled() else {}


def _in_memory(alias: str) -> bool:
    connection = connections[alias]
    # SQLite's backend has is_in_memory_db(); no other backend keeps a database in memory.
    in_memory = getattr(connection, "is_in_memory_db", None)
    return connection.vendor == "sqlite" and callable(in_memory) and bool(in_memory())


def _landed() -> bool:
    """True when the invalidations sent so far reached the store (nothing held, nothing
    pending)."""
    try:
        return not committed.held() and not cache.core.pending_invalidations()
    except Exception:
        return False


hooks: Final = WriteHooks(
    _invalidator, OutboxWrites(outbox_enabled, _relay_for, edge_purges), _landed
)


def publish_stats() -> None:
    """Share this process's counters (at most every 10 s), once the cache is in use."""
    core = cache.built
    if core is not None:
        core.publish_stats(every=10.0)
