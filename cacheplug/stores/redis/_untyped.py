"""The redis-py calls whose annotations change from one supported release to the next.

redis-py annotates more of its API with each release: 8.2 typed ``Sentinel`` and
``pubsub()``, 5.3 did not, and ``RedisCluster.get_node_from_key`` and ``ClusterNode`` are
still untyped. A
``# type: ignore[no-untyped-call]`` that one release needs is an unused-ignore error under
the next (strict mypy), so main went red on a day nobody changed it. Every such call goes
through this module instead, once, through an ``Any`` handle, and comes back with the type
cacheplug relies on: the result is the same whichever redis-py is installed.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel


def sentinel_manager(sentinels: list[tuple[str, int]], sentinel_kwargs: dict[str, Any]) -> Any:
    """A sync ``redis.sentinel.Sentinel`` over ``sentinels``."""
    factory: Any = redis.sentinel.Sentinel
    return factory(sentinels, sentinel_kwargs=sentinel_kwargs)


def async_sentinel_manager(
    sentinels: list[tuple[str, int]], sentinel_kwargs: dict[str, Any]
) -> Any:
    """The asyncio twin of :func:`sentinel_manager`."""
    factory: Any = redis.asyncio.sentinel.Sentinel
    return factory(sentinels, sentinel_kwargs=sentinel_kwargs)


def sync_master(manager: Any, service_name: str, **kwargs: Any) -> redis.Redis:
    """The sync client on the master ``manager`` (a Sentinel) names for ``service_name``."""
    client: redis.Redis = manager.master_for(service_name, redis_class=redis.Redis, **kwargs)
    return client


def async_master(manager: Any, service_name: str, **kwargs: Any) -> redis.asyncio.Redis:
    """The asyncio client on the master ``manager`` names for ``service_name``."""
    client: redis.asyncio.Redis = manager.master_for(
        service_name, redis_class=redis.asyncio.Redis, **kwargs
    )
    return client


def pubsub(client: Any) -> Any:
    """A ``PubSub`` of ``client`` (a ``Redis`` or a ``RedisCluster``)."""
    return client.pubsub()


def node_for_key(cluster: Any, key: str) -> Any:
    """The ``ClusterNode`` serving ``key``'s slot in ``cluster`` (a ``RedisCluster``)."""
    return cluster.get_node_from_key(key)


def queue_command(pipe: Any, *args: Any) -> None:
    """Queue a raw command (``WAIT``, say) on ``pipe``; its reply comes with ``execute()``."""
    pipe.execute_command(*args)


def cluster_node(host: str, port: int) -> Any:
    """A ``redis.cluster.ClusterNode`` (a startup node of a ``RedisCluster``)."""
    factory: Any = redis.cluster.ClusterNode
    return factory(host, port)
