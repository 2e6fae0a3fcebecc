"""The ``Cache`` facade: one object per configured cache, sync and async.

``Cache`` holds an engine (:mod:`cacheplug._engine`) and builds nothing itself: every call is a
decision of the engine and, where it touches the store, a plan that the sync or the async
driver carries out. The sync and async methods therefore differ only in the driver they
hand the plan to. ``get`` and ``get_or_load`` keep their read of the store inline rather
than in a plan: a plan costs about 0.65 µs a call on this path (measured: 1.50 µs for one
``READ`` step through the driver against 0.86 µs for the read itself), a fifth of a hit on
the in-process store. Their loads are plans, as every other store call is. The async
methods are in ``_async_methods``, the ones that hand the cache to a feature in
``_feature_methods``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, Unpack, overload

from cacheplug._async_methods import AsyncMethods
from cacheplug._engine.counters import check_delta, counter_plan
from cacheplug._engine.loads import Loads
from cacheplug._engine.plans import XFetch
from cacheplug._engine.read_many import get_many_plan
from cacheplug._engine.reads import Engine
from cacheplug._engine.replicas import Replicas
from cacheplug._engine.resilience import CircuitBreaker
from cacheplug._engine.write_through import write_through_plan
from cacheplug._engine.writes import add_plan, set_many_plan, set_plan
from cacheplug._feature_methods import FeatureMethods
from cacheplug._options import CacheOptions
from cacheplug._types import BYPASS, DEFAULT, FAILED, MISSING, NOTHING, DefaultType, Tags, Ttl
from cacheplug.encoding._tags import Unread, tag_names
from cacheplug.features._shared_stats import StatsPublisher
from cacheplug.stores import store_from_url
from cacheplug.stores.base import Store

if TYPE_CHECKING:
    from cacheplug.writebehind._queue import WriteBehind

T = TypeVar("T")
V = TypeVar("V")


class _Option(Generic[V]):
    """A read-only attribute of ``Cache`` that is the engine's option of the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, cache: None, owner: type) -> Self: ...
    @overload
    def __get__(self, cache: Cache, owner: type | None = None) -> V: ...
    def __get__(self, cache: Cache | None, owner: type | None = None) -> V | Self:
        if cache is None:
            return self
        value: V = getattr(cache._engine, self._name)
        return value

    def __set__(self, cache: Cache, value: V) -> None:
        raise AttributeError(f"{self._name} is set when the cache is made: Cache({self._name}=...)")


