"""The methods of ``Cache`` that hand it to a feature: write-through, write-around and
write-behind, locks, ``inspect``, stats, ``@cached``, the invalidation bus, and the two
switches tests use (``isolated``, ``disabled``).

Each is a call into :mod:`cacheplug.features` or :mod:`cacheplug.writebehind` (imported on
first use, so that ``import cacheplug`` does not load them all).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, cast

from cacheplug._engine.invalidation import Invalidator
from cacheplug._engine.metrics import LoadDurations
from cacheplug._engine.pending import PendingInvalidation
from cacheplug._engine.plans import XFetch
from cacheplug._engine.protocol import CacheState
from cacheplug._engine.reads import Engine
from cacheplug._types import DEFAULT, DefaultType, Tags, Ttl
from cacheplug.encoding._tags import tag_names
from cacheplug.features._locks import Lock
from cacheplug.features._shared_stats import StatsPublisher
from cacheplug.stores.fills import InvalidationCallback
from cacheplug.stores.null import NullStore

if TYPE_CHECKING:
    from cacheplug._engine.metrics import CacheStats, LoadTracer
    from cacheplug.features._decorators import CacheDecorator, KeySpec, TagSpec
    from cacheplug.features._inspect import EntryInfo
    from cacheplug.writebehind._queue import WriteBehind, WriteBehindOptions

T = TypeVar("T")


class FeatureMethods:
    """Methods of :class:`~cacheplug.Cache` that are features (over the engine it composes)."""

    _engine: Engine
    _invalidator: Invalidator
    _stats_publisher: StatsPublisher
    _queues: dict[str, WriteBehind]
    _compose: Callable[[Engine], None]

    def _state(self) -> CacheState:
        # This class is only ever a base of Cache, which is a CacheState.
        return cast("CacheState", self)

    def write_around(self, key: str, writer: Callable[[], T], *, tags: Tags = None) -> T:
        """Run ``writer()``, then invalidate ``key`` (and ``tags``): the next read loads the
        new value. Call it after a write that is committed when ``writer`` returns."""
        from cacheplug.features._writes import write_around

        return write_around(self._state(), key, writer, tags)

    def write_behind(
        self, name: str, sink: Callable[[list[Any]], None], **options: Unpack[WriteBehindOptions]
    ) -> WriteBehind:
        """A write-behind queue: ``put(key, value)`` returns at once; workers (``drain``,
        ``run``, ``start``) hand batches of :class:`~cacheplug.QueuedWrite`, one per key
        (the last value, or the values folded by ``merge``), to ``sink`` at most every
        ``flush_every`` seconds or ``batch_size`` writes, and acknowledge them only after it
        returns. ``sink`` must be idempotent (by write id): a batch whose worker died mid-way
        is delivered again, the same. Without ``merge``, ``put`` also caches the value under
        its key (``update_cache``, for ``ttl``). See ``docs/writes.md``."""
        from cacheplug.writebehind._queue import WriteBehind

        queue = WriteBehind(self._state(), name, sink, **options)
        self._queues[name] = queue
        return queue

    def write_behind_queues(self) -> dict[str, WriteBehind]:
        """The write-behind queues made with :meth:`write_behind`, by name (what the worker
        commands drain)."""
        return dict(sorted(self._queues.items()))

    def on_invalidation(self, callback: InvalidationCallback) -> Callable[[], None]:
        """Call ``callback(store_key)`` for every invalidation of a key, tag or namespace on
        this cache's store, made by this process or (on a shared store) any other — the
        invalidation bus. ``store_key`` is ``None`` when some may have been missed (the bus
        connection dropped): drop every local copy then. Returns a function that
        unsubscribes. The callback runs on the bus thread: keep it short."""
        return self._engine._store.fills.on_invalidation(callback)

    def on_landed(self, callback: Callable[[Sequence[str]], None]) -> Callable[[], None]:
        """Call ``callback(version_keys)`` once invalidations of tags or of the namespace
        that *this process* made are in the store: at once, or when a queued one is applied
        (on the retry thread). ``version_keys`` are the store keys of their versions, as
        :meth:`version_keys` gives them for a set of tags: what an edge purge names. Runs on
        the invalidating thread: keep it short. Returns a function that unsubscribes."""
        subscribers = self._engine._landed
        subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in subscribers:
                subscribers.remove(callback)

        return unsubscribe

    def version_keys(self, *tags: str) -> tuple[str, ...]:
        """The store keys of the versions an entry carrying ``tags`` is checked against (its
        namespace's included): an invalidation of any of them, reported by :meth:`on_landed`,
        makes the entry stale."""
        return self._engine._versions.for_entry(tag_names(tags, None))

    def pending_invalidations(self) -> list[PendingInvalidation]:
        """Invalidations that could not reach the store yet (they are retried
        with backoff; until then this process bypasses the cache for what they affect)."""
        return self._engine._pending.items()

    def stats(self) -> CacheStats:
        """A snapshot of this cache's counters."""
        return self._engine.stats()

    def durations(self) -> LoadDurations:
        """How long this process's loads and lease waits took, as histograms (hits are not
        timed: they are counted in :meth:`stats`)."""
        counters = self._engine._counters
        return LoadDurations(
            counters.load_seconds.snapshot(), counters.lease_wait_seconds.snapshot()
        )

    def trace_loads(self, tracer: LoadTracer | None) -> LoadTracer | None:
        """Follow every load of this cache and its namespace views with ``tracer`` (``None``:
        stop); returns the tracer it replaces. :func:`cacheplug.otel.instrument` sets one;
        hits are never traced, and without a tracer a load pays nothing for it."""
        counters = self._engine._counters
        previous, counters.tracer = counters.tracer, tracer
        return previous

    def hot_keys(self, top: int = 20) -> list[tuple[str, float]]:
        """The keys this process reads most, as ``(key, estimated reads per second)``,
        hottest first (sampled: one read in 8 is counted; counts halve every 10 s)."""
        return self._engine.hot_keys(top)

    def reset_stats(self) -> None:
        """Set every counter back to zero."""
        self._engine.reset_stats()

    def inspect(self, key: str) -> EntryInfo | None:
        """What is stored under ``key`` (age, freshness, tags, size, state), or ``None``;
        for people and tools, not for the hot path. Raises :class:`CacheUnavailable` when
        the store cannot be reached."""
        from cacheplug.features._inspect import inspect_entry

        return inspect_entry(self._engine, key)

    def publish_stats(self, *, every: float = 0.0) -> bool:
        """Add this process's counters (since its last call) to totals kept in the store,
        for :meth:`shared_stats` in any process; skipped (False) if the last call was less
        than ``every`` seconds ago. The adapters call it after requests, ``every=10``."""
        return self._stats_publisher.publish_if_due(self._engine, every)

    def shared_stats(self) -> tuple[CacheStats, list[tuple[str, float]]]:
        """The counters every process of this cache published (see :meth:`publish_stats`),
        and the hottest keys the last one saw. Raises :class:`CacheUnavailable` when the store
        cannot be reached."""
        from cacheplug.features._shared_stats import shared_stats

        return shared_stats(self._engine)

    def lock(
        self,
        name: str,
        timeout: float = 30.0,
        *,
        blocking: bool = True,
        blocking_timeout: float | None = None,
    ) -> Lock:
        """A distributed lock for your own jobs: ``with cache.lock("report:daily"): ...``.

        ``timeout``: seconds the lock is held at most (a crashed holder's lock expires);
        extend it with ``lock.extend()``. ``blocking_timeout``: seconds to wait for it
        (``None``: as long as it takes). Release is token-checked: a lock that expired and was
        taken by someone else is never released by its former holder.
        """
        return Lock(
            self._engine, name, timeout, blocking=blocking, blocking_timeout=blocking_timeout
        )

    def cached(
        self,
        ttl: Ttl = DEFAULT,
        *,
        key: KeySpec | None = None,
        tags: TagSpec | None = None,
        stale_ttl: float | DefaultType = DEFAULT,
        early: XFetch | DefaultType | None = DEFAULT,
        refresh_ahead: float | DefaultType | None = DEFAULT,
    ) -> CacheDecorator:
        """Cache a function's results (sync or async) under keys built from its arguments.

        ``key`` is a format string over the parameters (``"product:{product_id}"``), a
        callable taking the same arguments, or ``None`` for ``module.qualname`` plus the
        arguments. ``tags``: format strings over the parameters too (``["product:{product_id}",
        "catalog"]``), or a callable taking the same arguments and returning the tags.
        ``stale_ttl``, ``early`` and ``refresh_ahead`` are passed to :meth:`get_or_load`.
        The wrapped function gains ``invalidate(*args, **kwargs)`` (and ``ainvalidate`` for
        async functions) and ``key_for(*args, **kwargs)``.
        """
        from cacheplug.features._decorators import CacheDecorator, ReadOptions

        options = ReadOptions(stale_ttl=stale_ttl, early=early, refresh_ahead=refresh_ahead)
        self._engine._read_policy(ttl, stale_ttl, early, refresh_ahead)  # validate now
        return CacheDecorator(self._state(), ttl, key, options, tags)

    # -- switches for tests ------------------------------------------------------------------

    @contextmanager
    def isolated(self, name: str | None = None) -> Iterator[None]:
        """For the block, this cache keeps its keys in a fresh nested namespace (``name``, or
        a random one), so that it sees nothing written before and leaves nothing behind: on
        exit the namespace is bumped (its entries orphaned, to age out by TTL) and the cache
        is back where it was. Tags stay shared with every namespace, as always.

        The cache object itself is redirected, so code that holds it (a module-level cache,
        an adapter's) is isolated too; views made before with :meth:`namespace` are not.
        Meant for tests (the pytest fixture ``cacheplug_isolated``), not for threads serving
        traffic: it is not atomic for readers in flight.
        """
        previous = self._engine
        # Short: a nested namespace's whole path is at most 31 characters (the namespace and
        # ``/t`` plus 6 hex digits fit a namespace of up to 23); 16M names keep concurrent
        # test processes on one store apart.
        nested = previous.nested(name if name is not None else f"t{uuid.uuid4().hex[:6]}")
        self._compose(nested)
        try:
            yield
        finally:
            try:
                self._invalidator.bump([nested._versions.implicit[-1]], "namespace")
            finally:
                self._compose(previous)

    @contextmanager
    def disabled(self) -> Iterator[None]:
        """For the block, every read misses and nothing is stored: loaders always run and
        their results are returned, invalidations succeed and remove nothing (the cache runs
        over a :class:`~cacheplug.stores.NullStore`, without its L1). On exit the cache is back
        over its store, which the block never touched.

        ``stats()`` inside the block counts the block's misses and loads alone. Meant for
        tests (the pytest fixture ``cacheplug_disabled``), like :meth:`isolated`.
        """
        previous = self._engine
        root, *children = previous._keys.namespace.split("/")
        off = Engine(
            NullStore(),
            namespace=root,
            default_ttl=previous.default_ttl,
            lock_timeout=previous.lock_timeout,
            wait_timeout=previous.wait_timeout,
            strict=previous.strict,
            negative_ttl=previous.negative_ttl,
            clock=previous._clock,
            background_workers=1,
        )
        owner = off
        for child in children:  # a nested namespace keeps its name (``store_key`` agrees)
            off = off.nested(child)
        # Counters the disabled cache publishes (a Flask teardown does) are its own: the
        # publisher's memory of what it sent must not mix them with the real cache's.
        publisher, self._stats_publisher = self._stats_publisher, StatsPublisher()
        self._compose(off)
        try:
            yield
        finally:
            self._compose(previous)
            self._stats_publisher = publisher
            owner._invalidator.shutdown(0.0)
            owner._store.close()
