"""What the sync and async APIs of ``Cache`` share: configuration and the policies.

``CacheCore`` owns the state of one configured cache and every decision that does not depend
on how I/O is done: keys, TTLs, encoding and decoding, freshness, which plan a read needs,
stats. Store calls under the failure policy and the sync/async plan drivers are in ``_io``;
background refreshes run on ``_background``.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, NamedTuple

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
from cacheplug._exceptions import CacheUnavailable
from cacheplug._io import FAILED, StoreIO
from cacheplug._keys import KeyBuilder
from cacheplug._metrics import CacheStats, Counters
from cacheplug._pending import DEFAULT_MAX_PENDING, PendingInvalidation, PendingInvalidations
from cacheplug._resilience import BurstLogger, CircuitBreaker
from cacheplug._serializers import Serializer
from cacheplug._signing import Signer
from cacheplug._singleflight import AsyncSingleFlight, SingleFlight
from cacheplug._stampede import (
    STORE,
    Encoder,
    Ensure,
    Plan,
    ReadPolicy,
    XFetch,
    fill_plan,
    refresh_plan,
)
from cacheplug._tags import (
    Recorded,
    VersionKeys,
    absent,
    checks,
    fresh_version,
    parse_versions,
)
from cacheplug._types import DEFAULT, MISSING, DefaultType, Ttl
from cacheplug.stores import store_from_url
from cacheplug.stores.base import Store, VersionCheck
from cacheplug.stores.fills import InvalidationCallback
from cacheplug.stores.memory import MemoryStore

logger = logging.getLogger("cacheplug")

ReadOptions = tuple[Ttl, Any, Any, Any, Any, Any]
"""A read's options as passed: ttl, stale_ttl, early, refresh_ahead, max_staleness,
negative_ttl (``DEFAULT`` where the cache's default applies)."""

_VERSION_KEY_KEEP_MIN_MS: Final = 86_400_000  # how long a version key created by a bump lives
_RECORDED_MEMO_ENTRIES: Final = 4096


class Unread(NamedTuple):
    """An entry records version keys that were not read with it: read these and decide
    again."""

    keys: list[str]


def versions_match(recorded: Recorded, version_keys: Sequence[str], values: list[Any]) -> Any:
    """Whether an entry's recorded versions are current, given ``values[1:]`` read for
    ``version_keys``: True, False, or the list of recorded version keys that were not read."""
    if len(recorded) == len(version_keys):  # the usual case: the same keys, in order
        position = 1
        for (key, version), wanted in zip(recorded, version_keys, strict=True):
            if key != wanted:
                break
            if values[position] != b"%d" % version:
                return False
            position += 1
        else:
            return True
    versions = parse_versions(version_keys, values[1:])
    missing = [key for key, _ in recorded if key not in versions]
    if missing:
        return missing
    return all(versions[key] == version for key, version in recorded)


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
        negative_ttl: float | None = None,
        max_pending_invalidations: int = DEFAULT_MAX_PENDING,
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
        self._versions = VersionKeys(self._keys, (self._keys,))
        self._implicit = self._versions.implicit
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
        self.negative_ttl = (
            None if negative_ttl is None else non_negative("negative_ttl", negative_ttl)
        )
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
        self._pending = PendingInvalidations(
            self._apply_pending,
            self._versions.implicit[0],
            max_items=_count("max_pending_invalidations", max_pending_invalidations),
        )
        self._bus: list[Callable[[], None]] = []  # the bus subscription, shared with views
        self._recorded_keys: dict[str, tuple[str, ...]] = {}
        # Fresh hits skip every refresh check unless a refresh policy is configured.
        self._plain_hits = early is None and self.refresh_ahead is None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} namespace={self.namespace_name!r} store={self._store!r}>"

    @property
    def namespace_name(self) -> str:
        """The namespace this cache's keys live in (``parent.child`` for a nested one)."""
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

    # -- namespaces, invalidation bus, pending invalidations ---------------------------------

    def namespace(self, name: str) -> Any:
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
        """Invalidations that could not reach the store yet, oldest first (they are retried
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

    def _apply_pending(self, entries: list[tuple[str, str]], version_keys: list[str]) -> None:
        if entries:
            self._store.invalidate(entries)
        if version_keys:
            fresh = [fresh_version() for _ in version_keys]
            self._store.bump_versions(version_keys, fresh, self._version_keep_ms())

    def _version_keep_ms(self) -> int:
        # A version key a bump creates must outlive any load that read it as absent.
        return max(_VERSION_KEY_KEEP_MIN_MS, int(self.lock_timeout * 2000))

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

    # -- policies ----------------------------------------------------------------------------

    def _ttl(self, ttl: Ttl) -> float | None:
        return ttl_seconds(ttl, self.default_ttl)

    def _store_ttl_ms(self, ttl: float | None, stale_ttl: float | None = None) -> int | None:
        """How long the store keeps an entry written with ``ttl``: its stale window too."""
        if ttl is None:
            return None
        return ttl_ms(ttl + (self.stale_ttl if stale_ttl is None else stale_ttl))

    def _read_policy(
        self,
        ttl: Ttl,
        stale_ttl: float | DefaultType,
        early: XFetch | DefaultType | None,
        refresh_ahead: float | DefaultType | None,
        max_staleness: float | None = None,
        negative_ttl: float | DefaultType | None = DEFAULT,
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
            max_staleness=None
            if max_staleness is None
            else non_negative("max_staleness", max_staleness),
            negative_ttl=self.negative_ttl
            if negative_ttl is DEFAULT
            else (None if negative_ttl is None else non_negative("negative_ttl", negative_ttl)),
        )

    def _version_keys(self, tags: tuple[str, ...]) -> tuple[str, ...]:
        return self._versions.for_entry(tags)

    def _bypass(self, skey: str, version_keys: Sequence[str]) -> bool:
        """True when a read must skip the cache: an invalidation of its own is pending."""
        if self._pending.active and self._pending.affects(skey, version_keys):
            self._counters.bypassed += 1
            return True
        return False

    def _encode(
        self,
        skey: str,
        value: Any,
        ttl: float | None,
        compute_time: float,
        fresh_until: float | None = None,
        recorded: Recorded = (),
    ) -> bytes | None:
        now = self._now()
        if fresh_until is None:
            fresh_until = NEVER if ttl is None else now + ttl
        record = self._codec.encode(
            skey,
            value,
            created_at=now,
            fresh_until=fresh_until,
            compute_time=compute_time,
            tags=recorded,
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

    def _absent_versions(
        self, version_keys: Sequence[str], read: list[Any]
    ) -> tuple[list[int], tuple[list[str], list[int], int]] | None:
        """For version keys ``read`` as absent: their positions and the ``ensure_versions``
        arguments creating them; ``None`` when all exist."""
        positions = absent(version_keys, read)
        if not positions:
            return None
        keys = [version_keys[position] for position in positions]
        return positions, (keys, [fresh_version() for _ in keys], self._version_keep_ms())

    @staticmethod
    def _merge_versions(read: list[Any], positions: list[int], created: Any) -> Any:
        if not isinstance(created, list):
            return FAILED
        merged = list(read)
        for position, value in zip(positions, created, strict=True):
            merged[position] = value
        return merged

    def _ensure(self, version_keys: Sequence[str]) -> Ensure:
        """The fill plan's step creating absent version keys (``values[1:]`` are theirs)."""

        def ensure(values: Any) -> Any:
            if not isinstance(values, list):
                return None
            needed = self._absent_versions(version_keys, values[1:])
            if needed is None:
                return None
            positions, args = needed
            shifted = [position + 1 for position in positions]
            step = (STORE, "ensure_versions", False, args)
            return step, lambda read, created: self._merge_versions(read, shifted, created)

        return ensure

    def _write_args(
        self, skey: str, value: Any, ttl: float | None, version_keys: Sequence[str], read: Any
    ) -> tuple[bytes, list[VersionCheck]] | None:
        """The record of a ``set``/``add`` and its version checks, given the versions
        ``read``; ``None`` when it cannot be written (too large, or the versions unknown)."""
        if not isinstance(read, list):
            return None
        made = checks(version_keys, parse_versions(version_keys, read))
        if made is None:
            return None
        recorded, conditions = made
        record = self._encode(skey, value, ttl, 0.0, recorded=recorded)
        return None if record is None else (record, conditions)

    def _entry(self, skey: str, raw: bytes) -> Entry | None:
        """The decoded entry (fresh or not); None, counted and logged, if discarded."""
        self._counters.bytes_read += len(raw)
        entry = self._codec.decode(skey, raw)
        if entry is None:
            self._discarded(skey)
        return entry

    def _valid(
        self,
        skey: str,
        values: list[Any],
        version_keys: Sequence[str],
        max_staleness: float | None = None,
    ) -> Any:
        """The entry in ``values[0]`` if it may be used (fresh or not), given ``values[1:]``
        read for ``version_keys``: ``None`` if absent, discarded, outdated by an invalidation
        or older than ``max_staleness``; :class:`Unread` if it records version keys that were not
        read."""
        raw = values[0]
        if raw is None:
            return None
        self._counters.bytes_read += len(raw)
        entry = self._codec.decode(skey, raw)
        if entry is None:
            self._discarded(skey)
            return None
        recorded = entry[4]
        if recorded:
            # The usual case inline (one version key, read with the entry); else the general.
            if len(recorded) == 1 == len(version_keys) and recorded[0][0] == version_keys[0]:
                if values[1] != b"%d" % recorded[0][1]:
                    return None
            else:
                match = versions_match(recorded, version_keys, values)
                if match is not True:
                    if not match:
                        return None
                    self._remember_recorded(skey, recorded)
                    return Unread(match)
            if self._pending.active and self._pending.affects(skey, [k for k, _ in recorded]):
                self._counters.bypassed += 1
                return None
        if max_staleness is not None and entry[1] < self._now() - max_staleness:
            return None
        return entry

    def _hit(self, skey: str, values: list[Any], version_keys: Sequence[str]) -> Any:
        """The value of a usable, fresh entry (counted), ``MISSING``, or :class:`Unread`."""
        entry = self._valid(skey, values, version_keys)
        if isinstance(entry, Unread):
            return entry
        if entry is not None:
            if entry[2] >= self._now():  # fresh_until
                self._counters.hits += 1
                return entry[0]
        self._counters.misses += 1
        return MISSING

    def _remember_recorded(self, skey: str, recorded: Recorded) -> None:
        # get() fetches these with the entry next time: one round trip instead of two.
        memo = self._recorded_keys
        if len(memo) >= _RECORDED_MEMO_ENTRIES:
            memo.clear()
        memo[skey] = tuple(key for key, _ in recorded)

    def _get_keys(self, skey: str) -> tuple[str, ...]:
        """The version keys ``get`` reads with ``skey``."""
        return self._recorded_keys.get(skey) or self._versions.implicit

    def _answer(
        self,
        skey: str,
        values: list[Any],
        version_keys: Sequence[str],
        loader: Callable[[], Any],
        options: ReadOptions,
        refresh_soon: Callable[[str, Sequence[str], Callable[[], Any], ReadPolicy, float], None],
    ) -> Any:
        """What ``get_or_load`` returns without loading (a hit, maybe stale, maybe scheduling
        a refresh), or ``MISSING`` for a miss (counted)."""
        if values[0] is not None:
            _, _, early, refresh_ahead, max_staleness, _ = options
            entry = self._valid(skey, values, version_keys, max_staleness)
            if entry is not None and not isinstance(entry, Unread):
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
                    refresh_soon(skey, version_keys, loader, policy, entry[1])
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
            entry = self._valid(skey, values, version_keys, max_staleness)
            if entry is None or isinstance(entry, Unread):
                return MISSING
            if entry[2] >= self._now() - stale_ttl:
                self._counters.coalesced += 1
                return entry[0]
            return MISSING

        return decide

    def _encoder(self, skey: str, version_keys: Sequence[str], policy: ReadPolicy) -> Encoder:
        """How a loaded value is stored: with the versions read after taking the lease."""

        def encode(
            value: Any, elapsed: float, read: Any
        ) -> tuple[bytes, int | None, list[VersionCheck]] | None:
            if not isinstance(read, list):  # the versions are unknown: do not store
                return None
            ttl = policy.ttl_for(value)
            if ttl == 0 or self._bypass(skey, version_keys):
                return None
            made = checks(version_keys, parse_versions(version_keys, read[1:]))
            if made is None:
                return None
            recorded, conditions = made
            record = self._encode(skey, value, ttl, elapsed, recorded=recorded)
            if record is None:
                return None
            return record, self._store_ttl_ms(ttl, policy.stale_ttl), conditions

        return encode

    def _fill_plan(
        self, skey: str, version_keys: Sequence[str], policy: ReadPolicy, *, check_first: bool
    ) -> Plan:
        return fill_plan(
            key=skey,
            lease_key=self._keys.lease_of(skey),
            read_keys=[skey, *version_keys],
            usable=self._usable(skey, version_keys, policy),
            ensure=self._ensure(version_keys),
            encode=self._encoder(skey, version_keys, policy),
            lock_timeout_ms=ttl_ms(self.lock_timeout) or 1,
            wait_timeout=self.wait_timeout,
            expect=self._store.fills.expect,
            fills_live=lambda: self._store.fills.live,
            missing=MISSING,
            failed=FAILED,
            check_first=check_first,
            monotonic=self._clock.monotonic,
        )

    def _refresh_plan(
        self,
        skey: str,
        version_keys: Sequence[str],
        policy: ReadPolicy,
        seen_created_at: float,
    ) -> Plan:
        def refreshed_meanwhile(values: Any) -> bool:
            if not isinstance(values, list) or values[0] is None:
                return False
            entry = self._codec.decode(skey, values[0])
            return entry is not None and entry[1] > seen_created_at

        return refresh_plan(
            key=skey,
            lease_key=self._keys.lease_of(skey),
            read_keys=[skey, *version_keys],
            refreshed_meanwhile=refreshed_meanwhile,
            ensure=self._ensure(version_keys),
            encode=self._encoder(skey, version_keys, policy),
            lock_timeout_ms=ttl_ms(self.lock_timeout) or 1,
        )

    def _discarded(self, skey: str) -> None:
        self._counters.discarded += 1
        self._error_log.warning(
            f"cacheplug: discarded the entry under {skey!r}: bad signature, unknown format "
            "or undecodable payload (if the secret was rotated, list the old one in "
            "secret_fallbacks)"
        )

    # -- background refreshes ----------------------------------------------------------------

    def _refresh_soon(
        self,
        skey: str,
        version_keys: Sequence[str],
        loader: Callable[[], Any],
        policy: ReadPolicy,
        seen_created_at: float,
    ) -> None:
        """Refresh ``skey`` on the background thread pool."""
        plan = self._refresh_plan(skey, version_keys, policy, seen_created_at)
        self._background.submit(skey, lambda: self._count_refresh(self._run(plan, loader)))

    def _count_refresh(self, loaded: Any) -> None:
        if loaded is not None:
            self._counters.refreshes += 1

    def _refresh_failed(self, skey: str, exc: BaseException) -> None:
        self._error_log.warning(f"cacheplug: background refresh of {skey!r} failed", exc)

    def _arefresh_soon(
        self,
        skey: str,
        version_keys: Sequence[str],
        loader: Callable[[], Any],
        policy: ReadPolicy,
        seen_created_at: float,
    ) -> None:
        """Refresh ``skey`` in a task of the running loop."""
        plan = self._refresh_plan(skey, version_keys, policy, seen_created_at)

        async def refresh() -> None:
            self._count_refresh(await self._arun(plan, loader))

        self._background.spawn(skey, refresh)


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
    return value
