"""Retries only for idempotent commands; a lost reply never makes a counter count twice.

A real TCP proxy sits between the cache and the session's redis-server. Armed, it forwards
the next command a client sends, lets the server execute it, swallows the reply and drops
the connection: the client cannot tell whether its command ran. An idempotent command (GET,
SET, MGET) may then be sent again on a new connection; a counter increment or SET NX must not.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import redis

from cacheplug import Cache, CacheUnavailable, RedisStore
from cacheplug.testing import RedisServer

SECRET = "retries-test-secret"
NAMESPACE = "retries"


# -- helpers -----------------------------------------------------------------------------------


class _Link:
    """One proxied connection: the client's socket and ours to the server."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.drop_on_reply = threading.Event()
        self._closed = threading.Event()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 in front of a Redis server.

    Bytes flow unchanged both ways until :meth:`arm_drop`: then the next chunk any client
    sends is forwarded to the server, and when the server's reply comes back it is discarded
    and that connection is closed on both sides. The drop fires once per arming.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._lock = threading.Lock()
        self._armed = False
        self._skip = 0
        self._drops = 0
        self._connections = 0
        self._links: list[_Link] = []
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._spawn(self._accept_loop)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def drops(self) -> int:
        """How many replies were swallowed (connections dropped) so far."""
        with self._lock:
            return self._drops

    @property
    def connections(self) -> int:
        """How many client connections the proxy has accepted so far."""
        with self._lock:
            return self._connections

    def arm_drop(self, after: int = 0) -> None:
        """Drop the reply to the command after the next ``after`` ones."""
        with self._lock:
            self._armed = True
            self._skip = after

    def _take_arm(self) -> bool:
        with self._lock:
            if self._armed and self._skip:
                self._skip -= 1
                return False
            armed, self._armed = self._armed, False
            return armed

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            link = _Link(client, upstream)
            with self._lock:
                self._connections += 1
                self._links.append(link)
            self._spawn(self._client_to_server, link)
            self._spawn(self._server_to_client, link)

    def _client_to_server(self, link: _Link) -> None:
        try:
            while True:
                data = link.client.recv(65536)
                if not data:
                    break
                if self._take_arm():
                    link.drop_on_reply.set()  # before forwarding: the reply cannot slip past
                link.upstream.sendall(data)
        except OSError:
            pass
        link.close()

    def _server_to_client(self, link: _Link) -> None:
        try:
            while True:
                data = link.upstream.recv(65536)
                if not data:
                    break
                if link.drop_on_reply.is_set():
                    # The server has executed the command (it replied): lose the reply.
                    with self._lock:
                        self._drops += 1
                    break
                link.client.sendall(data)
        except OSError:
            pass
        link.close()

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()
        for thread in self._threads:
            thread.join(timeout=2)


@pytest.fixture
def proxy(redis_server: RedisServer, redis_url: str) -> Iterator[DroppingProxy]:
    """A dropping proxy in front of the session's (flushed) redis-server."""
    proxy = DroppingProxy(redis_server.port)
    yield proxy
    proxy.close()


@pytest.fixture
def proxied(proxy: DroppingProxy) -> Iterator[Cache]:
    """A cache that talks to Redis through the proxy."""
    cache = Cache(proxy.url, namespace=NAMESPACE, secret=SECRET)
    yield cache
    cache.close()


@pytest.fixture
def direct(redis_url: str) -> Iterator[Cache]:
    """The same cache configuration, straight to Redis (to look behind the proxy)."""
    cache = Cache(redis_url, namespace=NAMESPACE, secret=SECRET)
    yield cache
    cache.close()


# -- counters and SET NX: never retried ----------------------------------------------------------


# An unsigned cache keeps a counter as bare digits, incremented by one script call; a signed
# cache keeps it as a signed entry, read (GET) then swapped (SET NX / compare-and-swap). The
# drop is aimed at the write either way.


def test_incr_with_lost_reply_raises_and_counts_once(
    proxy: DroppingProxy, redis_url: str, redis_client: redis.Redis
) -> None:
    proxied = Cache(proxy.url, namespace=NAMESPACE)  # no secret: bare-digits counters
    try:
        # Warm-up: opens the counter client's connection and loads the script.
        assert proxied.incr("warm-up") == 1
        proxy.arm_drop()
        with pytest.raises(CacheUnavailable):
            proxied.incr("n")
        assert proxy.drops == 1
        # The server executed the increment exactly once: 1, not 2.
        assert redis_client.get(proxied.store_key("n")) == b"1"
        assert Cache(redis_url, namespace=NAMESPACE).get("n") == 1
        # The next increment (on a new connection) carries on from there.
        assert proxied.incr("n") == 2
        assert redis_client.get(proxied.store_key("n")) == b"2"
    finally:
        proxied.close()


