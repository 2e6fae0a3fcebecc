"""Count the round trips a :class:`~cacheplug.RedisStore` makes (tests and benchmarks).

    trips = RoundTrips(store)       # before the store opens its first connection
    cache.get("k")
    assert trips.count == 1

Every request a connection sends is one round trip (a pipeline or a script is one request).
Needs ``redis``: import it from here, not from ``cacheplug.testing``.
"""

from __future__ import annotations

from typing import Any

from redis.connection import Connection

from cacheplug.stores.redis import RedisStore


class RoundTrips:
    """Counts the requests ``store``'s sync clients send from now on."""

    def __init__(self, store: RedisStore) -> None:
        self.count = 0
        counter = self

        class CountingConnection(Connection):
            def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                counter.count += 1
                # Through Any: redis-py releases disagree on whether this method is typed.
                send: Any = super().send_packed_command
                send(command, check_health)

        for client in store.clients():
            pool = client.connection_pool
            pool.connection_class = CountingConnection
            pool.disconnect()  # connections made before would not be counted
