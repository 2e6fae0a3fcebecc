"""Invalidation: what ``invalidate``/``invalidate_tags``/``bump`` share between the sync and
async APIs, the invalidation bus and the queue of invalidations waiting for the store
(``pending``). An :class:`Invalidator` is a component of the engine, holding its state.

An invalidation detaches the in-process loads it concerns at once, then goes to the store;
if the store cannot take it, it is queued and retried, and reads it affects bypass the cache
in this process until it lands.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cacheplug._config import non_negative
from cacheplug._engine.plans import CALL, Plan, StoreOp
from cacheplug._engine.state import EngineState
from cacheplug._types import FAILED
from cacheplug.encoding._tags import fresh_version
from cacheplug.exceptions import CacheUnavailable


class Invalidator:
    """Invalidating keys, tags and namespaces of one engine; the bus; pending invalidations."""

    __slots__ = ("_engine",)

    def __init__(self, engine: EngineState) -> None:
        self._engine = engine

    def listen_to_bus(self) -> None:
        """Detach in-process loads when another process invalidates their key or tag."""
        if not self._engine._bus:
            self._engine._bus.append(
                self._engine._store.fills.on_invalidation(self._invalidated_elsewhere)
            )

    def _invalidated_elsewhere(self, store_key: str | None) -> None:
        for flights in (self._engine._flights, self._engine._aflights):
            if store_key is None:  # invalidations may have been missed
                flights.detach_all()
            else:
                flights.detach(store_key)
                flights.detach_tagged(store_key)

    def _detach(self, entries: Sequence[tuple[str, str]], version_keys: Sequence[str]) -> None:
        """Callers arriving from now on must not join loads of these keys or tags, nor be
        answered from this process's L1."""
        self._engine._drop_local([skey for skey, _ in entries])
        self._engine._drop_local(version_keys)
        for skey, _ in entries:
            self._engine._flights.detach(skey)
            self._engine._aflights.detach(skey)
        for key in version_keys:
            self._engine._flights.detach_tagged(key)
            self._engine._aflights.detach_tagged(key)

    def _key_invalidation(self, keys: Iterable[str]) -> list[tuple[str, str]]:
        """The (entry, lease) store keys of ``keys``; detaches their in-process loads."""
        entries = [
            (skey, self._engine._keys.lease_of(skey))
            for skey in self._engine._keys.data_many(list(keys))
        ]
        self._detach(entries, ())
        self._engine._counters.invalidations += len(entries)
        return entries

    def _version_invalidation(self, version_keys: Sequence[str]) -> tuple[list[str], list[int]]:
        """The arguments of ``bump_versions``; detaches in-process loads carrying them."""
        self._detach((), version_keys)
        self._engine._counters.invalidations += len(version_keys)
        return list(version_keys), [fresh_version() for _ in version_keys]

    def plan(self, operation: str, keys: Iterable[str]) -> Plan:
        """Invalidate ``keys`` in the store (queued if it cannot be reached): how many
        entries existed, or ``FAILED``."""
        entries = self._key_invalidation(keys)
        result = yield (CALL, operation, StoreOp.INVALIDATE, False, (entries,))
        if result is FAILED:
            self._queue(operation, entries)
        else:
            # Again: a load may have started between the first detach and the store call,
            # and read the old value.
            self._detach(entries, ())
        return result

    def entries(self, operation: str, keys: Iterable[str]) -> Any:
        """:meth:`_invalidate_plan` with blocking calls."""
        return self._engine._run(self.plan(operation, keys))

    async def aentries(self, operation: str, keys: Iterable[str]) -> Any:
        """:meth:`_invalidate_plan` with ``await``."""
        return await self._engine._arun(self.plan(operation, keys))

    def _queue(
        self,
        operation: str,
        entries: Sequence[tuple[str, str]],
        versions: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Keep an invalidation the store did not take, to retry it; raise if strict."""
        self._engine._pending.add(entries, versions)
        self._engine._counters.queued_invalidations += len(entries) + len(versions)
        if self._engine.strict:
            raise CacheUnavailable(
                f"{operation} could not reach the store; it is queued and retried until it "
                "does (see pending_invalidations())"
            )

    def again(self, delay: float | None, invalidate: Callable[[], object]) -> None:
        """Run ``invalidate`` once more after ``delay`` seconds (a delayed double delete);
        scheduled before the first attempt, so that a strict failure does not skip it."""
        if delay is None:
            return

        def again() -> None:
            self._engine._timers.discard(timer)
            with contextlib.suppress(CacheUnavailable):  # queued: the retry thread applies it
                invalidate()

        timer = threading.Timer(non_negative("again_after", delay), again)
        timer.daemon = True
        self._engine._timers.add(timer)
        timer.start()

    def bump(self, version_keys: Sequence[str], kind: str) -> None:
        keys, fresh = self._version_invalidation(version_keys)
        bump = self._engine._store.bump_versions
        result = self._engine._call(kind, False, bump, keys, fresh, self._engine._version_keep_ms())
        self._bumped(kind, keys, result)

    async def abump(self, version_keys: Sequence[str], kind: str) -> None:
        keys, fresh = self._version_invalidation(version_keys)
        bump = self._engine._store.abump_versions
        result = await self._engine._acall(
            kind, False, bump, keys, fresh, self._engine._version_keep_ms()
        )
        self._bumped(kind, keys, result)

    def _bumped(self, kind: str, version_keys: list[str], result: Any) -> None:
        if result is FAILED:
            self._queue(kind, (), [(key, kind) for key in version_keys])
        else:
            self._detach((), version_keys)
            self._engine._tell_landed(version_keys)

    def shutdown(self, flush_timeout: float) -> None:
        for timer in list(self._engine._timers):
            timer.cancel()  # what a delayed invalidation would do is done by now or lost
        self._engine._pending.flush(flush_timeout)
        self._engine._pending.stop()
        self._engine._background.shutdown()
        while self._engine._bus:
            self._engine._bus.pop()()
        if self._engine._local is not None:
            self._engine._local.close()
