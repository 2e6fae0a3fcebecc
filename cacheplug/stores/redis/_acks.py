"""Writes a replica has acknowledged, on a Redis Cluster: the invalidations.

An invalidation returns only once a replica of its master has it too (``WAIT 1`` on the
connection that wrote it), so a master that dies right after cannot take it along: the
replica that takes over has it. If no replica answers in time the call fails, and the cache
queues and retries the invalidation like one that could not reach the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import redis.cluster

from cacheplug._redact import redact
from cacheplug.exceptions import CacheUnavailable
from cacheplug.stores.redis._scripts import CLUSTER_ERRORS as _ERRORS
from cacheplug.stores.redis._untyped import node_for_key, queue_command

_REPLICAS_TTL: Final = 5.0  # seconds a master's replica count is trusted


class AcknowledgedWrites:
    """Runs writes on a slot's master and waits for a replica to acknowledge them.

    ``client``: the cluster client (raising :class:`CacheUnavailable` when there is none);
    ``timeout_ms``: how long ``WAIT`` waits for the acknowledgement.
    """

    def __init__(self, client: Callable[[], redis.cluster.RedisCluster], timeout_ms: int) -> None:
        self._client = client
        self._timeout_ms = timeout_ms
        self._replicas: dict[str, tuple[bool, float]] = {}

    def set_copies(self, copies: Sequence[str], version: int, keep_ms: int | None) -> None:
        """Set every copy to ``version``, node by node, each node's writes acknowledged by a
        replica (as :meth:`run`)."""
        by_node: dict[str, tuple[Any, list[str]]] = {}
        try:
            for copy in copies:
                node = node_for_key(self._client(), copy)
                by_node.setdefault(node.name, (node, []))[1].append(copy)
            for node, names in by_node.values():
                connection = self._client().get_redis_connection(node)
                replicated = self._has_replicas(node)
                with connection.pipeline(transaction=False) as pipe:
                    for name in names:
                        pipe.set(name, version, px=keep_ms)
                    if replicated:
                        queue_command(pipe, "WAIT", 1, self._timeout_ms)
                    acknowledged = pipe.execute()[-1] if replicated else 1
                if int(acknowledged) < 1:
                    self._replicas.pop(node.name, None)  # look again next time
                    raise CacheUnavailable("no replica acknowledged the invalidation in time")
        except _ERRORS as exc:
            self._client().nodes_manager.initialize()
            raise CacheUnavailable(redact(f"redis cluster invalidation failed: {exc}")) from exc

    def run(self, lua: str, keys: list[str], args: list[Any]) -> Any:
        """Run an invalidation script on the master of ``keys``' slot and wait until a
        replica has it too (same connection: ``WAIT`` counts that connection's writes)."""
        try:
            node = node_for_key(self._client(), keys[0])
            connection = self._client().get_redis_connection(node)
            replicated = self._has_replicas(node)
            with connection.pipeline(transaction=False) as pipe:
                pipe.eval(lua, len(keys), *keys, *args)
                if replicated:
                    queue_command(pipe, "WAIT", 1, self._timeout_ms)
                replies = pipe.execute()
        except _ERRORS as exc:
            self._client().nodes_manager.initialize()  # the slot may have moved: look again
            raise CacheUnavailable(redact(f"redis cluster invalidation failed: {exc}")) from exc
        if replicated and int(replies[1]) < 1:
            self._replicas.pop(node.name, None)
            raise CacheUnavailable("no replica acknowledged the invalidation in time")
        return replies[0]

    def _has_replicas(self, node: Any) -> bool:
        """Whether ``node`` has a replica to acknowledge writes (asked at most every 5 s: a
        master without one would make every ``WAIT`` run out its timeout)."""
        known = self._replicas.get(node.name)
        now = time.monotonic()
        if known is not None and now - known[1] < _REPLICAS_TTL:
            return known[0]
        try:
            info = self._client().get_redis_connection(node).info("replication")
        except _ERRORS:
            return True
        found = int(info.get("connected_slaves", 0)) > 0
        self._replicas[node.name] = (found, now)
        return found
