"""The Redis Cluster store, over redis-py's ``RedisCluster``: ``redis+cluster://host:port``.

Every atomic step keeps to one hash slot: an entry and its lease share the slot of the user
key (the ``{...}`` in store keys), and each script touches one entry. Version keys (tags,
namespaces) live in slots of their own, so what the standalone store does in one script is
split here:

- **Reads** fetch the entry and its version keys with ``MGET`` per slot (redis-py groups them
  by node); the reader still checks the versions an entry records, so correctness does not
  depend on the writer's checks.
- **Fills and writes** store the entry under its lease in one script, then read the versions
  they recorded: if one moved on meanwhile, the fill is reported as refused (so nobody shares
  its value) — readers reject the entry anyway.
- **Invalidations** wait for a replica to acknowledge them (``WAIT 1``, see ``_acks``)
  before they return. A replica that does not answer in time is not an outage: the
  invalidation is on the master, and its replication is confirmed in the background.

MOVED/ASK redirections and failovers are followed by redis-py. The async methods run the sync
ones (they block the event loop for a round trip): an asyncio cluster client is future work.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any, Final, cast

import redis
import redis.cluster

from cacheplug._types import BOOKKEEPING_TTL_MS
from cacheplug.stores.base import VersionCheck
from cacheplug.stores.redis import _scripts as scripts
from cacheplug.stores.redis._acks import AcknowledgedWrites
from cacheplug.stores.redis._cluster_client import ClusterConnection
from cacheplug.stores.redis._common import ScriptedStore
from cacheplug.stores.redis._copies import (
    CopyNames,
    in_shard,
    marker_of,
    purpose,
    shard_of,
    spread,
)
from cacheplug.stores.redis._fills import ClientPubSub, RedisFillListener
from cacheplug.stores.redis._scripts import ScriptCall

_KEY_VERSION_KEEP_MS: Final = BOOKKEEPING_TTL_MS
logger = logging.getLogger("cacheplug")


def _ensure_persistent(copy: str, version: int | bytes) -> ScriptCall:
    return ScriptCall("version script", "ensure_persistent", [copy], [version])


class RedisClusterStore(ScriptedStore):
    """A store on a Redis Cluster.

    ``url`` names one node or several to start from:
    ``redis+cluster://[[user]:password@]host:port[,host:port...][?options]`` (the client
    discovers the others; ``rediss+cluster://`` is not supported yet). Query parameters
    (``socket_timeout``, ``socket_connect_timeout``, ``max_connections``, ``password``,
    ``username``) override the keyword arguments.

    ``max_connections``: the size of the connection pool to each node, default
    :attr:`DEFAULT_MAX_CONNECTIONS` (50). A caller that finds every connection to a node busy
    waits for one instead of failing: a full pool is back-pressure, not an outage. It waits
    ``pool_timeout`` seconds at a time (default: the socket timeout), and fails only when
    connections came back broken and none healthy during a wait, or none came back at all for
    ten waits.

    ``replica_ack_timeout_ms``: how long an invalidation waits for a replica's
    acknowledgement (at most 80 % of the socket timeout); one that gets none is on its
    master all the same, returns, and is confirmed in the background
    (:meth:`unconfirmed_invalidations`). ``failover_wait``: for how long an invalidation is
    tried again while a master fails over (default 5 s; a failover takes about
    ``cluster-node-timeout`` and a second), before it fails and the cache queues it.
    """

    shared = True
    DEFAULT_MAX_CONNECTIONS: Final = 50

    def __init__(
        self,
        url: str,
        *,
        socket_timeout: float = 0.5,
        socket_connect_timeout: float = 0.5,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        pool_timeout: float | None = None,
        replica_ack_timeout_ms: int = 500,
        failover_wait: float = 5.0,
    ) -> None:
        if max_connections is None:  # as RedisStore
            max_connections = self.DEFAULT_MAX_CONNECTIONS
        self.url = url
        self._conn = ClusterConnection(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            max_connections=max_connections,
            pool_timeout=pool_timeout,
        )
        # WAIT must return before the socket gives up on its reply.
        timeout_ms = max(1, min(replica_ack_timeout_ms, int(self._conn.socket_timeout * 800)))
        self._acks = AcknowledgedWrites(lambda: self._client, timeout_ms, failover_wait)
        self._copies = CopyNames()
        self.channel = "cacheplug:fills:0"
        self._fills = RedisFillListener(
            cast("redis.Redis", ClientPubSub(lambda: self.client)), self.channel
        )

    @classmethod
    def from_url(cls, url: str) -> RedisClusterStore:
        """The store for ``url`` with default options."""
        return cls(url)

    @property
    def client(self) -> redis.cluster.RedisCluster:
        """The underlying redis-py cluster client, made on first use: a cluster that is down
        when the application starts must not stop it from starting."""
        return self._conn.client

    def clients(self) -> tuple[redis.cluster.RedisCluster, redis.cluster.RedisCluster]:
        """Both clients: the retrying one and one that never retries (for writes that must
        not be repeated, such as a write-behind append), made on first use."""
        return self._conn.clients()

    @property
    def _client(self) -> redis.cluster.RedisCluster:
        return self._conn.available

    # -- primitives --------------------------------------------------------------------------

    def _script(self, call: ScriptCall) -> Any:
        return self._conn.script(call)

    def get(self, key: str) -> bytes | None:
        return cast("bytes | None", self._conn.run("GET", self._client.get, key))

    def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        self._conn.run("SET", self._client.set, key, value, px=ttl_ms)

    def add(self, key: str, value: bytes, ttl_ms: int | None) -> bool:
        return bool(self._conn.run("SET NX", self._client.set, key, value, px=ttl_ms, nx=True))

    def delete(self, key: str) -> bool:
        return bool(self._conn.run("DEL", self._client.delete, key))

    def ttl_ms(self, key: str) -> int | None:
        return scripts.ttl_from_pttl(int(self._conn.run("PTTL", self._client.pttl, key)))

    def fill_with_lease(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        token: bytes,
        versions: Sequence[VersionCheck] = (),
    ) -> bool:
        return self._write(key, lease_key, token, value, ttl_ms, False, versions)

    def put(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        versions: Sequence[VersionCheck] = (),
        only_if_absent: bool = False,
    ) -> bool:
        written = self._write(key, lease_key, b"", value, ttl_ms, only_if_absent, versions)
        marker = marker_of(key)
        # A new value: replicas of the key (if it has any) hold the old one.
        if written and marker is not None and self._conn.run("EXISTS", self._client.exists, marker):
            self._bump_key_version(key, marker)
        return written

    def _write(
        self,
        key: str,
        lease_key: str,
        token: bytes,
        value: bytes,
        ttl_ms: int | None,
        only_if_absent: bool,
        versions: Sequence[VersionCheck],
    ) -> bool:
        """A fill under the lease ``token``, or a put (``token`` empty): write.lua's
        arguments, in its order, each version key read in ``key``'s shard."""
        placed = self._placed(versions, shard_of(key))
        # A replica with its copies: one atomic script, as on a single Redis. Otherwise the
        # script cannot reach the version keys, and they are checked before and after it.
        atomic = all(self._same_slot(key, check[0]) for check in placed)
        checked = placed if atomic else ()
        write = scripts.write_call(
            key, lease_key, token, value, ttl_ms, self.channel, only_if_absent, checked
        )
        if not atomic and not self._versions_still_hold(placed):
            if token:
                self.release_lease(key, lease_key, token)  # refused: let the waiters go
            return False
        written = bool(self._script(write))
        if not atomic:
            written = written and self._kept_if_still_current(key, value, placed)
        if written:
            self._extend_markers(versions, ttl_ms)
        return written

    def _placed(self, versions: Sequence[VersionCheck], shard: int) -> list[VersionCheck]:
        """``versions`` with each version key that has copies replaced by its copy in
        ``shard``."""
        placed = []
        for version_key, version, create in versions:
            copies = self._copies.of(version_key)
            placed.append((version_key if copies is None else copies[shard], version, create))
        return placed

    @staticmethod
    def _same_slot(key: str, other: str) -> bool:
        return bool(key.startswith("{~") and other.startswith(key[: key.index("}") + 1]))

    def _extend_markers(self, versions: Sequence[VersionCheck], ttl_ms: int | None) -> None:
        """A key's replica marker must outlive its replicas: else a key invalidation would
        not know to reach them."""
        for version_key, _, _ in versions:
            if purpose(version_key) == "v":
                if ttl_ms is None:
                    self._conn.run("PERSIST", self._client.persist, version_key)
                else:
                    self._conn.run("PEXPIRE", self._client.pexpire, version_key, ttl_ms, gt=True)

    def _kept_if_still_current(
        self, key: str, value: bytes, versions: Sequence[VersionCheck]
    ) -> bool:
        """After a write: if a version moved on meanwhile (the check and the write are not
        one step here), take the entry back out (if it is still ours) and report it refused."""
        if self._versions_still_hold(versions):
            return True
        self._script(ScriptCall("remove script", "remove_if", [key], [value]))
        return False

    def _versions_still_hold(self, versions: Sequence[VersionCheck]) -> bool:
        if not versions:
            return True
        keys = [version_key for version_key, _, _ in versions]
        current = self._conn.run("MGET", self._client.mget_nonatomic, keys)
        return all(
            value == str(version).encode()
            for (_, version, _), value in zip(versions, current, strict=True)
        )

    def ensure_versions(
        self,
        version_keys: Sequence[str],
        fresh: Sequence[int],
        keep_ms: int,
        near: str | None = None,
    ) -> list[bytes | None]:
        shard = shard_of(near) if near is not None else 0
        found: list[bytes | None] = []
        for key, version in zip(version_keys, fresh, strict=True):
            copies = self._copies.of(key)
            if copies is None:
                found.append(self._script(scripts.ensure_call([key], [version], keep_ms))[0])
            elif purpose(key) == "n":
                # Namespace versions are few and read by everything: kept for good, and every
                # copy made from shard 0's, so that they agree.
                home = self._script(_ensure_persistent(copies[0], version))
                if shard != 0:
                    home = self._script(_ensure_persistent(copies[shard], home))
                found.append(home)
            else:
                # A key version: mark the key as replicated *before* reading the copy, so a key
                # invalidation from now on reaches the copies (see _bump_key_version).
                self._conn.run("SET", self._client.set, key, b"1", px=keep_ms, nx=True)
                self._conn.run("PEXPIRE", self._client.pexpire, key, keep_ms, gt=True)
                ensure = scripts.ensure_call([copies[shard]], [version], keep_ms)
                found.append(self._script(ensure)[0])
        return found

    def bump_versions(
        self, version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int
    ) -> None:
        for key, version in zip(version_keys, fresh, strict=True):
            copies = self._copies.of(key)
            if copies is None:
                self._acks.run(scripts.BUMP, [key], [self.channel, keep_ms, version])
            else:
                self._acks.set_copies(copies, version, None if purpose(key) == "n" else keep_ms)
                self._publish("!" + key)

    def invalidate(self, entries: Sequence[tuple[str, str]]) -> int:
        removed = 0
        for key, lease_key in entries:
            marker = marker_of(key)
            if marker is None:
                removed += int(self._acks.run(scripts.INVALIDATE, [key, lease_key], [self.channel]))
                continue
            existed, replicated = self._acks.run(
                scripts.INVALIDATE_MARKED, [key, lease_key, marker], [self.channel]
            )
            removed += int(existed)
            if replicated:
                self._bump_key_version(key, marker)
        return removed

    def _bump_key_version(self, key: str, marker: str) -> None:
        """Outdate every replica of ``key``: they record a copy of its key version."""
        copies = self._copies.of(marker)
        assert copies is not None
        self._acks.set_copies(copies, secrets.randbits(53) | 1, _KEY_VERSION_KEEP_MS)
        # Again, now that no replica is current: an L1 that refilled from a replica between
        # the first announcement and the bump drops it.
        self._publish("!" + key)

    def _publish(self, message: str) -> None:
        self._conn.run("PUBLISH", self._client.publish, self.channel, message)

    # -- composites --------------------------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        read = list(keys)
        shard = -1
        for position, key in enumerate(read):
            copies = self._copies.of(key)
            if copies is not None:
                if shard < 0:
                    shard = shard_of(read[0])
                read[position] = copies[shard]
        if read[0].startswith("{~"):
            tag = read[0][: read[0].index("}") + 1]
            if all(key.startswith(tag) for key in read):
                # A replica and its copies share a slot: one plain MGET, no pipeline.
                mget = self._client.execute_command
                return cast("list[bytes | None]", self._conn.run("MGET", mget, "MGET", *read))
        return cast("list[bytes | None]", self._conn.run("MGET", self._client.mget_nonatomic, read))

    # -- replicas of hot keys ----------------------------------------------------------------

    def replica_names(self, key: str, replicas: int) -> list[str]:
        """Names for up to ``replicas`` replicas of ``key``, spread over the cluster's
        slots (at most 16)."""
        return [in_shard(key, shard) for shard in spread(replicas)]

    def delete_many(self, keys: Sequence[str]) -> int:
        return sum(self.delete(key) for key in keys)

    def unconfirmed_invalidations(self) -> int:
        """How many invalidations landed on their masters without a replica's
        acknowledgement yet (confirmed, or sent again after a failover, in the background)."""
        return len(self._acks.unconfirmed)

    def confirm_invalidations(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every invalidation is on a replica too."""
        return self._acks.unconfirmed.wait(timeout)

    def close(self) -> None:
        left = self.unconfirmed_invalidations()
        if left and not self.confirm_invalidations(1.0):
            logger.warning(
                "cacheplug: closing with %d cluster invalidations on their masters that no "
                "replica acknowledged yet",
                self.unconfirmed_invalidations(),
            )
        self._acks.unconfirmed.stop()
        self._fills.stop()
        self._conn.close()

    async def aclose(self) -> None:
        """Nothing belongs to the event loop here (the async methods run the sync ones)."""
