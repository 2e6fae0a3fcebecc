"""cacheplug.testing.proxy.TcpProxy: the partition the crash tests use, against a real Redis."""

from __future__ import annotations

import redis

from cacheplug import Cache
from cacheplug.testing import RedisServer
from cacheplug.testing.proxy import TcpProxy


def test_a_cut_is_a_partition_and_a_heal_ends_it_on_the_same_port(
    redis_server: RedisServer,
) -> None:
    with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        client = redis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=1)
        assert client.ping()
        proxy.cut()
        try:
            client.ping()
        except redis.ConnectionError:
            pass
        else:
            raise AssertionError("a ping went through a cut proxy")
        proxy.heal()
        assert client.ping()  # redis-py reconnects, to the same port
        client.close()


def test_a_cache_behind_a_cut_proxy_fails_open_and_catches_up(redis_server: RedisServer) -> None:
    with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        with Cache(url, namespace="proxy") as cache:
            cache.set("k", "old")
            proxy.cut()
            assert cache.get_or_load("x", lambda: "loaded") == "loaded"  # fails open
            cache.invalidate("k")  # queued: the store cannot be reached
            assert [p.kind for p in cache.pending_invalidations()] == ["key"]
            proxy.heal()
            cache.close(flush_timeout=10)  # applies the queued invalidation
        with Cache(redis_server.url, namespace="proxy") as direct:
            assert direct.get("k") is None
