"""The Redis stores, over redis-py: :class:`RedisStore` (one server, TCP, TLS, a unix socket
or the master a set of Sentinels names) and :class:`RedisClusterStore` (a Redis Cluster).

Importing this package imports ``redis``; :mod:`cacheplug.stores` imports it only when a
Redis store is chosen. Everything else here is private: the clients, the Lua scripts
(``lua/``), the fill listener, the cluster's copies and acknowledged writes, and the Redis
Streams queue of write-behind.
"""

from __future__ import annotations

from cacheplug.stores.redis._cluster import RedisClusterStore
from cacheplug.stores.redis._store import RedisStore

__all__ = ["RedisClusterStore", "RedisStore"]
