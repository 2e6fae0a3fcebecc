"""RedisStore specifics: URL schemes, Lua by SHA, store selection by URL."""

from __future__ import annotations

import pytest
import redis

from cacheplug import Cache, ConfigurationError, RedisStore, store_from_url
from cacheplug.testing import RedisServer


def test_unix_socket_url(tmp_path_factory: pytest.TempPathFactory) -> None:
    socket_path = tmp_path_factory.mktemp("sock") / "redis.sock"
    with RedisServer(extra_args=("--unixsocket", str(socket_path), "--unixsocketperm", "700")):
        cache = Cache(f"unix://{socket_path}?db=0", secret="s")
        cache.set("over-unix", [1, 2])
        assert cache.get("over-unix") == [1, 2]
        assert isinstance(cache.store, RedisStore)
        cache.close()


def test_rediss_url_builds_a_tls_store() -> None:
    store = store_from_url("rediss://127.0.0.1:6380/0")
    assert isinstance(store, RedisStore)
    assert store.client.connection_pool.connection_class is redis.SSLConnection
    store.close()


@pytest.mark.parametrize(
    "url", ["http://x", "redis+memcache://127.0.0.1:7000", "127.0.0.1:6379", "", "memcached://x"]
)
def test_unknown_urls_are_refused_with_a_clear_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        store_from_url(url)


def test_redis_store_needs_a_redis_url() -> None:
    with pytest.raises(ConfigurationError, match="redis://"):
        RedisStore("memory://")


def test_scripts_run_by_sha(redis_store: RedisStore, redis_client: redis.Redis) -> None:
    redis_client.config_resetstat()
    for _ in range(3):
        redis_store.incr("counter", 1, None)
    redis_store.set("k", b"v", None)
    redis_store.compare_and_swap("k", b"v", b"w")
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] >= 4
    assert stats.get("cmdstat_eval", {"calls": 0})["calls"] == 0


def test_query_string_options_reach_the_client(redis_url: str) -> None:
    store = RedisStore(f"{redis_url}?socket_timeout=0.2")
    kwargs = store.client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.2
    assert kwargs["socket_connect_timeout"] == 0.5
    store.close()
