"""The redis-py cluster clients of a ``redis+cluster://`` URL, made on first use (a cluster
that is down when the application starts must not stop it from starting), with the scripts
the cluster store runs, and the translation of redis-py errors into cacheplug's."""

from __future__ import annotations

import functools
import threading
from typing import Any, Final

import redis
import redis.cluster
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from cacheplug._redact import redact
from cacheplug.exceptions import CacheUnavailable, ConfigurationError
from cacheplug.stores.redis import _scripts as scripts
from cacheplug.stores.redis._clients import parse_cluster_url
from cacheplug.stores.redis._pools import WaitingPool
from cacheplug.stores.redis._scripts import CLUSTER_ERRORS, ScriptCall, unavailable
from cacheplug.stores.redis._untyped import cluster_node

SCHEME: Final = "redis+cluster"
_SCRIPTS: Final = {
    "incr": scripts.INCR,
    "cas": scripts.CAS,
    "acquire": scripts.ACQUIRE,
    "write": scripts.WRITE,
    "release": scripts.RELEASE,
    "extend": scripts.EXTEND,
    "ensure": scripts.ENSURE,
    "remove_if": scripts.REMOVE_IF,
    "ensure_persistent": scripts.ENSURE_PERSISTENT,
}


class ClusterConnection:
    """The clients of one cluster URL (see :class:`~cacheplug.stores.RedisClusterStore` for
    the URL and the options); query parameters of the URL override the keyword options."""

    def __init__(
        self,
        url: str,
        *,
        socket_timeout: float,
        socket_connect_timeout: float,
        max_connections: int,
        pool_timeout: float | None,
    ) -> None:
        if not url.startswith(f"{SCHEME}://"):
            raise ConfigurationError(
                f"RedisClusterStore needs a {SCHEME}:// URL, not {redact(url)!r}"
            )
        self._target = parse_cluster_url(url)
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "max_connections": max_connections,
            **self._target.options,
        }
        if options["max_connections"] < 1:
            raise ConfigurationError(
                f"max_connections must be at least 1, not {options['max_connections']}"
            )
        self.socket_timeout: float = options["socket_timeout"]
        wait = self.socket_timeout if pool_timeout is None else pool_timeout
        # redis-py's default node pools raise MaxConnectionsError when full (past 100
        # connections since redis-py 6): the cache would take that for an outage. The wait
        # is bound here because redis-py 5.3 drops a ``timeout`` keyword of RedisCluster.
        options["connection_pool_class"] = functools.partial(WaitingPool, timeout=wait)
        if self._target.username is not None:
            options["username"] = self._target.username
        if self._target.password is not None:
            options["password"] = self._target.password
        self._options = options
        self._lock = threading.Lock()
        self._connected: redis.cluster.RedisCluster | None = None
        self._once: redis.cluster.RedisCluster | None = None
        self._scripts: dict[str, Script] = {}

    @property
    def client(self) -> redis.cluster.RedisCluster:
        """The retrying client, made on first use (redis-py's errors if it cannot be)."""
        client = self._connected
        if client is None:
            with self._lock:
                client = self._connected
                if client is None:
                    client = self._new_client(Retry(ExponentialBackoff(cap=0.2, base=0.01), 3))
                    for name, lua in _SCRIPTS.items():
                        self._scripts[name] = client.register_script(lua)
                    self._connected = client
        return client

    @property
    def available(self) -> redis.cluster.RedisCluster:
        """:attr:`client`, or :class:`CacheUnavailable` when the cluster cannot be reached."""
        try:
            return self.client
        except CLUSTER_ERRORS as exc:
            raise CacheUnavailable(redact(f"redis cluster unreachable: {exc}")) from exc

    def clients(self) -> tuple[redis.cluster.RedisCluster, redis.cluster.RedisCluster]:
        """The retrying client and one that never retries, made on first use."""
        once = self._once
        if once is None:
            with self._lock:
                once = self._once
                if once is None:
                    once = self._once = self._new_client(Retry(NoBackoff(), 0))
        return self.client, once

    def _new_client(self, retry: Retry) -> redis.cluster.RedisCluster:
        (first_host, first_port), *others = self._target.nodes
        nodes = [cluster_node(host, port) for host, port in others]
        # The first node goes in as a URL (credentials stay in the options): redis-py before
        # 8.2 builds each node's pool with ``connection_pool_class`` (our waiting pool) only
        # for a client made from a URL, and otherwise a pool that raises when it is full.
        return redis.cluster.RedisCluster(
            url=f"redis://{first_host}:{first_port}/0",
            startup_nodes=nodes,
            retry=retry,
            decode_responses=False,
            **self._options,
        )

    def script(self, call: ScriptCall) -> Any:
        """Run the script ``call`` names."""
        self.available  # noqa: B018 (makes the client and registers the scripts, or raises)
        return self.run(call.what, self._scripts[call.name], keys=call.keys, args=call.args)

    def run(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)``, its failure a :class:`CacheUnavailable` naming
        ``what`` (or :class:`~cacheplug.NotACounter`)."""
        try:
            return call(*args, **kwargs)
        except CLUSTER_ERRORS as exc:
            if isinstance(exc, redis.RedisError):
                raise unavailable(what, exc) from exc
            raise CacheUnavailable(redact(f"redis cluster {what} failed: {exc}")) from exc

    def close(self) -> None:
        if self._connected is not None:
            self._connected.close()
        if self._once is not None:
            self._once.close()
