"""Replicas of hot keys: on a store that spreads keys over nodes (Redis Cluster), a hot
entry is copied to other nodes and each read picks one at random (see
``stores/redis/_copies``).

A :class:`Replicas` component holds the engine; its plan is ``get_or_load`` through a replica,
falling back to the plain ``get_or_load`` the driver is given.
"""

from __future__ import annotations

import math
from typing import Any

from cacheplug._engine.plans import CALL, READ, RUN, Plan, StoreOp
from cacheplug._engine.reads import Engine
from cacheplug._types import BYPASS, DEFAULT, MISSING, NOTHING, DefaultType, Tags, Ttl
from cacheplug.encoding._tags import Unread, checks, fresh_version, parse_versions


class Replicas:
    """Reads and fills of replicas for one engine."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _replicas_for(self, key: str, replicas: int | None) -> int:
        """How many replicas a read of ``key`` uses: as asked, else the cache's
        ``hot_key_replicas`` for a key detected hot; 0 or 1 for none."""
        if replicas is None:
            return (
                self._engine._hot_replicas
                if self._engine._hot_replicas and key in self._engine._hot.hot
                else 0
            )
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ValueError(f"replicas must be an int >= 0, not {replicas!r}")
        return replicas

    def copies(
        self,
        key: str,
        replicas: int | None,
        stale_ttl: Any,
        early: Any,
        refresh_ahead: Any,
        max_staleness: float | None,
    ) -> int:
        """How many replicas a ``get_or_load`` reads through; 0 for none (replicas serve
        plain reads only)."""
        copies = self._replicas_for(key, replicas)
        plain = (
            self._engine._plain_hits
            and stale_ttl is DEFAULT
            and early is DEFAULT
            and refresh_ahead is DEFAULT
            and max_staleness is None
        )
        return copies if copies > 1 and plain else 0

    def _pick_replica(
        self, skey: str, version_keys: tuple[str, ...], replicas: int
    ) -> tuple[str, str, tuple[str, ...]] | None:
        """A replica at random: ``(its key, its lease key, its version keys)``; ``None``
        when the store keeps no replicas. A replica records the entry's version keys and
        the key version that invalidations of the key bump."""
        names = self._engine._store.replica_names(skey, replicas)
        if not names:
            return None
        index = int(self._engine._draw() * len(names))
        lease = self._engine._store.replica_names(self._engine._keys.lease_of(skey), replicas)[
            index
        ]
        return names[index], lease, (*version_keys, self._engine._keys.key_version_of(skey))

    def _replica_hit(
        self,
        skey: str,
        version_keys: tuple[str, ...],
        replica: tuple[str, str, tuple[str, ...]],
        values: list[Any],
        epoch: int,
    ) -> Any:
        """The value of a valid, fresh replica (kept in L1 under the key itself), else
        ``MISSING``."""
        rkey, _, rversions = replica
        entry = self._engine._valid(rkey, values, rversions)
        if entry is None or type(entry) is Unread or entry.fresh_until < self._engine._now():
            return MISSING
        self._engine._counters.hits += 1
        self._engine._counters.replica_hits += 1
        local = self._engine._local
        if epoch >= 0 and local is not None and self._engine._store.fills.live:
            local.put(
                skey,
                entry.value,
                entry.fresh_until - self._engine._now(),
                version_keys,
                len(values[0]),
                epoch,
            )
        return entry.value

    def _ensure_args(
        self, replica: tuple[str, str, tuple[str, ...]], read: list[Any]
    ) -> tuple[list[int], tuple[list[str], list[int], int, str | None]]:
        """``ensure_versions`` for a replica about to be filled: the absent version keys and
        always the key version (ensuring it is what marks the key as replicated, and that must
        happen before the versions the replica records are read)."""
        rkey, _, rversions = replica
        positions = [i for i, value in enumerate(read) if value is None or i == len(read) - 1]
        keys = [rversions[i] for i in positions]
        fresh = [fresh_version() for _ in keys]
        return positions, (keys, fresh, self._engine._version_keep_ms(), rkey)

    def _primary_value(
        self, skey: str, version_keys: tuple[str, ...], values: list[Any]
    ) -> tuple[Any, float | None] | None:
        """``(value, seconds it stays fresh)`` of the entry itself, read as ``values``;
        ``None`` if it is not usable."""
        entry = self._engine._valid(skey, values, version_keys)
        if entry is None or type(entry) is Unread:
            return None
        if entry.fresh_until == math.inf:
            return entry.value, None
        remaining = entry.fresh_until - self._engine._now()
        return None if remaining <= 0 else (entry.value, remaining)

    def _write(
        self,
        replica: tuple[str, str, tuple[str, ...]],
        read: Any,
        value: Any,
        ttl: float | None,
    ) -> tuple[Any, ...] | None:
        """The ``put`` arguments storing ``value`` in the replica, recording the versions
        ``read`` before the value was; ``None`` when it is not to be stored."""
        if ttl == 0 or not isinstance(read, list):
            return None
        rkey, lease, rversions = replica
        made = checks(rversions, parse_versions(rversions, read))
        if made is None:
            return None
        recorded, conditions = made
        record = self._engine._encode(rkey, value, ttl, 0.0, recorded=recorded)
        if record is None:
            return None
        return rkey, record, self._engine._store_ttl_ms(ttl), lease, conditions

    def plan(
        self,
        key: str,
        tags: Tags,
        ttl: Ttl,
        negative_ttl: float | DefaultType | None,
        replicas: int,
    ) -> Plan:
        """``get_or_load`` through a replica: the value; ``BYPASS`` when the caller is to call
        the loader itself, ``NOTHING`` when it is to read as usual (the store keeps no
        replicas). A replica that misses is filled from the entry itself, or from what the
        plan's callable (the plain ``get_or_load``) returns if that misses too."""
        engine = self._engine
        skey, version_keys, found, epoch = engine._begin_read(key, tags, DEFAULT, DEFAULT, None)
        if found is BYPASS or found is not NOTHING:
            return found
        replica = self._pick_replica(skey, version_keys, replicas)
        if replica is None:
            return NOTHING
        values = yield (READ, [replica[0], *replica[2]], False)
        value = self._replica_hit(skey, version_keys, replica, values, epoch)
        if value is not MISSING:
            return value
        read: Any = values[1:]
        positions, args = self._ensure_args(replica, read)
        created = yield (CALL, "get", StoreOp.ENSURE_VERSIONS, False, args)
        read = engine._merge_versions(read, positions, created)
        primary = self._primary_value(
            skey, version_keys, (yield (READ, [skey, *version_keys], False))
        )
        if primary is None:
            value = yield (RUN,)
            fresh_for = engine._loaded_ttl(ttl, negative_ttl, value)
        else:
            engine._counters.hits += 1
            value, fresh_for = primary
        write = self._write(replica, read, value, fresh_for)
        if write is not None:
            yield (CALL, "get", StoreOp.PUT, False, write)
        return value
