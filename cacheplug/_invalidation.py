"""Invalidation: what ``invalidate``/``invalidate_tags``/``bump`` share between the sync and
async APIs, nested namespaces, the invalidation bus and the queue of invalidations waiting
for the store (``_pending``).

An invalidation detaches the in-process loads it concerns at once, then goes to the store;
if the store cannot take it, it is queued and retried, and reads it affects bypass the cache
in this process until it lands.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self

from cacheplug._config import non_negative
from cacheplug._exceptions import CacheUnavailable
from cacheplug._memo import BoundedMemo
from cacheplug._pending import PendingInvalidation
from cacheplug._reads import ReadPolicies
from cacheplug._stampede import CALL, Plan
from cacheplug._tags import fresh_version
from cacheplug._types import FAILED
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
        view._recorded_keys = BoundedMemo()
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
        for flights in (self._flights, self._aflights):
            if store_key is None:  # invalidations may have been missed
                flights.detach_all()
            else:
                flights.detach(store_key)
                flights.detach_tagged(store_key)

    def _detach(self, entries: Sequence[tuple[str, str]], version_keys: Sequence[str]) -> None:
        """Callers arriving from now on must not join loads of these keys or tags, nor be
        answered from this process's L1."""
        self._drop_local([skey for skey, _ in entries])
        self._drop_local(version_keys)
        for skey, _ in entries:
            self._flights.detach(skey)
            self._aflights.detach(skey)
        for key in version_keys:
            self._flights.detach_tagged(key)
            self._aflights.detach_tagged(key)

    def _key_invalidation(self, keys: Iterable[str]) -> list[tuple[str, str]]:
        """The (entry, lease) store keys of ``keys``; detaches their in-process loads."""
        entries = [(skey, self._keys.lease_of(skey)) for skey in self._keys.data_many(list(keys))]
        self._detach(entries, ())
        self._counters.invalidations += len(entries)
        return entries

    def _version_invalidation(self, version_keys: Sequence[str]) -> tuple[list[str], list[int]]:
        """The arguments of ``bump_versions``; detaches in-process loads carrying them."""
        self._detach((), version_keys)
        self._counters.invalidations += len(version_keys)
        return list(version_keys), [fresh_version() for _ in version_keys]

    def _invalidate_plan(self, operation: str, keys: Iterable[str]) -> Plan:
        """Invalidate ``keys`` in the store (queued if it cannot be reached): how many
        entries existed, or ``FAILED``."""
        entries = self._key_invalidation(keys)
        result = yield (CALL, operation, "invalidate", False, (entries,))
        if result is FAILED:
            self._queue(operation, entries)
        else:
            # Again: a load may have started between the first detach and the store call,
            # and read the old value.
            self._detach(entries, ())
        return result

    def _invalidate_entries(self, operation: str, keys: Iterable[str]) -> Any:
        """:meth:`_invalidate_plan` with blocking calls."""
        return self._run(self._invalidate_plan(operation, keys))

    async def _ainvalidate_entries(self, operation: str, keys: Iterable[str]) -> Any:
        """:meth:`_invalidate_plan` with ``await``."""
        return await self._arun(self._invalidate_plan(operation, keys))

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

    def _again(self, delay: float | None, invalidate: Callable[[], object]) -> None:
        """Run ``invalidate`` once more after ``delay`` seconds (a delayed double delete);
        scheduled before the first attempt, so that a strict failure does not skip it."""
        if delay is None:
            return

        def again() -> None:
            self._timers.discard(timer)
            with contextlib.suppress(CacheUnavailable):  # queued: the retry thread applies it
                invalidate()

        timer = threading.Timer(non_negative("again_after", delay), again)
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def _bump_now(self, version_keys: Sequence[str], kind: str) -> None:
        keys, fresh = self._version_invalidation(version_keys)
        bump = self._store.bump_versions
        result = self._call(kind, False, bump, keys, fresh, self._version_keep_ms())
        self._bumped(kind, keys, result)

    async def _abump_now(self, version_keys: Sequence[str], kind: str) -> None:
        keys, fresh = self._version_invalidation(version_keys)
        bump = self._store.abump_versions
        result = await self._acall(kind, False, bump, keys, fresh, self._version_keep_ms())
        self._bumped(kind, keys, result)

    def _bumped(self, kind: str, version_keys: list[str], result: Any) -> None:
        if result is FAILED:
            self._queue(kind, (), [(key, kind) for key in version_keys])
        else:
            self._detach((), version_keys)

    def _shutdown(self, flush_timeout: float) -> None:
        for timer in list(self._timers):
            timer.cancel()  # what a delayed invalidation would do is done by now or lost
        self._pending.flush(flush_timeout)
        self._pending.stop()
        self._background.shutdown()
        while self._bus:
            self._bus.pop()()
        if self._local is not None:
            self._local.close()
