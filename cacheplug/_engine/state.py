"""The state of one configured cache, and the small policies everything else uses.

``EngineState`` owns options, keys, the codec, counters, single-flight tables, the queue of
pending invalidations, the L1 tier and hot-key counts; and the policies every part of the
engine shares (TTLs, encoding). The read decisions are in ``reads`` (:class:`Engine`, the one
class built on this one), invalidation in ``invalidation`` and replicas in ``replicas``
(components holding the engine); store calls under the failure policy and the sync/async plan
drivers are in ``driver`` (a ``StoreIO`` component whose methods are bound here as ``_call``,
``_read``, ``_run``, ...); background refreshes run on ``background``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cacheplug._clock import SYSTEM_CLOCK, Clock
from cacheplug._config import (
    fraction_or_none,
    non_negative,
    positive,
    ttl_ms,
    ttl_seconds,
)
from cacheplug._engine.background import Background
from cacheplug._engine.coalesce import ReadBatches
from cacheplug._engine.driver import StoreIO
from cacheplug._engine.flights import AsyncSingleFlight, SingleFlight
from cacheplug._engine.hotkeys import HotKeys
from cacheplug._engine.local import LocalCache, LocalTier
from cacheplug._engine.metrics import CacheStats, Counters
from cacheplug._engine.pending import DEFAULT_MAX_PENDING, PendingInvalidations
from cacheplug._engine.plans import (
    ReadPolicy,
    XFetch,
)
from cacheplug._engine.resilience import BurstLogger, CircuitBreaker
from cacheplug._memo import BoundedMemo
from cacheplug._types import BOOKKEEPING_TTL_MS, DEFAULT, FAILED, DefaultType, Ttl
from cacheplug.encoding._choice import SerializerName, choose_serializer
from cacheplug.encoding._codec import EntryCodec
from cacheplug.encoding._compression import DEFAULT_MIN_BYTES as DEFAULT_COMPRESS_MIN_BYTES
from cacheplug.encoding._compression import CompressionName, check_compression, compressor
from cacheplug.encoding._envelope import NEVER
from cacheplug.encoding._keys import KeyBuilder
from cacheplug.encoding._serializers import Serializer
from cacheplug.encoding._signing import Signer
from cacheplug.encoding._tags import (
    Recorded,
    VersionKeys,
    absent,
    fresh_version,
)
from cacheplug.stores import resolve_store
from cacheplug.stores.base import Store
from cacheplug.stores.memory import MemoryStore

logger = logging.getLogger("cacheplug")


class EngineState:
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
        compression: CompressionName | None = None,
        compress_min_bytes: int | None = None,
        max_value_bytes: int = 1024 * 1024,
        strict: bool = False,
        negative_ttl: float | None = None,
        max_pending_invalidations: int = DEFAULT_MAX_PENDING,
        background_workers: int = 4,
        breaker: CircuitBreaker | None = None,
        clock: Clock | None = None,
        l1: LocalTier | None = None,
        hot_key_replicas: int = 0,
        hot_key_qps: float = 1000.0,
    ) -> None:
        if store is None:
            store = MemoryStore()
        elif isinstance(store, str):  # a URL, or a dotted path "package.module:Name"
            store = resolve_store(store)
        elif not isinstance(store, Store):
            raise TypeError(
                "store must be a Store or a URL (or a dotted path 'package.module:Name'), "
                f"not {type(store).__name__}"
            )
        self._store = store
        # Coalescing spares round trips; an in-process store has none to spare.
        self._batches = ReadBatches() if store.shared else None
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
        # No compression given: compress_min_bytes alone means zlib, as before compression
        # could be chosen. A compression given alone compresses from DEFAULT_COMPRESS_MIN_BYTES.
        chosen = None
        if compression is not None:
            chosen = compressor(check_compression(compression))
            if chosen is None:
                compress_min_bytes = None
            elif compress_min_bytes is None:
                compress_min_bytes = DEFAULT_COMPRESS_MIN_BYTES
        self._codec = EntryCodec(
            choose_serializer(serializer, store, signer),
            signer,
            compressor=chosen,
            compress_min_bytes=compress_min_bytes,
            max_value_bytes=max_value_bytes,
        )
        self._breaker = breaker or CircuitBreaker(clock=self._clock.monotonic)
        self._counters = Counters()
        self._error_log = BurstLogger(clock=self._clock.monotonic)
        io = StoreIO(
            store, self._batches, self._breaker, self._counters, self._error_log, self._clock
        )
        # A component, its methods bound once: the hot path calls ``self._read`` as it would
        # a method of this class.
        self._call = io.call
        self._acall = io.acall
        self._read = io.read
        self._aread = io.aread
        self._run = io.run
        self._arun = io.arun
        self._oversize_log = BurstLogger(clock=self._clock.monotonic)
        self._flights = SingleFlight(self._clock.monotonic)
        self._aflights = AsyncSingleFlight(self._clock.monotonic)
        self._timers: set[threading.Timer] = set()  # delayed invalidations (again_after)
        self._background = Background(background_workers, self._refresh_failed)
        # Told the version keys of this process's invalidations once they are in the store.
        self._landed: list[Callable[[Sequence[str]], None]] = []
        self._pending = PendingInvalidations(
            self._apply_pending,
            self._versions.implicit[0],
            max_items=_count("max_pending_invalidations", max_pending_invalidations),
            on_applied=self._tell_landed,
        )
        self._bus: list[Callable[[], None]] = []  # the bus subscription, shared with views
        self._hot_replicas = _replica_count("hot_key_replicas", hot_key_replicas)
        self._hot = HotKeys(
            monotonic=self._clock.monotonic, hot_qps=non_negative("hot_key_qps", hot_key_qps)
        )
        self._draw = random.random
        self._hot_rate = self._hot.rate
        self._local: LocalCache | None = None
        if l1 is not None:
            if not isinstance(l1, LocalTier):
                raise TypeError(f"l1 must be a LocalTier, not {type(l1).__name__}")
            fills = store.fills
            self._local = LocalCache(l1, live=lambda: fills.live, catch_up=fills.catch_up)
            # Subscribed from the start: L1 serves nothing until the bus is live.
            self._bus.append(fills.on_change(self._local_changed))
        self._recorded_keys: BoundedMemo[str, tuple[str, ...]] = BoundedMemo()
        # Fresh hits skip every refresh check unless a refresh policy is configured.
        self._plain_hits = early is None and self.refresh_ahead is None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} namespace={self._keys.namespace!r} store={self._store!r}>"

    def stats(self) -> CacheStats:
        """A snapshot of this cache's counters."""
        snapshot = self._counters.snapshot()
        joined = self._flights.joined + self._aflights.joined
        l1_hits = 0 if self._local is None else self._local.hits
        return snapshot.with_coalesced(snapshot.coalesced + joined).with_gauges(
            l1_hits, len(self._hot.hot)
        )

    def hot_keys(self, top: int = 20) -> list[tuple[str, float]]:
        """The keys this process reads most, as ``(key, estimated reads per second)``,
        hottest first (sampled: one read in 8 is counted; counts halve every 10 s)."""
        return self._hot.top(top)

    def reset_stats(self) -> None:
        """Set every counter back to zero."""
        self._counters.reset()
        self._flights.joined = self._aflights.joined = 0
        if self._local is not None:
            self._local.hits = 0

    def _apply_pending(self, entries: list[tuple[str, str]], version_keys: list[str]) -> None:
        if entries:
            self._store.invalidate(entries)
        if version_keys:
            fresh = [fresh_version() for _ in version_keys]
            self._store.bump_versions(version_keys, fresh, self._version_keep_ms())

    def _tell_landed(self, version_keys: Sequence[str]) -> None:
        """Tell the ``on_landed`` subscribers: a subscriber that fails is logged, never
        raised into the invalidation that landed."""
        for subscriber in tuple(self._landed):
            try:
                subscriber(version_keys)
            except Exception:
                logger.exception("cacheplug: an on_landed subscriber failed")

    def _version_keep_ms(self) -> int:
        # A version key a bump creates must outlive any load that read it as absent.
        return max(BOOKKEEPING_TTL_MS, int(self.lock_timeout * 2000))

    def _local_changed(self, store_key: str | None) -> None:
        if self._local is not None:
            self._local.drop(store_key, self._versions.implicit[0])

    def _drop_local(self, store_keys: Iterable[str]) -> None:
        """This process changed these keys (or tags): its own L1 follows at once, not when
        the bus brings the news back."""
        local = self._local
        if local is not None:
            root = self._versions.implicit[0]
            for key in store_keys:
                local.drop(key, root)

    def _refresh_failed(self, skey: str, exc: BaseException) -> None:
        self._error_log.warning(f"cacheplug: background refresh of {skey!r} failed", exc)

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

    def _absent_versions(
        self, version_keys: Sequence[str], read: list[Any], near: str | None = None
    ) -> tuple[list[int], tuple[list[str], list[int], int, str | None]] | None:
        """For version keys ``read`` as absent: their positions and the ``ensure_versions``
        arguments creating them (for the entry ``near``); ``None`` when all exist."""
        positions = absent(version_keys, read)
        if not positions:
            return None
        keys = [version_keys[position] for position in positions]
        fresh = [fresh_version() for _ in keys]
        return positions, (keys, fresh, self._version_keep_ms(), near)

    @staticmethod
    def _merge_versions(read: list[Any], positions: list[int], created: Any) -> Any:
        if not isinstance(created, list):
            return FAILED
        merged = list(read)
        for position, value in zip(positions, created, strict=True):
            merged[position] = value
        return merged

    def _version_keys(self, tags: tuple[str, ...]) -> tuple[str, ...]:
        return self._versions.for_entry(tags)

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

    def _discarded(self, skey: str) -> None:
        self._counters.discarded += 1
        self._error_log.warning(
            f"cacheplug: discarded the entry under {skey!r}: bad signature, unknown format, "
            "undecodable payload, a compressed entry while compression is off, or larger "
            "than max_value_bytes (if the secret was rotated, list the old one in "
            "secret_fallbacks; a process whose compression is 'none' discards compressed "
            "entries, and one without zstandard installed those compressed with zstd)"
        )


def _replica_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, not {value!r}")
    return value


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
    return value
