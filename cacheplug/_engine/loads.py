"""Loading a key: the plans that fill a missing key under its lease or refresh one in the
background, with what a waiter may take and how a loaded value is stored.

A :class:`Loads` component holds the engine; the sync and async APIs run its plans with their
own driver. Each load is watched (:class:`~cacheplug._engine.watch.LoadWatch`): timed, its
lease wait timed, and followed by the cache's tracer if one is set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cacheplug._config import ttl_ms
from cacheplug._engine.depends import current, loading
from cacheplug._engine.discovery import Discovery
from cacheplug._engine.flights import reentered
from cacheplug._engine.plans import (
    STORE,
    Encoder,
    Ensure,
    Plan,
    ReadPolicy,
    StoreOp,
    fill_plan,
    refresh_plan,
)
from cacheplug._engine.reads import Engine, GetOrLoadArgs, Refresh
from cacheplug._engine.watch import LoadWatch
from cacheplug._types import FAILED, MISSING
from cacheplug.encoding._tags import Unread, checks, parse_versions
from cacheplug.stores.base import VersionCheck
from cacheplug.stores.fills import Waiter

Keys = tuple[str, ...]
"""An entry's version keys."""
Loader = Callable[[], Any]
"""A loader, sync or (on the async path) a coroutine function."""


