"""Invalidation: what ``invalidate``/``invalidate_tags``/``bump`` share between the sync and
async APIs, nested namespaces, the invalidation bus and the queue of invalidations waiting
for the store (``_pending``).

An invalidation detaches the in-process loads it concerns at once, then goes to the store;
if the store cannot take it, it is queued and retried, and reads it affects bypass the cache
in this process until it lands.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Self

from cacheplug._config import non_negative
from cacheplug._exceptions import CacheUnavailable
from cacheplug._io import FAILED
from cacheplug._pending import PendingInvalidation
from cacheplug._reads import ReadPolicies
from cacheplug._tags import fresh_version
from cacheplug.stores.fills import InvalidationCallback


class Invalidations(ReadPolicies):
    """Invalidating keys, tags and namespaces; the bus; pending invalidations."""

    def namespace(self, name: str) -> Self:
        """A view of this cache whose keys live in the nested namespace ``name``.

        ``cache.namespace("catalog").bump()`` orphans every entry under it at once (O(1));
        the old entries age out by their TTL. The view has the whole API of the cache and
        shares its store, settings and tags: ``invalidate_tags`` on either reaches entries of
        both. Close the cache, not its views.
        """
        view = copy.copy(self)
        view._keys = self._keys.child(name)
        view._versions = self._versions.nested(view._keys)
        view._implicit = view._versions.implicit
        view._recorded_keys = {}
        return view

    def on_invalidation(self, callback: InvalidationCallback) -> Callable[[], None]:
        """Call ``callback(store_key)`` for every invalidation of a key, tag or namespace on
        this cache's store, made by this process or (on a shared store) any other — the
        invalidation bus. ``store_key`` is ``None`` when some may have been missed (the bus
        connection dropped): drop every local copy then. Returns a function that
        unsubscribes. The callback runs on the bus thread: keep it short."""
        return self._store.fills.on_invalidation(callback)

    def pending_invalidations(self) -> list[PendingInvalidation]:
        """Invalidations that could not reach the store yet (they are retried
        with backoff; until then this process bypasses the cache for what they affect)."""
        return self._pending.items()

    def _listen_to_bus(self) -> None:
        """Detach in-process loads when another process invalidates their key or tag."""
        if not self._bus:
            self._bus.append(self._store.fills.on_invalidation(self._invalidated_elsewhere))

    def _invalidated_elsewhere(self, store_key: str | None) -> None:
        if store_key is None:
            return
        for flights in (self._flights, self._aflights):
            flights.detach(store_key)
            flights.detach_tagged(store_key)

    def _key_invalidation(self, keys: Iterable[str]) -> list[tuple[str, str]]:
        """The (entry, lease) store keys of ``keys``; detaches their in-process loads."""
        entries = []
        for skey in self._keys.data_many(list(keys)):
            self._flights.detach(skey)
            self._aflights.detach(skey)
            entries.append((skey, self._keys.lease_of(skey)))
        self._counters.invalidations += len(entries)
        return entries

    def _version_invalidation(self, version_keys: Sequence[str]) -> tuple[list[str], list[int]]:
        """The arguments of ``bump_versions``; detaches in-process loads carrying them."""
        for key in version_keys:
            self._flights.detach_tagged(key)
            self._aflights.detach_tagged(key)
        self._counters.invalidations += len(version_keys)
        return list(version_keys), [fresh_version() for _ in version_keys]

    def _queue(
        self,
        operation: str,
        entries: Sequence[tuple[str, str]],
        versions: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Keep an invalidation the store did not take, to retry it; raise if strict."""
        self._pending.add(entries, versions)
        self._counters.queued_invalidations += len(entries) + len(versions)
        if self.strict:
            raise CacheUnavailable(
                f"{operation} could not reach the store; it is queued and retried until it "
                "does (see pending_invalidations())"
            )

    def _again(self, delay: float, invalidate: Callable[[], None]) -> None:
        """Run ``invalidate`` once more after ``delay`` seconds (a delayed double delete)."""
        timer = threading.Timer(non_negative("again_after", delay), invalidate)
        timer.daemon = True
        timer.start()

    def _invalidate_now(self, keys: Iterable[str]) -> None:
        entries = self._key_invalidation(keys)
        if self._call("invalidate", False, self._store.invalidate, entries) is FAILED:
            self._queue("invalidate", entries)

    def _bump_now(self, version_keys: Sequence[str], kind: str) -> None:
        keys, fresh = self._version_invalidation(version_keys)
        bump = self._store.bump_versions
        if self._call(kind, False, bump, keys, fresh, self._version_keep_ms()) is FAILED:
            self._queue(kind, (), [(key, kind) for key in keys])

    async def _abump_now(self, version_keys: Sequence[str], kind: str) -> None:
        keys, fresh = self._version_invalidation(version_keys)
        bump = self._store.abump_versions
        if await self._acall(kind, False, bump, keys, fresh, self._version_keep_ms()) is FAILED:
            self._queue(kind, (), [(key, kind) for key in keys])

    def _shutdown(self, flush_timeout: float) -> None:
        self._pending.flush(flush_timeout)
        self._pending.stop()
        self._background.shutdown()
        while self._bus:
            self._bus.pop()()
