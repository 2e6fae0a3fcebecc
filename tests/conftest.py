"""Shared fixtures: a real redis-server for the session, caches over each store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from cacheplug import Cache, MemoryStore, RedisStore, Store
from cacheplug.testing import FakeClock, PostgresServer, RedisServer

TEST_SECRET = "test-secret-key-not-for-production"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole run, on a free loopback port (fails if it can't start)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL 15 for the whole run (``wal_level=logical``, a free loopback
    port); tests make databases of their own in it (``fresh_database``)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty database on the session's redis-server."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the test database (for looking behind the cache's back)."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisStore]:
    store = RedisStore(redis_url)
    yield store
    store.close()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    """Each store in turn: the embedded MemoryStore and a RedisStore on a real server."""
    if request.param == "memory":
        return MemoryStore()
    redis_store: RedisStore = request.getfixturevalue("redis_store")
    return redis_store


@pytest.fixture
def cache(store: Store) -> Iterator[Cache]:
    """A cache over each store, as an application configures it (signed on Redis)."""
    secret = TEST_SECRET if store.shared else None
    cache = Cache(store, namespace="test", secret=secret)
    yield cache
    cache.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clocked_cache(store: Store, clock: FakeClock) -> Iterator[Cache]:
    """Like ``cache`` but on a fake clock (the MemoryStore on it too)."""
    if isinstance(store, MemoryStore):
        store = MemoryStore(clock=clock.monotonic)
    secret = TEST_SECRET if store.shared else None
    cache = Cache(store, namespace="test", secret=secret, clock=clock)
    yield cache
    cache.close()