class Cache(AsyncMethods, FeatureMethods):
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
      data-only MessagePack otherwise (data-only JSON where ``msgpack`` is not installed); or
      ``"pickle"``, ``"msgpack"``, ``"json"``, ``"unsafe-pickle"``, or an object.
    - ``compression=None``: ``"none"``, ``"zlib"`` or ``"zstd"`` (``pip install
      'cacheplug[zstd]'``); ``None`` = ``"zlib"`` if ``compress_min_bytes`` is given, else
      ``"none"``. A cache that compresses reads entries of either compression.
    - ``compress_min_bytes=None``: compress payloads at least this large (with a
      compression and no ``compress_min_bytes``: 1024).
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
    - ``hot_key_replicas=0``, ``hot_key_qps=1000.0``: copies of keys read more than
      ``hot_key_qps`` times a second, on a store that spreads keys over nodes.
    """

    def __init__(self, store: Store | str | None = None, **options: Unpack[CacheOptions]) -> None:
        self._compose(Engine(store, **options))
        self._stats_publisher = StatsPublisher()
        self._queues: dict[str, WriteBehind] = {}

    def _compose(self, engine: Engine) -> None:
        self._engine = engine
        self._plain_hit = engine._embedded_hit if engine._plain_hits else None
        self._loads = Loads(engine)
        self._replicas = Replicas(engine)
        self._invalidator = engine._invalidator

    @classmethod
    def from_url(cls, url: str, /, **options: Unpack[CacheOptions]) -> Cache:
        """The cache for a store URL: ``memory://``, ``redis://``, ``rediss://``, ``unix://``."""
        return cls(store_from_url(url), **options)

    def __repr__(self) -> str:
        return f"<Cache namespace={self.namespace_name!r} store={self._engine._store!r}>"

    # -- what it was configured with ---------------------------------------------------------

    @property
    def namespace_name(self) -> str:
        """The namespace this cache's keys live in (``parent/child`` for a nested one)."""
        return self._engine._keys.namespace

    @property
    def store(self) -> Store:
        """The store underneath (for inspection; policies do not apply to direct use)."""
        return self._engine._store

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker guarding the store."""
        return self._engine._breaker

    # The options as validated (read-only: a cache is configured once).
    default_ttl: _Option[float | None] = _Option()
    stale_ttl: _Option[float] = _Option()
    early: _Option[XFetch | None] = _Option()
    refresh_ahead: _Option[float | None] = _Option()
    lock_timeout: _Option[float] = _Option()
    wait_timeout: _Option[float] = _Option()
    strict: _Option[bool] = _Option()
    negative_ttl: _Option[float | None] = _Option()

    def store_key(self, key: str) -> str:
        """The key under which ``key``'s value is kept in the store."""
        return self._engine._keys.data(key)

    def namespace(self, name: str) -> Cache:
        """A view of this cache whose keys live in the nested namespace ``name``.

        ``cache.namespace("catalog").bump()`` orphans every entry under it at once (O(1));
        the old entries age out by their TTL. The view has the whole API of the cache and
        shares its store, settings and tags: ``invalidate_tags`` on either reaches entries of
        both. Close the cache, not its views.
        """
        view = copy.copy(self)
        view._compose(self._engine.nested(name))
        return view

    # -- reads -------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The cached value of ``key``, or ``default``. A cached ``None`` is a hit."""
        engine = self._engine  # the embedded store's hit path first: see _engine/embedded.py
        if (hit := engine._embedded_hit) is not None and (found := hit(key)) is not NOTHING:
            return found
        skey, version_keys, found, epoch = engine._begin_get(key)
        if found is BYPASS:
            return default
        if found is not NOTHING:
            return found
        values = engine._read([skey, *version_keys], engine.strict)
        value = engine._finish_get(skey, values, version_keys, epoch)
        if isinstance(value, Unread):  # it records version keys not read yet
            values += engine._read(value.keys, engine.strict)
            value = engine._hit(skey, values, [*version_keys, *value.keys])
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
        engine = self._engine
        if replicas is not None or engine._hot_replicas:  # one test on the usual path
            copies = self._replicas.copies(
                key, replicas, stale_ttl, early, refresh_ahead, max_staleness
            )
            if copies:

                def plain() -> T:
                    return self.get_or_load(
                        key, loader, ttl, tags=tags, negative_ttl=negative_ttl, replicas=0
                    )

                plan = self._replicas.plan(key, tags, ttl, negative_ttl, copies)
                found = engine._run(plan, plain)
                if found is BYPASS:
                    return loader()
                return plain() if found is NOTHING else found
        hit = self._plain_hit if early is DEFAULT and refresh_ahead is DEFAULT else None
        if hit is not None and tags is None is max_staleness and (found := hit(key)) is not NOTHING:
            return found  # type: ignore[no-any-return]  # the embedded store's hit path, no tags
        skey, version_keys, found, epoch = engine._begin_read(
            key, tags, early, refresh_ahead, max_staleness
        )
        if found is BYPASS:
            return loader()
        if found is not NOTHING:
            return found  # type: ignore[no-any-return]
        values = engine._read([skey, *version_keys], False)
        options = (ttl, stale_ttl, early, refresh_ahead, max_staleness, negative_ttl)
        loads = self._loads
        value = engine._finish_read(
            skey, values, version_keys, loader, options, epoch, loads.refresh_soon
        )
        if value is MISSING and tags is None:
            recorded = engine._unread_keys(skey, version_keys)
            if recorded is not None:  # it records tags its load discovered: check them too
                version_keys = recorded
                values = engine._read([skey, *version_keys], False)
                value = engine._finish_read(
                    skey, values, version_keys, loader, options, epoch, loads.refresh_soon
                )
        if value is not MISSING:
            return value  # type: ignore[no-any-return]
        return loads.fill(skey, version_keys, options, loader)  # type: ignore[no-any-return]

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` that are present, as ``{key: value}``."""
        found: dict[str, Any] = self._engine._run(get_many_plan(self._engine, keys))
        return found

    # -- writes ------------------------------------------------------------------------------

    def set(self, key: str, value: Any, ttl: Ttl = DEFAULT, *, tags: Tags = None) -> bool:
        """Cache ``value`` under ``key`` (carrying ``tags``); True when stored.

        A load of ``key`` under way can no longer store its result over this one. A value
        over ``max_value_bytes`` is not stored and any older value is removed.
        """
        stored: bool = self._engine._run(set_plan(self._engine, key, value, ttl, tags))
        return stored

    def add(self, key: str, value: Any, ttl: Ttl = DEFAULT, *, tags: Tags = None) -> bool:
        """Cache ``value`` only if ``key`` has no (valid, fresh) value yet; True when stored."""
        stored: bool = self._engine._run(add_plan(self._engine, key, value, ttl, tags))
        return stored

    def set_many(
        self, mapping: Mapping[str, Any], ttl: Ttl = DEFAULT, *, tags: Tags = None
    ) -> list[str]:
        """Cache every value of ``mapping`` (each carrying ``tags``); the keys that could not
        be stored."""
        failed: list[str] = self._engine._run(set_many_plan(self._engine, mapping, ttl, tags))
        return failed

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
        plan = write_through_plan(self._engine, key, value, ttl, tags)
        result: T = self._engine._run(plan, writer)
        return result

    def incr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """Atomically add ``delta`` to the integer under ``key`` and return the new value.

        A missing key starts at 0 and gets ``ttl`` (default: no expiry); an existing counter
        keeps its TTL. An integer cached with ``set`` becomes a counter; anything else raises
        :class:`NotACounter`. Store failures raise :class:`CacheUnavailable`: a counter cannot
        fail open. See ``docs/core.md`` for how counters are stored (signed on signed caches).
        """
        engine = self._engine
        engine._drop_local([engine._keys.data(key)])
        try:
            return int(engine._run(counter_plan(engine, key, delta, ttl)))
        finally:
            engine._drop_local([engine._keys.data(key)])

    def decr(self, key: str, delta: int = 1, *, ttl: float | None = None) -> int:
        """``incr(key, -delta)``."""
        check_delta(delta)
        return self.incr(key, -delta, ttl=ttl)

    # -- invalidation ------------------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Remove ``key``'s value; True when there was one.

        Its lease goes too, so a load that started before cannot store its (older) result,
        and callers arriving from now on never share a load that started before. If the store
        cannot be reached, the deletion is queued and retried (see :meth:`invalidate`).
        """
        result = self._invalidator.entries("delete", [key])
        return result is not FAILED and bool(result > 0)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove the values of ``keys`` (and their leases, as :meth:`delete`); how many
        there were."""
        result = self._invalidator.entries("delete_many", keys)
        return 0 if result is FAILED else int(result)

    def invalidate(self, *keys: str, again_after: float | None = None) -> None:
        """Invalidate ``keys``: remove their values and leases, so that no reader gets the
        old value after this returns (call it after the write is committed).

        If the store cannot be reached, the invalidation is queued and retried with backoff;
        until it succeeds, this process reads these keys around the cache.
        ``again_after``: seconds after which to invalidate once more (a delayed double
        delete, for readers of replicas that lag behind the primary).
        """
        invalidator = self._invalidator
        invalidator.again(again_after, lambda: invalidator.entries("invalidate", keys))
        invalidator.entries("invalidate", keys)

    def invalidate_tags(self, *tags: str, again_after: float | None = None) -> None:
        """Invalidate every entry carrying any of ``tags`` (O(1) per tag, whatever the
        number of entries), including loads under way: they cannot store their result.

        Failures are queued and retried like :meth:`invalidate`'s.
        """
        version_keys = self._engine._versions.of_tags(tag_names(tags, None))  # any number
        invalidator = self._invalidator
        invalidator.again(again_after, lambda: invalidator.bump(version_keys, "tag"))
        invalidator.bump(version_keys, "tag")

    def bump(self) -> None:
        """Orphan every entry of this cache's namespace at once (O(1): its version counter
        moves on; old entries age out by TTL). A logical flush, safe for a shared store."""
        self._invalidator.bump([self._engine._versions.implicit[-1]], "namespace")

    # -- lifetime ----------------------------------------------------------------------------

    def close(self, flush_timeout: float = 5.0) -> None:
        """Apply pending invalidations (trying for up to ``flush_timeout`` seconds), finish
        background refreshes and release the store's connections."""
        self._invalidator.shutdown(flush_timeout)
        self._engine._store.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