class Loads:
    """The fill and refresh plans of one engine."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _ensure(self, skey: str, version_keys: Sequence[str]) -> Ensure:
        """The fill plan's step creating absent version keys (``values[1:]`` are theirs)."""

        def ensure(values: Any) -> Any:
            if not isinstance(values, list):
                return None
            needed = self._engine._absent_versions(version_keys, values[1:], skey)
            if needed is None:
                return None
            positions, args = needed
            shifted = [position + 1 for position in positions]
            step = (STORE, StoreOp.ENSURE_VERSIONS, False, args)
            return step, lambda read, created: self._engine._merge_versions(read, shifted, created)

        return ensure

    def _usable(
        self, skey: str, version_keys: Sequence[str], policy: ReadPolicy
    ) -> Callable[[Any], Any]:
        """What a waiter may take from the store: a valid entry, fresh or stale by at most
        ``stale_ttl`` seconds."""
        stale_ttl = policy.stale_ttl
        max_staleness = policy.max_staleness

        def decide(values: Any) -> Any:
            if not isinstance(values, list):  # the read failed
                return MISSING
            entry = self._engine._valid(skey, values, version_keys, max_staleness)
            if entry is None or isinstance(entry, Unread):
                return MISSING
            if entry.fresh_until >= self._engine._now() - stale_ttl:
                self._engine._counters.coalesced += 1
                return entry.value
            return MISSING

        return decide

    def _encoder(
        self,
        skey: str,
        version_keys: Sequence[str],
        policy: ReadPolicy,
        discovery: Discovery | None = None,
    ) -> Encoder:
        """How a loaded value is stored: with the versions read after taking the lease, and
        those of the tags the load discovered (read before what they stand for)."""

        def encode(
            value: Any, elapsed: float, read: Any
        ) -> tuple[bytes, int | None, list[VersionCheck]] | None:
            if not isinstance(read, list):  # the versions are unknown: do not store
                return None
            ttl = policy.ttl_for(value)
            if ttl == 0 or self._engine._bypass(skey, version_keys):
                return None
            made = checks(version_keys, parse_versions(version_keys, read[1:]))
            if made is None:
                return None
            recorded, conditions = made
            if discovery is not None and (
                discovery.versions or discovery.guards or not discovery.storable
            ):
                if not discovery.storable:
                    return None
                found, found_checks = discovery.recorded()
                recorded, conditions = (*recorded, *found), [*conditions, *found_checks]
                self._engine._remember_recorded(skey, recorded)  # read with it from now on
            record = self._engine._encode(skey, value, ttl, elapsed, recorded=recorded)
            if record is None:
                return None
            return record, self._engine._store_ttl_ms(ttl, policy.stale_ttl), conditions

        return encode

    def fill_plan(
        self,
        skey: str,
        version_keys: Sequence[str],
        policy: ReadPolicy,
        *,
        check_first: bool,
        discovery: Discovery | None = None,
        watch: LoadWatch | None = None,
    ) -> Plan:
        read_keys = [skey, *version_keys]
        usable = self._usable(skey, version_keys, policy)
        ensure = self._ensure(skey, version_keys)
        encode = self._encoder(skey, version_keys, policy, discovery)
        expect: Callable[[str], Waiter] = self._engine._store.fills.expect
        if watch is not None:
            encode, expect = watch.encode(encode), watch.expect(expect)
        if discovery is not None and discovery.ahead_keys:
            # The versions the loader will likely name, in the fill's own reads.
            usable, ensure, encode = _reading_ahead(
                len(read_keys), usable, ensure, encode, discovery
            )
            read_keys += discovery.ahead_keys
        return fill_plan(
            key=skey,
            lease_key=self._engine._keys.lease_of(skey),
            read_keys=read_keys,
            usable=usable,
            ensure=ensure,
            encode=encode,
            lock_timeout_ms=ttl_ms(self._engine.lock_timeout) or 1,
            wait_timeout=self._engine.wait_timeout,
            expect=expect,
            fills_live=lambda: self._engine._store.fills.live,
            missing=MISSING,
            failed=FAILED,
            check_first=check_first,
            monotonic=self._engine._clock.monotonic,
        )

    def _refresh_plan(self, refresh: Refresh, discovery: Discovery, watch: LoadWatch) -> Plan:
        skey, version_keys, _, policy, seen_created_at = refresh

        def refreshed_meanwhile(values: Any) -> bool:
            if not isinstance(values, list) or values[0] is None:
                return False
            entry = self._engine._codec.decode(skey, values[0])
            return entry is not None and entry.created_at > seen_created_at

        return refresh_plan(
            key=skey,
            lease_key=self._engine._keys.lease_of(skey),
            read_keys=[skey, *version_keys],
            refreshed_meanwhile=refreshed_meanwhile,
            ensure=self._ensure(skey, version_keys),
            encode=watch.encode(self._encoder(skey, version_keys, policy, discovery)),
            lock_timeout_ms=ttl_ms(self._engine.lock_timeout) or 1,
            monotonic=self._engine._clock.monotonic,
        )

    def _watch(self, skey: str, version_keys: Keys, *, refresh: bool = False) -> LoadWatch:
        engine = self._engine
        return LoadWatch(
            engine._counters, engine._clock.monotonic, skey, version_keys, refresh=refresh
        )

    def fill(self, skey: str, version_keys: Keys, options: GetOrLoadArgs, loader: Loader) -> Any:
        """Load ``skey`` (a miss): once per process, under its lease across processes."""
        engine = self._engine
        discovery = Discovery(engine, version_keys, skey, loader)
        watch = self._watch(skey, version_keys)
        plan = self._miss_plan(skey, version_keys, options, discovery, watch)
        load = watch.load(discovery.run(loader))
        if current() is not None:  # a load inside a load: it discovers for its caller alone
            if loading(skey):
                raise reentered(skey)
            try:
                value, _ = watch.run(lambda: engine._run(plan, load))
            finally:
                watch.joined(0)
            return value
        return engine._flights.run(
            engine._flight_key(skey, version_keys),
            lambda: watch.run(lambda: engine._run(plan, load)),
            version_keys,
            watch.joined,
        )

    async def afill(
        self, skey: str, version_keys: Keys, options: GetOrLoadArgs, loader: Loader
    ) -> Any:
        """Async :meth:`fill`: once per event loop, under its lease across loops and
        processes."""
        engine = self._engine
        discovery = Discovery(engine, version_keys, skey, loader)
        watch = self._watch(skey, version_keys)
        plan = self._miss_plan(skey, version_keys, options, discovery, watch)
        load = watch.aload(discovery.arun(loader))

        async def fill() -> Any:
            return await watch.arun(lambda: engine._arun(plan, load))

        if current() is not None:  # a load inside a load: it discovers for its caller alone
            if loading(skey):
                raise reentered(skey)
            try:
                value, _ = await fill()
            finally:
                watch.joined(0)
            return value
        return await engine._aflights.run(
            engine._flight_key(skey, version_keys), fill, version_keys, watch.joined
        )

    def _miss_plan(
        self,
        skey: str,
        version_keys: Keys,
        options: GetOrLoadArgs,
        discovery: Discovery,
        watch: LoadWatch,
    ) -> Plan:
        policy = self._engine._read_policy(*options)
        self._engine._invalidator.listen_to_bus()
        return self.fill_plan(
            skey, version_keys, policy, check_first=False, discovery=discovery, watch=watch
        )

    def refresh_soon(self, refresh: Refresh) -> None:
        """Refresh a key on the background thread pool."""
        discovery = Discovery(self._engine, refresh.version_keys, refresh.skey)
        watch = self._watch(refresh.skey, tuple(refresh.version_keys), refresh=True)
        plan = self._refresh_plan(refresh, discovery, watch)
        load = watch.load(discovery.run(refresh.loader))

        def run() -> None:
            try:
                self._count_refresh(watch.run(lambda: self._engine._run(plan, load)))
            finally:
                watch.joined(0)

        self._engine._background.submit(refresh.skey, run)

    def _count_refresh(self, loaded: Any) -> None:
        if loaded is not None:
            self._engine._counters.refreshes += 1

    def arefresh_soon(self, refresh: Refresh) -> None:
        """Refresh a key in a task of the running loop."""
        discovery = Discovery(self._engine, refresh.version_keys, refresh.skey)
        watch = self._watch(refresh.skey, tuple(refresh.version_keys), refresh=True)
        plan = self._refresh_plan(refresh, discovery, watch)
        load = watch.aload(discovery.arun(refresh.loader))

        async def run() -> None:
            try:
                self._count_refresh(await watch.arun(lambda: self._engine._arun(plan, load)))
            finally:
                watch.joined(0)

        self._engine._background.spawn(refresh.skey, run)


def _reading_ahead(
    own: int,
    usable: Callable[[Any], Any],
    ensure: Ensure,
    encode: Encoder,
    discovery: Discovery,
) -> tuple[Callable[[Any], Any], Ensure, Encoder]:
    """The fill's functions for reads that end with ``discovery.ahead_keys``: each sees the
    first ``own`` values; the rest go to the discovery (read after taking the lease, before
    the loader runs: where :meth:`Discovery.ahead_read` needs them)."""

    def cut(values: Any) -> Any:
        return values[:own] if isinstance(values, list) else values

    def ensure_ahead(values: Any) -> Any:
        if isinstance(values, list):
            discovery.ahead_read(values[own:])
        return ensure(cut(values))

    def encode_ahead(value: Any, elapsed: float, read: Any) -> Any:
        return encode(value, elapsed, cut(read))

    return (lambda values: usable(cut(values))), ensure_ahead, encode_ahead
