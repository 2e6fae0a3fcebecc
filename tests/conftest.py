"""Shared fixtures: a real redis-server for the session, caches over each store."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator

import hypothesis
import pytest
import redis

from cacheplug import Cache, MemoryStore, RedisStore, Store
from cacheplug.testing import FakeClock, PostgresServer, RedisServer, free_port

TEST_SECRET = "test-secret-key-not-for-production"

# Hypothesis's default 200 ms deadline per example is a timing assertion: on a loaded shared
# machine one example of test_reserved_keys took 328 ms and failed the run. Every property test
# runs without one.
hypothesis.settings.register_profile("cacheplug", deadline=None)
hypothesis.settings.load_profile("cacheplug")


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


class PurgeEndpoint:
    """A real HTTP server on a loopback port recording the purges (``PURGE``, ``BAN``) it gets:
    an edge cache's purge API as the edge tests see it. ``port`` 0: a free one; a port given
    that nothing listens on yet is an edge that is down until :meth:`start`."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.requests: list[tuple[str, dict[str, str]]] = []  # (method, headers by lower name)
        self.observe: Callable[[], object] | None = None
        """Called as each purge arrives (what the edge would see then); its answers go to
        :attr:`observed`."""
        self.observed: list[object] = []
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def keys(self, header: str) -> set[str]:
        """Every key the purges named in ``header`` (a space- or comma-separated list)."""
        return {
            key
            for _, headers in self.requests
            for key in headers.get(header.lower(), "").replace(",", " ").split()
        }

    def start(self) -> PurgeEndpoint:
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def record(self) -> None:
                headers = {name.lower(): value for name, value in self.headers.items()}
                if endpoint.observe is not None:
                    endpoint.observed.append(endpoint.observe())
                endpoint.requests.append((self.command, headers))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PURGE = do_BAN = record

            def log_message(self, *_: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def purge_endpoints() -> Iterator[Callable[[int], PurgeEndpoint]]:
    """``purge_endpoints(port)``: a :class:`PurgeEndpoint`, not started (0: a free port);
    stopped after the test."""
    made: list[PurgeEndpoint] = []

    def make(port: int = 0) -> PurgeEndpoint:
        endpoint = PurgeEndpoint(port or free_port())
        made.append(endpoint)
        return endpoint

    yield make
    for endpoint in made:
        endpoint.stop()