def test_signed_incr_with_lost_reply_raises_and_counts_once(
    proxy: DroppingProxy, proxied: Cache, direct: Cache
) -> None:
    assert proxied.incr("warm-up") == 1
    assert proxied.incr("warm-up") == 2  # both the SET NX and the swap connections are open
    proxy.arm_drop(after=1)  # let the GET through, lose the reply to the write
    with pytest.raises(CacheUnavailable):
        proxied.incr("n")
    assert proxy.drops == 1
    assert direct.get("n") == 1
    assert proxied.incr("warm-up") == 3  # reconnects the write connection (its handshake)
    proxy.arm_drop(after=1)
    with pytest.raises(CacheUnavailable):
        proxied.incr("n", 5)  # this time the compare-and-swap's reply is lost
    assert proxy.drops == 2
    assert direct.get("n") == 6
    assert proxied.incr("n") == 7


def test_incr_by_delta_with_lost_reply_applies_delta_once(
    proxy: DroppingProxy, redis_client: redis.Redis
) -> None:
    proxied = Cache(proxy.url, namespace=NAMESPACE)
    try:
        assert proxied.incr("n", 10) == 10
        proxy.arm_drop()
        with pytest.raises(CacheUnavailable):
            proxied.decr("n", 3)
        assert proxy.drops == 1
        assert redis_client.get(proxied.store_key("n")) == b"7"
    finally:
        proxied.close()


def test_a_conditional_write_with_lost_reply_raises_after_storing_once(
    proxy: DroppingProxy, redis_client: redis.Redis
) -> None:
    # The write script (behind set/add and fills) is not retried: a retry of an add would
    # answer "already there" for the caller's own write and report False without an error.
    store = RedisStore(proxy.url)
    try:
        assert store.put("warm-up", b"0", None, "warm-up-lease") is True
        proxy.arm_drop()
        with pytest.raises(CacheUnavailable):
            store.put("k", b"first", None, "k-lease", (), True)
        assert proxy.drops == 1
    finally:
        store.close()
    assert redis_client.get("k") == b"first"


def test_aincr_with_lost_reply_raises_and_counts_once(
    proxy: DroppingProxy, redis_client: redis.Redis
) -> None:
    proxied = Cache(proxy.url, namespace=NAMESPACE)

    async def scenario() -> None:
        try:
            assert await proxied.aincr("warm-up") == 1
            proxy.arm_drop()
            with pytest.raises(CacheUnavailable):
                await proxied.aincr("n")
            assert proxy.drops == 1
            assert await proxied.aincr("n") == 2
        finally:
            await proxied.aclose()

    asyncio.run(scenario())
    assert redis_client.get(proxied.store_key("n")) == b"2"


# -- idempotent commands: retried once on a new connection ---------------------------------------


def test_get_with_lost_reply_is_retried(proxy: DroppingProxy, proxied: Cache) -> None:
    assert proxied.set("k", {"v": 1}) is True
    assert proxied.get("k") == {"v": 1}  # warm-up: the read connection is pooled and idle
    connections = proxy.connections

    proxy.arm_drop()
    assert proxied.get("k") == {"v": 1}
    assert proxy.drops == 1
    assert proxy.connections == connections + 1  # the retry went out on a new connection
    assert proxied.stats().errors == 0
    assert not proxied.breaker.tripped


def test_get_or_load_with_lost_reply_serves_cached_value(
    proxy: DroppingProxy, proxied: Cache
) -> None:
    assert proxied.get_or_load("k", lambda: "cached") == "cached"
    proxy.arm_drop()
    assert proxied.get_or_load("k", lambda: "loader called") == "cached"
    assert proxy.drops == 1
    assert proxied.stats().errors == 0


def test_get_many_with_lost_reply_is_retried(proxy: DroppingProxy, proxied: Cache) -> None:
    assert proxied.set_many({"a": 1, "b": 2}) == []
    assert proxied.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    proxy.arm_drop()
    assert proxied.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    assert proxy.drops == 1
    assert proxied.stats().errors == 0


def test_set_with_lost_reply_is_retried(
    proxy: DroppingProxy, proxied: Cache, direct: Cache
) -> None:
    assert proxied.set("k", "old") is True
    proxy.arm_drop()
    assert proxied.set("k", "new") is True
    assert proxy.drops == 1
    assert proxied.stats().errors == 0
    assert direct.get("k") == "new"


def test_aget_with_lost_reply_is_retried(proxy: DroppingProxy, proxied: Cache) -> None:
    async def scenario() -> object:
        try:
            assert await proxied.aset("k", "v") is True
            assert await proxied.aget("k") == "v"
            proxy.arm_drop()
            return await proxied.aget("k", "default")
        finally:
            await proxied.aclose()

    assert asyncio.run(scenario()) == "v"
    assert proxy.drops == 1
    assert proxied.stats().errors == 0
