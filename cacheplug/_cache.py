"""The ``Cache`` facade: one object per configured cache, sync and async.

The sync methods live here, the async twins in ``_async_api``; both leave every decision to
``CacheCore`` and differ only in how they do I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from cacheplug._async_api import AsyncCacheAPI, _check_delta
from cacheplug._locks import Lock
from cacheplug._options import CacheOptions
from cacheplug._read_many import get_many_plan
from cacheplug._stampede import XFetch
from cacheplug._tags import Unread, tag_names
from cacheplug._types import BYPASS, DEFAULT, FAILED, MISSING, NOTHING, DefaultType, Tags, Ttl
from cacheplug._write_plans import add_plan, existing_versions_plan, set_many_plan, set_plan
from cacheplug.stores import store_from_url

if TYPE_CHECKING:
    from cacheplug._decorators import CacheDecorator, KeySpec, TagSpec
    from cacheplug._inspect import EntryInfo
    from cacheplug._metrics import CacheStats
    from cacheplug._write_behind import WriteBehind

T = TypeVar("T")


class Cache(AsyncCacheAPI):
    """A cache over one store.

    ``Cache()`` keeps values in this process (:class:`MemoryStore`); ``Cache("redis://...")``
    or ``Cache(RedisStore(...))`` shares them through Redis.

    Options (each with its default):

    - ``namespace="default"``: keeps this cache's keys apart from other caches on the store.
    - ``default_ttl=300.0``: seconds, for calls that pass no ``ttl``; ``None`` = no expiry.
    - ``stale_ttl=0.0``: seconds an expired entry may still be served while one caller
      refreshes it in the background (stale-while-revalidate); 0 = off.
    - ``early=None``: an :class:`XFetch` for probabilistic early recomputation.
    - ``refresh_ahead=None``: a fraction of the ttl (e.g. 0.8) after which a hit triggers a
      background refresh.
    - ``lock_timeout=10.0``: seconds a loader may hold a key's lease; a crashed loader's
      lease expires after this.
    - ``wait_timeout=None``: seconds a caller waits for another's load before loading
      itself (without storing); ``None`` = ``lock_timeout``.
    - ``secret=None``: signs entries (keyed BLAKE2b) and enables pickle on shared stores.
      ``secret_fallbacks=()``: older secrets still accepted while entries age out.
    - ``serializer="auto"``: pickle when entries are signed or the store is in-process,
      data-only JSON otherwise; or ``"pickle"``, ``"json"``, ``"unsafe-pickle"``, or an object.
    - ``compress_min_bytes=None``: zlib-compress payloads at least this large.
    - ``max_value_bytes=1048576``: larger entries are not cached (and never half-written).
    - ``strict=False``: explicit ``get``/``set``/... raise :class:`CacheUnavailable` instead of
      failing open. ``get_or_load`` and ``cached`` always fail open. (Invalidations that
      fail are queued and retried either way; strict ones raise too.)
    - ``negative_ttl=None``: seconds to cache a ``None`` returned by a loader; ``None`` =
      like any value, ``0`` = never.
    - ``max_pending_invalidations=10000``: invalidations kept while the store is unreachable;
      past that, the whole namespace is bumped when it is back.
    - ``background_workers=4``: threads for background refreshes.
    - ``breaker=None``: a :class:`CircuitBreaker` (default: 3 failures, 2 s open).
    - ``clock=None``: a :class:`~cacheplug.testing.FakeClock` in tests.
    - ``l1=None``: a :class:`LocalTier` to keep hot values in this process too, kept
      coherent by the invalidation bus (see ``docs/hot-keys.md``).
    """

    @classmethod
    def from_url(cls, url: str, /, **options: Unpack[CacheOptions]) -> Cache:
        """The cache for a store URL: ``memory://``, ``redis://``, ``rediss://``, ``unix://``."""
        return cls(store_from_url(url), **options)

    def get(self, key: str, default: Any = None) -> Any:
        """The cached value of ``key``, or ``default``. A cached ``None`` is a hit."""
        skey, version_keys, found, epoch = self._begin_get(key)
        if found is BYPASS:
            return default
        if found is not NOTHING:
            return found
        values = self._read([skey, *version_keys], self.strict)
        value = self._finish_get(skey, values, version_keys, epoch)
        if isinstance(value, Unread):  # it records version keys not read yet
            values += self._read(value.keys, self.strict)
            value = self._hit(skey, values, [*version_keys, *value.keys])
        return default if value is MISSING or isinstance(value, Unread) else value

    def get_or_load(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: Ttl = DEFAULT,
        *,
        tags: Tags = None,
        stale_ttl: float | DefaultType = DEFAULT,
        early: XFetch | DefaultType | None = DEFAULT,
        refresh_ahead: float | DefaultType | None = DEFAULT,
        max_staleness: float | None = None,
        negative_ttl: float | DefaultType | None = DEFAULT,
        replicas: int | None = None,
    ) -> T:
        """The cached value of ``key``; on a miss, ``loader()``'s result, cached for ``ttl``.

        Protected against stampedes: concurrent callers in this process share one loader
        call, and across processes only the holder of the key's lease loads while the others
        wait for its result. ``stale_ttl``, ``early`` and ``refresh_ahead`` override the
        cache's defaults for this call. Never raises because of the store: when it is down,
        ``loader()`` is called. Exceptions from ``loader`` propagate and nothing is cached.

        ``tags``: names (``"product:42"``) that :meth:`invalidate_tags` can invalidate this
        entry by; pass the same tags wherever the key is read. ``max_staleness``: seconds; an
        entry written longer ago is a miss (``0`` bypasses the cache: ``loader()`` is called
        and nothing is read or stored). ``negative_ttl``: seconds to cache a ``None`` result
        (``0``: never cache it; default: the cache's ``negative_ttl``, else ``ttl``).

        ``replicas``: on a store that spreads keys over nodes (Redis Cluster), keep up to this
        many copies of a hot entry on different nodes and read one at random; the default
        (``None``) replicates keys detected hot when the cache has ``hot_key_replicas`` set.
        Replicas serve plain reads (not ``stale_ttl``, ``early``, ``refresh_ahead`` or
        ``max_staleness`` ones); invalidations reach them all.
        """
        if replicas is not None or self._hot_replicas:  # one test on the usual path
            copies = self._replication(
                key, replicas, stale_ttl, early, refresh_ahead, max_staleness
            )
            if copies:
                return self._get_replicated(key, loader, ttl, tags, negative_ttl, copies)
        skey, version_keys, found, epoch = self._begin_read(
            key, tags, early, refresh_ahead, max_staleness
        )
        if found is BYPASS:
            return loader()
        if found is not NOTHING:
            return found  # type: ignore[no-any-return]
        values = self._read([skey, *version_keys], False)
        options = (ttl, stale_ttl, early, refresh_ahead, max_staleness, negative_ttl)
        value = self._finish_read(
            skey, values, version_keys, loader, options, epoch, self._refresh_soon
        )
        if value is not MISSING:
            return value  # type: ignore[no-any-return]
        policy = self._read_policy(*options)
        self._listen_to_bus()
        plan = self._fill_plan
        return self._flights.run(  # type: ignore[no-any-return]
            self._flight_key(skey, version_keys),
            lambda: self._run(plan(skey, version_keys, policy, check_first=False), loader),
            version_keys,
        )

    def _get_replicated(
        self,
        key: str,
        loader: Callable[[], T],
        ttl: Ttl,
        tags: Tags,
        negative_ttl: float | DefaultType | None,
        replicas: int,
    ) -> T:
        """``get_or_load`` through a replica; a replica that misses is filled from the entry
        itself (loaded as usual if that misses too)."""
        skey, version_keys, found, epoch = self._begin_read(key, tags, DEFAULT, DEFAULT, None)
        if found is BYPASS:
            return loader()
        if found is not NOTHING:
            return found  # type: ignore[no-any-return]
        replica = self._pick_replica(skey, version_keys, replicas)
        if replica is None:
            return self.get_or_load(
                key, loader, ttl, tags=tags, negative_ttl=negative_ttl, replicas=0
            )
        values = self._read([replica[0], *replica[2]], False)
        value = self._replica_hit(skey, version_keys, replica, values, epoch)
        if value is not MISSING:
            return value  # type: ignore[no-any-return]
        read: Any = values[1:]
        positions, args = self._replica_ensure_args(replica, read)
        read = self._merge_versions(
            read, positions, self._call("get", False, self._store.ensure_versions, *args)
        )
        primary = self._primary_value(skey, version_keys, self._read([skey, *version_keys], False))
        if primary is None:
            value = self.get_or_load(
                key, loader, ttl, tags=tags, negative_ttl=negative_ttl, replicas=0
            )
            fresh_for = self._loaded_ttl(ttl, negative_ttl, value)
        else:
            self._counters.hits += 1
            value, fresh_for = primary
        write = self._replica_write(replica, read, value, fresh_for)
        if write is not None:
            self._call("get", False, self._store.put, *write)
        return value  # type: ignore[no-any-return]

    def set(self, key: str, value: Any, ttl: Ttl = DEFAULT, *, tags: Tags = None) -> bool:
        """Cache ``value`` under ``key`` (carrying ``tags``); True when stored.

        A load of ``key`` under way can no longer store its result over this one. A value
        over ``max_value_bytes`` is not stored and any older value is removed.
        """
        stored: bool = self._run(set_plan(self, key, value, ttl, tags))
        return stored

    def write_through(
        self,
        key: str,
        value: Any,
        writer: Callable[[], T],
        ttl: Ttl = DEFAULT,
        *,
        tags: Tags = None,
    ) -> T:
        """Run ``writer()`` (the source of truth, e.g. the database write of ``value``), then
        cache ``value`` under ``key``; returns what ``writer`` returned.

        The value is cached only if no other write of ``key`` overlapped this one, so
        concurrent writers never leave the older value cached; in any doubt (overlap, store
        error, ``writer`` raising) the key is invalidated instead. See ``docs/writes.md``.
        """
        from cacheplug._writes import write_through

        return write_through(self, key, value, writer, ttl, tags)

    def write_behind(
        self,
        name: str,
        sink: Callable[[list[Any]], None],
        *,
        batch_size: int = 500,
        flush_every: float = 1.0,
        merge: Callable[[Any, Any], Any] | None = None,
        max_length: int = 100_000,
        max_deliveries: int = 5,
        claim_idle: float = 30.0,
        durable: bool = True,
        update_cache: bool | None = None,
        ttl: Ttl = DEFAULT,
    ) -> WriteBehind:
        """A write-behind queue: ``put(key, value)`` returns at once; workers (``drain``,
        ``run``, ``start``) hand batches of :class:`~cacheplug.QueuedWrite`, one per key
        (the last value, or the values folded by ``merge``), to ``sink`` at most every
        ``flush_every`` seconds or ``batch_size`` writes, and acknowledge them only after it
        returns. ``sink`` must be idempotent (by write id): a batch whose worker died mid-way
        is delivered again, the same. Without ``merge``, ``put`` also caches the value under
        its key (``update_cache``, for ``ttl``). See ``docs/writes.md``."""
        from cacheplug._write_behind import WriteBehind

        queue = WriteBehind(
            self,
            name,
            sink,
            batch_size=batch_size,
            flush_every=flush_every,
            merge=merge,
            max_length=max_length,
            max_deliveries=max_deliveries,
            claim_idle=claim_idle,
            durable=durable,
            update_cache=update_cache,
            ttl=ttl,
        )
        self._queues[name] = queue
        return queue

    def write_behind_queues(self) -> dict[str, WriteBehind]:
        """The write-behind queues made with :meth:`write_behind`, by name (what the worker
        commands drain)."""
        return dict(sorted(self._queues.items()))

    def write_around(self, key: str, writer: Callable[[], T], *, tags: Tags = None) -> T:
        """Run ``writer()``, then invalidate ``key`` (and ``tags``): the next read loads the
        new value. Call it after a write that is committed when ``writer`` returns."""
        from cacheplug._writes import write_around

        return write_around(self, key, writer, tags)

    def add(self, key: str, value: Any, ttl: Ttl = DEFAULT, *, tags: Tags = None) -> bool:
        """Cache ``value`` only if ``key`` has no (valid, fresh) value yet; True when stored."""
        stored: bool = self._run(add_plan(self, key, value, ttl, tags))
        return stored

    def delete(self, key: str) -> bool:
        """Remove ``key``'s value; True when there was one.

        Its lease goes too, so a load that started before cannot store its (older) result,
        and callers arriving from now on never share a load that started before. If the store
        cannot be reached, the deletion is queued and retried (see :meth:`invalidate`).
        """
        result = self._invalidate_entries("delete", [key])
        return result is not FAILED and bool(result > 0)

    def invalidate(self, *keys: str, again_after: float | None = None) -> None:
        """Invalidate ``keys``: remove their values and leases, so that no reader gets the
        old value after this returns (call it after the write is committed).

        If the store cannot be reached, the invalidation is queued and retried with backoff;
        until it succeeds, this process reads these keys around the cache.
        ``again_after``: seconds after which to invalidate once more (a delayed double
        delete, for readers of replicas that lag behind the primary).
        """
        self._again(again_after, lambda: self._invalidate_entries("invalidate", keys))
        self._invalidate_entries("invalidate", keys)

    def invalidate_tags(self, *tags: str, again_after: float | None = None) -> None:
        """Invalidate every entry carrying any of ``tags`` (O(1) per tag, whatever the
        number of entries), including loads under way: they cannot store their result.

        Failures are queued and retried like :meth:`invalidate`'s.
        """
        version_keys = self._versions.of_tags(tag_names(tags))
        self._again(again_after, lambda: self._bump_now(version_keys, "tag"))
        self._bump_now(version_keys, "tag")

    def inspect(self, key: str) -> EntryInfo | None:
        """What is stored under ``key`` (age, freshness, tags, size, state), or ``None``;
        for people and tools, not for the hot path. Raises :class:`CacheUnavailable` when
        the store cannot be reached."""
        from cacheplug._inspect import inspect_entry

        return inspect_entry(self, key)

    def publish_stats(self, *, every: float = 0.0) -> bool:
        """Add this process's counters (since its last call) to totals kept in the store,
        for :meth:`shared_stats` in any process; skipped (False) if the last call was less
        than ``every`` seconds ago. The adapters call it after requests, ``every=10``."""
        return self._stats_publisher.publish_if_due(self, every)

    def shared_stats(self) -> tuple[CacheStats, list[tuple[str, float]]]:
        """The counters every process of this cache published (see :meth:`publish_stats`),
        and the hottest keys the last one saw. Raises :class:`CacheUnavailable` when the store
        cannot be reached."""
        from cacheplug._shared_stats import shared_stats

        return shared_stats(self)

    def bump(self) -> None:
        """Orphan every entry of this cache's namespace at once (O(1): its version counter
        moves on; old entries age out by TTL). A logical flush, safe for a shared store."""
        self._bump_now([self._versions.implicit[-1]], "namespace")

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` that are present, as ``{key: value}``."""
        found: dict[str, Any] = self._run(get_many_plan(self, keys))
        return found

    def set_many(
        self, mapping: Mapping[str, Any], ttl: Ttl = DEFAULT, *, tags: Tags = None
    ) -> list[str]:
        """Cache every value of ``mapping`` (each carrying ``tags``); the keys that could not
        be stored."""
        failed: list[str] = self._run(set_many_plan(self, mapping, ttl, tags))
        return failed

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the values of ``keys`` (and their leases, as :meth:`delete`); how many
        there were."""
        result = self._invalidate_entries("delete_many", keys)
        return 0 if result is FAILED else int(result)

    def _existing_versions(
        self, version_keys: Sequence[str], read: Any, near: str | None = None
    ) -> Any:
        """``read`` (versions of ``version_keys``) with absent ones created (for the entry
        ``near``); FAILED if the store could not say."""
        return self._run(existing_versions_plan(self, version_keys, read, near))

    def incr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Atomically add ``delta`` to the integer under ``key`` and return the new value.

        A missing key starts at 0 and gets ``ttl`` (default: no expiry); an existing counter
        keeps its TTL. An integer cached with ``set`` becomes a counter; anything else raises
        :class:`NotACounter`. Store failures raise :class:`CacheUnavailable`: a counter cannot
        fail open. See ``docs/core.md`` for how counters are stored (signed on signed caches).
        """
        self._drop_local([self._keys.data(key)])
        try:
            return int(self._run(self._counter_plan(key, delta, ttl)))
        finally:
            self._drop_local([self._keys.data(key)])

    def decr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """``incr(key, -delta)``."""
        _check_delta(delta)
        return self.incr(key, -delta, ttl=ttl)

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
        return Lock(self, name, timeout, blocking=blocking, blocking_timeout=blocking_timeout)

    def close(self, flush_timeout: float = 5.0) -> None:
        """Apply pending invalidations (trying for up to ``flush_timeout`` seconds), finish
        background refreshes and release the store's connections."""
        self._shutdown(flush_timeout)
        self._store.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        from cacheplug._decorators import CacheDecorator, ReadOptions

        options = ReadOptions(stale_ttl=stale_ttl, early=early, refresh_ahead=refresh_ahead)
        self._read_policy(ttl, stale_ttl, early, refresh_ahead)  # validate now, not per call
        return CacheDecorator(self, ttl, key, options, tags)
