"""What the sync and async APIs of ``Cache`` share: configuration and the policies.

``CacheCore`` owns the state of one configured cache and every decision that does not depend
on how I/O is done: keys, TTLs, encoding and decoding, freshness, which plan a read needs,
stats. Store calls under the failure policy and the sync/async plan drivers are in ``_io``;
background refreshes run on ``_background``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from cacheplug._background import Background
from cacheplug._clock import SYSTEM_CLOCK, Clock
from cacheplug._codec import Entry, EntryCodec
from cacheplug._config import (
    SerializerName,
    choose_serializer,
    fraction_or_none,
    non_negative,
    positive,
    ttl_ms,
    ttl_seconds,
)
from cacheplug._envelope import NEVER
from cacheplug._io import FAILED, StoreIO
from cacheplug._keys import KeyBuilder
from cacheplug._metrics import CacheStats, Counters
from cacheplug._resilience import BurstLogger, CircuitBreaker
from cacheplug._serializers import Serializer
from cacheplug._signing import Signer
from cacheplug._singleflight import AsyncSingleFlight, SingleFlight
from cacheplug._stampede import (
    Plan,
    ReadPolicy,
    XFetch,
    fill_plan,
    refresh_plan,
)
from cacheplug._types import DEFAULT, MISSING, DefaultType, Ttl
from cacheplug.stores import store_from_url
from cacheplug.stores.base import Store
from cacheplug.stores.memory import MemoryStore

logger = logging.getLogger("cacheplug")


class CacheCore(StoreIO):
    """State and policies of a cache; see :class:`~cacheplug.Cache` for the options."""

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        namespace: str = "default",
        default_ttl: float | None = 300.0,
        stale_ttl: float = 0.0,
        early: XFetch | None = None,
        refresh_ahead: float | None = None,
        lock_timeout: float = 10.0,
        wait_timeout: float | None = None,
        secret: str | bytes | None = None,
        secret_fallbacks: Sequence[str | bytes] = (),
        serializer: SerializerName | Serializer = "auto",
        compress_min_bytes: int | None = None,
        max_value_bytes: int = 1024 * 1024,
        strict: bool = False,
        background_workers: int = 4,
        breaker: CircuitBreaker | None = None,
        clock: Clock | None = None,
    ) -> None:
        if store is None:
            store = MemoryStore()
        elif isinstance(store, str):
            store = store_from_url(store)
        elif not isinstance(store, Store):
            raise TypeError(f"store must be a Store or a URL string, not {type(store).__name__}")
        self._store = store
        self._keys = KeyBuilder(namespace)
        self._clock = clock or SYSTEM_CLOCK
        self._now = time.time if clock is None else clock.time
        self.default_ttl = ttl_seconds(default_ttl, None)
        self.stale_ttl = non_negative("stale_ttl", stale_ttl)
        self.early = early
        self.refresh_ahead = fraction_or_none(refresh_ahead)
        self.lock_timeout = positive("lock_timeout", lock_timeout)
        self.wait_timeout = (
            self.lock_timeout
            if wait_timeout is None
            else non_negative("wait_timeout", wait_timeout)
        )
        self.strict = strict
        signer = Signer(secret, secret_fallbacks) if secret is not None else None
        self._codec = EntryCodec(
            choose_serializer(serializer, store, signer),
            signer,
            compress_min_bytes=compress_min_bytes,
            max_value_bytes=max_value_bytes,
        )
        self._breaker = breaker or CircuitBreaker(clock=self._clock.monotonic)
        self._counters = Counters()
        self._error_log = BurstLogger(clock=self._clock.monotonic)
        self._oversize_log = BurstLogger(clock=self._clock.monotonic)
        self._flights = SingleFlight()
        self._aflights = AsyncSingleFlight()
        self._background = Background(background_workers, self._refresh_failed)
        # Fresh hits skip every refresh check unless a refresh policy is configured.
        self._plain_hits = early is None and self.refresh_ahead is None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} namespace={self.namespace!r} store={self._store!r}>"

    @property
    def namespace(self) -> str:
        """The namespace this cache's keys live in."""
        return self._keys.namespace

    @property
    def store(self) -> Store:
        """The store underneath (for inspection; policies do not apply to direct use)."""
        return self._store

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker guarding the store."""
        return self._breaker

    def store_key(self, key: str) -> str:
        """The key under which ``key``'s value is kept in the store."""
        return self._keys.data(key)

    def stats(self) -> CacheStats:
        """A snapshot of this cache's counters."""
        snapshot = self._counters.snapshot()
        joined = self._flights.joined + self._aflights.joined
        return snapshot.with_coalesced(snapshot.coalesced + joined)

    def reset_stats(self) -> None:
        """Set every counter back to zero."""
        self._counters.reset()
        self._flights.joined = self._aflights.joined = 0

    # -- policies ----------------------------------------------------------------------------

    def _ttl(self, ttl: Ttl) -> float | None:
        return ttl_seconds(ttl, self.default_ttl)

    def _store_ttl_ms(self, ttl: float | None) -> int | None:
        """How long the store keeps an entry written with ``ttl``: its stale window too."""
        return None if ttl is None else ttl_ms(ttl + self.stale_ttl)

    def _read_policy(
        self,
        ttl: Ttl,
        stale_ttl: float | DefaultType,
        early: XFetch | DefaultType | None,
        refresh_ahead: float | DefaultType | None,
    ) -> ReadPolicy:
        return ReadPolicy(
            ttl=self._ttl(ttl),
            stale_ttl=self.stale_ttl
            if stale_ttl is DEFAULT
            else non_negative("stale_ttl", stale_ttl),
            early=self.early if early is DEFAULT else early,
            refresh_ahead=self.refresh_ahead
            if refresh_ahead is DEFAULT
            else fraction_or_none(refresh_ahead),
        )

    def _encode(
        self,
        skey: str,
        value: Any,
        ttl: float | None,
        compute_time: float,
        fresh_until: float | None = None,
    ) -> bytes | None:
        now = self._now()
        if fresh_until is None:
            fresh_until = NEVER if ttl is None else now + ttl
        record = self._codec.encode(
            skey, value, created_at=now, fresh_until=fresh_until, compute_time=compute_time
        )
        if record is None:
            self._counters.oversize += 1
            self._oversize_log.warning(
                f"cacheplug: a {type(value).__name__} value for {skey!r} is larger than "
                f"max_value_bytes={self._codec.max_value_bytes} and was not cached"
            )
        else:
            self._counters.bytes_written += len(record)
        return record

    def _entry(self, skey: str, raw: bytes) -> Entry | None:
        """The decoded entry (fresh or not); None, counted and logged, if discarded."""
        self._counters.bytes_read += len(raw)
        entry = self._codec.decode(skey, raw)
        if entry is None:
            self._discarded(skey)
        return entry

    def _hit(self, skey: str, raw: bytes | None) -> Any:
        """The value in ``raw`` if it is a usable, fresh entry (counted), else ``MISSING``."""
        counters = self._counters
        if raw is not None:
            entry = self._entry(skey, raw)
            if entry is not None and entry[2] >= self._now():  # fresh_until
                counters.hits += 1
                return entry[0]
        counters.misses += 1
        return MISSING

    def _answer(
        self,
        skey: str,
        raw: bytes | None,
        loader: Callable[[], Any],
        options: tuple[Ttl, Any, Any, Any],
        refresh_soon: Callable[[str, Callable[[], Any], ReadPolicy, float], None],
    ) -> Any:
        """What ``get_or_load`` returns without loading (a hit, maybe stale, maybe scheduling
        a refresh), or ``MISSING`` for a miss (counted)."""
        if raw is not None:
            entry = self._entry(skey, raw)
            if entry is not None:
                _, _, early, refresh_ahead = options
                if (
                    self._plain_hits
                    and early is DEFAULT
                    and refresh_ahead is DEFAULT
                    and entry[2] >= self._now()
                ):
                    self._counters.hits += 1
                    return entry[0]
                policy = self._read_policy(*options)
                value, refresh = self._serve(skey, entry, policy)
                if refresh:
                    refresh_soon(skey, loader, policy, entry[1])
                if value is not MISSING:
                    return value
        self._counters.misses += 1
        return MISSING

    def _serve(self, skey: str, entry: Entry, policy: ReadPolicy) -> tuple[Any, bool]:
        """``(value or MISSING, refresh it in the background?)`` for a stored entry."""
        now = self._now()
        value, created_at, fresh_until, compute_time, _ = entry
        if fresh_until >= now:
            self._counters.hits += 1
            return value, policy.wants_refresh(now, created_at, fresh_until, compute_time)
        if policy.stale_ttl and now - fresh_until <= policy.stale_ttl:
            self._counters.hits += 1
            self._counters.stale_hits += 1
            return value, True
        return MISSING, False

    def _usable(self, skey: str, stale_ttl: float) -> Callable[[bytes | None], Any]:
        """What a waiter may take from the store: a fresh value, or one stale by at most
        ``stale_ttl`` seconds."""

        def decide(raw: bytes | None) -> Any:
            if not isinstance(raw, bytes):  # absent, or the read failed
                return MISSING
            entry = self._entry(skey, raw)
            if entry is None:
                return MISSING
            if entry[2] >= self._now() - stale_ttl:
                self._counters.coalesced += 1
                return entry[0]
            return MISSING

        return decide

    def _fill_plan(self, skey: str, policy: ReadPolicy, *, check_first: bool) -> Plan:
        return fill_plan(
            key=skey,
            lease_key=self._keys.lease_of(skey),
            usable=self._usable(skey, policy.stale_ttl),
            encode=lambda value, elapsed: self._encode(skey, value, policy.ttl, elapsed),
            store_ttl_ms=ttl_ms(policy.store_ttl),
            lock_timeout_ms=ttl_ms(self.lock_timeout) or 1,
            wait_timeout=self.wait_timeout,
            expect=self._store.fills.expect,
            fills_live=lambda: self._store.fills.live,
            missing=MISSING,
            failed=FAILED,
            check_first=check_first,
            monotonic=self._clock.monotonic,
        )

    def _refresh_plan(self, skey: str, policy: ReadPolicy, seen_created_at: float) -> Plan:
        def refreshed_meanwhile(raw: bytes | None) -> bool:
            entry = self._codec.decode(skey, raw) if isinstance(raw, bytes) else None
            return entry is not None and entry[1] > seen_created_at

        return refresh_plan(
            key=skey,
            lease_key=self._keys.lease_of(skey),
            refreshed_meanwhile=refreshed_meanwhile,
            encode=lambda value, elapsed: self._encode(skey, value, policy.ttl, elapsed),
            store_ttl_ms=ttl_ms(policy.store_ttl),
            lock_timeout_ms=ttl_ms(self.lock_timeout) or 1,
        )

    def _invalidation(self, keys: list[str]) -> list[tuple[str, str]]:
        """The (entry, lease) store keys of ``keys``; detaches their in-process loads."""
        entries = []
        for skey in self._keys.data_many(keys):
            self._flights.detach(skey)
            self._aflights.detach(skey)
            entries.append((skey, self._keys.lease_of(skey)))
        return entries

    def _discarded(self, skey: str) -> None:
        self._counters.discarded += 1
        self._error_log.warning(
            f"cacheplug: discarded the entry under {skey!r}: bad signature, unknown format "
            "or undecodable payload (if the secret was rotated, list the old one in "
            "secret_fallbacks)"
        )

    # -- background refreshes ----------------------------------------------------------------

    def _refresh_soon(
        self, skey: str, loader: Callable[[], Any], policy: ReadPolicy, seen_created_at: float
    ) -> None:
        """Refresh ``skey`` on the background thread pool."""
        plan = self._refresh_plan(skey, policy, seen_created_at)
        self._background.submit(skey, lambda: self._count_refresh(self._run(plan, loader)))

    def _count_refresh(self, loaded: Any) -> None:
        if loaded is not None:
            self._counters.refreshes += 1

    def _refresh_failed(self, skey: str, exc: BaseException) -> None:
        self._error_log.warning(f"cacheplug: background refresh of {skey!r} failed", exc)

    def _arefresh_soon(
        self, skey: str, loader: Callable[[], Any], policy: ReadPolicy, seen_created_at: float
    ) -> None:
        """Refresh ``skey`` in a task of the running loop."""
        plan = self._refresh_plan(skey, policy, seen_created_at)

        async def refresh() -> None:
            self._count_refresh(await self._arun(plan, loader))

        self._background.spawn(skey, refresh)
