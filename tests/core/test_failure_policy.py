"""The cache must never take the application down.

A store that refuses connections, drops them, or answers garbage turns into misses that fall
through to the loader; failures are counted, logged once per burst, and a circuit breaker stops
hammering a dead store until a probe succeeds. Only ``strict=True`` and counters raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from cacheplug import Cache, CacheUnavailable, CircuitBreaker, RedisStore
from cacheplug.testing import FakeClock, RedisServer, free_port

SECRET = "failure-policy-test-secret"
LOGGER = "cacheplug"
HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
# Bytes that start with no RESP type marker (+ - : $ * _ , # ! = ( % ~ > |), like a TLS hello.
BINARY_NOISE = bytes.fromhex("160301020001000001fc0303a7c9e1f00d5e9a3b7711c4") + b"\x00\xff" * 8


# -- helpers -----------------------------------------------------------------------------------


def closed_url() -> str:
    """A redis:// URL on a loopback port that nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


class Counter:
    """Counts loader calls and returns a distinct value each time."""

    def __init__(self, prefix: str = "loaded") -> None:
        self.prefix = prefix
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"{self.prefix}-{self.calls}"


class TcpListener:
    """A real TCP server on 127.0.0.1 that counts accepted connections.

    ``reply=None``: every connection is closed as soon as it is accepted (redis-py sees a
    connection error). ``reply=b"..."``: every chunk received is answered with ``reply``
    (a server that speaks something other than RESP). ``reply=b""``: connections are kept
    open and never answered (a hung server).
    """

    def __init__(self, reply: bytes | None = None) -> None:
        self.reply = reply
        self._accepted = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._connections: list[socket.socket] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def accepted(self) -> int:
        with self._lock:
            return self._accepted

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._accepted += 1  # counted before the client can see any error
            if self.reply is None:
                conn.close()
                continue
            with self._lock:
                self._connections.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        assert self.reply is not None
        conn.settimeout(5.0)
        try:
            while not self._stopped.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                if self.reply:
                    conn.sendall(self.reply)
        except OSError:
            return
        finally:
            conn.close()

    def close(self) -> None:
        self._stopped.set()
        self._sock.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._thread.join(timeout=2)


@pytest.fixture
def closing_listener() -> Iterator[TcpListener]:
    listener = TcpListener()
    yield listener
    listener.close()


def make_cache(url: str, clock: FakeClock, **options: Any) -> Cache:
    """A signed cache on ``url`` whose breaker and burst logger run on ``clock``."""
    options.setdefault(
        "breaker", CircuitBreaker(failure_threshold=3, reset_timeout=5.0, clock=clock.monotonic)
    )
    return Cache(url, secret=SECRET, namespace="fp", clock=clock, **options)


def never_tripping_breaker(clock: FakeClock) -> CircuitBreaker:
    """A breaker that stays closed for the whole test, so every call really hits the store."""
    return CircuitBreaker(failure_threshold=1_000_000, reset_timeout=5.0, clock=clock.monotonic)


def breaker_state(cache: Cache) -> str:
    """ "open" (refusing calls), "closed" (no failure outstanding) or "failing" (in between)."""
    breaker = cache.breaker
    if breaker.is_open:
        return "open"
    return "failing" if breaker.tripped else "closed"


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


# -- a store that is not there -----------------------------------------------------------------


def test_get_or_load_on_closed_port_always_returns_loader_value(clock: FakeClock) -> None:
    cache = make_cache(closed_url(), clock)
    loader = Counter()
    try:
        results = [cache.get_or_load("user:1", loader) for _ in range(20)]
    finally:
        cache.close()
    assert results == [f"loaded-{i}" for i in range(1, 21)]
    assert loader.calls == 20
    stats = cache.stats()
    assert stats.loads == 20
    assert stats.hits == 0
    assert stats.errors >= 1


def test_errors_counts_every_failed_store_call(clock: FakeClock) -> None:
    # With a breaker that never opens, each get_or_load makes two failing calls: GET and SET.
    cache = make_cache(closed_url(), clock, breaker=never_tripping_breaker(clock))
    try:
        for _ in range(20):
            assert cache.get_or_load("k", lambda: 42) == 42
    finally:
        cache.close()
    assert cache.stats().errors == 40


def test_default_cache_on_closed_port_never_raises() -> None:
    # Default breaker and real clock: whatever the breaker does, nothing reaches the caller.
    with Cache(closed_url(), secret=SECRET) as cache:
        loader = Counter()
        for i in range(1, 21):
            assert cache.get_or_load("k", loader) == f"loaded-{i}"
        assert cache.stats().errors >= 1


def test_cached_function_on_closed_port_runs_the_function(clock: FakeClock) -> None:
    cache = make_cache(closed_url(), clock)
    calls: list[int] = []

    @cache.cached(ttl=60)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    try:
        assert [square(3) for _ in range(10)] == [9] * 10
        assert square(4) == 16
    finally:
        cache.close()
    assert calls == [3] * 10 + [4]
    assert cache.stats().errors >= 1


# -- circuit breaker -----------------------------------------------------------------------------


def attempts_per_failing_get(cache: Cache, listener: TcpListener) -> int:
    """How many connections one failing ``get`` opens (redis-py's retries included).

    Measured on the first call, while the breaker is still closed, so that later assertions
    hold whatever the retry policy is, yet still tell one call from many.
    """
    assert not cache.breaker.tripped
    before = listener.accepted
    assert cache.get("k", "dflt") == "dflt"
    per_get = listener.accepted - before
    assert per_get >= 1, "the failing get never reached the listener"
    return per_get


def open_breaker(cache: Cache, listener: TcpListener, loader: Callable[[], str]) -> None:
    """Fail calls through ``cache`` until its breaker opens (checking they reach ``listener``)."""
    for _ in range(5):
        assert cache.get_or_load("k", loader) == "from-loader"
        if cache.breaker.is_open:
            break
    assert cache.breaker.is_open, "the breaker did not open after repeated failures"
    assert listener.accepted >= cache.breaker.failure_threshold


def test_breaker_stops_connection_attempts_until_probe(
    closing_listener: TcpListener, clock: FakeClock
) -> None:
    reset_timeout = 7.0
    breaker = CircuitBreaker(
        failure_threshold=3, reset_timeout=reset_timeout, clock=clock.monotonic
    )
    cache = Cache(closing_listener.url, secret=SECRET, breaker=breaker, clock=clock)
    loader = Counter()

    def load() -> str:
        loader()
        return "from-loader"

    try:
        per_get = attempts_per_failing_get(cache, closing_listener)
        open_breaker(cache, closing_listener, load)

        # Open: no connection attempts at all, values still come from the loader.
        attempts = closing_listener.accepted
        errors = cache.stats().errors
        loads = loader.calls
        for _ in range(50):
            assert cache.get_or_load("k", load) == "from-loader"
        clock.advance(reset_timeout / 2)
        for _ in range(50):
            assert cache.get_or_load("k", load) == "from-loader"
        assert closing_listener.accepted == attempts
        assert cache.stats().errors == errors  # refused calls are not store failures
        assert loader.calls == loads + 100

        # After reset_timeout: one call (the probe) goes through, and only its GET (the
        # SET of the loaded value is refused once the probe has failed).
        clock.advance(reset_timeout / 2)
        assert cache.get_or_load("k", load) == "from-loader"
        assert 1 <= closing_listener.accepted - attempts <= per_get
        assert cache.stats().errors == errors + 1

        # The probe failed: the breaker is open again and nothing else gets through.
        assert cache.breaker.is_open
        after_probe = closing_listener.accepted
        for _ in range(50):
            assert cache.get_or_load("k", load) == "from-loader"
        assert closing_listener.accepted == after_probe
    finally:
        cache.close()


def test_breaker_lets_one_probe_per_reset_timeout(
    closing_listener: TcpListener, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=2.0, clock=clock.monotonic)
    cache = Cache(closing_listener.url, secret=SECRET, breaker=breaker, clock=clock)
    calls_per_round = 30
    try:
        per_get = attempts_per_failing_get(cache, closing_listener)
        assert per_get < calls_per_round  # else one call could not be told from many
        open_breaker(cache, closing_listener, lambda: "from-loader")
        for _ in range(5):
            before = closing_listener.accepted
            errors = cache.stats().errors
            clock.advance(2.0)
            for _ in range(calls_per_round):
                assert cache.get("k", "dflt") == "dflt"
            # Many calls after each timeout, but only the first (the probe) reached the server.
            assert 1 <= closing_listener.accepted - before <= per_get
            assert cache.stats().errors == errors + 1
    finally:
        cache.close()


def test_breaker_refuses_other_calls_while_the_probe_is_in_flight(clock: FakeClock) -> None:
    # A hung server keeps the probe waiting (up to socket_timeout per attempt); calls made
    # meanwhile must be refused, not sent as more probes.
    listener = TcpListener(reply=b"")
    url = f"{listener.url}?socket_timeout=0.2&socket_connect_timeout=0.2"
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5.0, clock=clock.monotonic)
    cache = Cache(url, secret=SECRET, breaker=breaker, clock=clock)
    concurrent_calls = 20
    try:
        assert cache.get("k", "dflt") == "dflt"
        assert cache.breaker.is_open
        clock.advance(5.0)
        before = listener.accepted
        errors = cache.stats().errors

        probe = threading.Thread(target=cache.get, args=("k",), daemon=True)
        probe.start()
        for _ in range(500):  # wait until the probe is connected and waiting for a reply
            if listener.accepted > before:
                break
            time.sleep(0.01)
        assert listener.accepted > before, "the probe never reached the server"

        results: list[object] = []
        callers = [
            threading.Thread(target=lambda: results.append(cache.get("k", "refused")))
            for _ in range(concurrent_calls)
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(timeout=30)
        probe_was_in_flight = probe.is_alive()
        probe.join(timeout=30)
        assert not probe.is_alive()

        assert results == ["refused"] * concurrent_calls
        # Only the probe failed (refused calls are not failures) and only its own attempts
        # reached the server, not one per concurrent call.
        assert cache.stats().errors == errors + 1
        assert listener.accepted - before < concurrent_calls
        assert probe_was_in_flight, "precondition: the calls ran while the probe was in flight"
        assert cache.breaker.is_open  # the probe failed
    finally:
        cache.close()
        listener.close()


IDEMPOTENT_STORE_CALLS: dict[str, Callable[[RedisStore], object]] = {
    "GET": lambda s: s.get("k"),
    "SET": lambda s: s.set("k", b"v", None),
    "DEL": lambda s: s.delete("k"),
    "MGET": lambda s: s.get_many(["a", "b"]),
}


@pytest.mark.parametrize("command", list(IDEMPOTENT_STORE_CALLS))
def test_failing_idempotent_command_retries_at_most_once(
    command: str, closing_listener: TcpListener
) -> None:
    # RedisStore documents idempotent commands as going "through a client that retries once
    # on a connection error": at most two connections for one failing call (on a hung server
    # each attempt can cost socket_timeout, so extra attempts multiply the wait).
    store = RedisStore(closing_listener.url)
    try:
        with pytest.raises(CacheUnavailable):
            IDEMPOTENT_STORE_CALLS[command](store)
    finally:
        store.close()
    assert 1 <= closing_listener.accepted <= 2


def _remove_dump(client: redis.Redis) -> None:
    directory = client.config_get("dir")["dir"]
    Path(str(directory), "dump.rdb").unlink(missing_ok=True)


def test_successful_probe_closes_breaker(
    redis_server: RedisServer, redis_url: str, redis_client: redis.Redis, clock: FakeClock
) -> None:
    reset_timeout = 5.0
    breaker = CircuitBreaker(
        failure_threshold=3, reset_timeout=reset_timeout, clock=clock.monotonic
    )
    cache = Cache(redis_url, secret=SECRET, namespace="recovery", breaker=breaker, clock=clock)
    try:
        assert cache.set("before", "kept across the outage", ttl=3600) is True
        redis_client.save()  # the session server has no persistence: keep the entry on disk
        redis_server.stop()

        loader = Counter("outage")
        for i in range(1, 11):
            assert cache.get_or_load("before", loader) == f"outage-{i}"
        assert breaker_state(cache) == "open"
        errors_during_outage = cache.stats().errors
        assert errors_during_outage >= 1

        redis_server.start()
        assert redis_server.ping()
        # Redis is back, but the breaker has not let a probe through yet: still refused.
        assert cache.get("before", "refused") == "refused"
        assert cache.get_or_load("before", loader) == "outage-11"
        assert cache.stats().errors == errors_during_outage

        clock.advance(reset_timeout)
        # The probe succeeds and returns the entry written before the outage.
        assert cache.get_or_load("before", loader) == "kept across the outage"
        assert breaker_state(cache) == "closed"

        # Closed again: reads and writes go to Redis.
        assert cache.set("after", [1, 2, 3]) is True
        assert cache.get("after") == [1, 2, 3]
        assert cache.get_or_load("before", loader) == "kept across the outage"
        assert loader.calls == 11
        assert cache.stats().errors == errors_during_outage
    finally:
        cache.close()
        if not redis_server.ping():
            redis_server.start()
        cleanup = redis.Redis.from_url(redis_server.url)
        try:
            cleanup.flushdb()
            _remove_dump(cleanup)
        finally:
            cleanup.close()


# -- a server that answers garbage ---------------------------------------------------------------


@pytest.mark.parametrize("reply", [HTTP_400, BINARY_NOISE], ids=["http-400", "binary-noise"])
def test_garbage_replies_fall_through_to_loader(reply: bytes, clock: FakeClock) -> None:
    listener = TcpListener(reply=reply)
    cache = make_cache(listener.url, clock, breaker=never_tripping_breaker(clock))
    loader = Counter()
    try:
        for i in range(1, 6):
            assert cache.get_or_load("k", loader) == f"loaded-{i}"
        assert cache.get("k", "dflt") == "dflt"
        assert cache.set("k", "v") is False
    finally:
        cache.close()
        listener.close()
    assert listener.accepted >= 1
    assert cache.stats().errors >= 5


def test_hung_server_falls_through_to_loader(clock: FakeClock) -> None:
    listener = TcpListener(reply=b"")
    # Query parameters override RedisStore's timeouts: keep the test quick.
    url = f"{listener.url}?socket_timeout=0.05&socket_connect_timeout=0.05"
    cache = make_cache(url, clock)
    loader = Counter()
    try:
        for i in range(1, 6):
            assert cache.get_or_load("k", loader) == f"loaded-{i}"
        assert cache.breaker.is_open
    finally:
        cache.close()
        listener.close()
    assert listener.accepted >= 1
    assert cache.stats().errors >= 1


# -- explicit operations: strict raises, default fails open --------------------------------------

STRICT_OPERATIONS: dict[str, Callable[[Cache], object]] = {
    "get": lambda c: c.get("k"),
    "set": lambda c: c.set("k", "v"),
    "delete": lambda c: c.delete("k"),
    "get_many": lambda c: c.get_many(["a", "b"]),
}


@pytest.mark.parametrize("operation", list(STRICT_OPERATIONS))
def test_strict_operations_raise_on_closed_port(operation: str, clock: FakeClock) -> None:
    cache = make_cache(closed_url(), clock, strict=True)
    try:
        # Raised both while the store is failing and once the breaker refuses calls.
        for _ in range(5):
            with pytest.raises(CacheUnavailable):
                STRICT_OPERATIONS[operation](cache)
        assert cache.breaker.is_open
    finally:
        cache.close(flush_timeout=0.1)


def test_strict_get_or_load_still_fails_open(clock: FakeClock) -> None:
    cache = make_cache(closed_url(), clock, strict=True)
    try:
        for _ in range(5):
            assert cache.get_or_load("k", lambda: "v") == "v"
    finally:
        cache.close()


def test_non_strict_operations_fail_open_on_closed_port(clock: FakeClock) -> None:
    cache = make_cache(closed_url(), clock, breaker=never_tripping_breaker(clock))
    sentinel = object()
    try:
        for _ in range(3):
            assert cache.get("k") is None
            assert cache.get("k", sentinel) is sentinel
            assert cache.set("k", "v") is False
            assert cache.delete("k") is False
            assert cache.get_many(["a", "b"]) == {}
        # The failed delete is queued; until it lands, reads of "k" skip the store.
        assert [item.store_key for item in cache.pending_invalidations()] == ["fp:0:d:{k}"]
    finally:
        cache.close(flush_timeout=0.1)
    assert cache.stats().errors == 5 + 3 + 3  # then: set, delete and get_many only
    assert cache.stats().bypassed == 4


def test_non_strict_operations_fail_open_while_breaker_refuses(clock: FakeClock) -> None:
    cache = make_cache(closed_url(), clock)
    try:
        for _ in range(3):
            cache.get("k")
        assert cache.breaker.is_open
        assert cache.get("k", "dflt") == "dflt"
        assert cache.set("k", "v") is False
        assert cache.delete("k") is False
        assert cache.get_many(["a", "b"]) == {}
    finally:
        cache.close(flush_timeout=0.1)


def test_incr_raises_on_closed_port_even_when_not_strict(clock: FakeClock) -> None:
    cache = make_cache(closed_url(), clock)
    assert cache.strict is False
    try:
        # While failing and once the breaker is open: a counter never silently fails open.
        for _ in range(5):
            with pytest.raises(CacheUnavailable):
                cache.incr("hits")
            with pytest.raises(CacheUnavailable):
                cache.decr("hits")
        assert cache.breaker.is_open
    finally:
        cache.close()


def test_aincr_raises_on_closed_port_even_when_not_strict(clock: FakeClock) -> None:
    cache = make_cache(closed_url(), clock)

    async def scenario() -> None:
        try:
            for _ in range(5):
                with pytest.raises(CacheUnavailable):
                    await cache.aincr("hits")
        finally:
            await cache.aclose()

    asyncio.run(scenario())


# -- logging -------------------------------------------------------------------------------------


def test_failures_are_logged_once_per_burst(
    caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    cache = make_cache(closed_url(), clock, breaker=never_tripping_breaker(clock))
    try:
        for _ in range(20):
            assert cache.get_or_load("k", lambda: "v") == "v"
        assert cache.stats().errors == 40  # every call really failed...
        first_burst = warnings_in(caplog)
        assert len(first_burst) == 1  # ...but only the first failure was logged
        assert "failed" in first_burst[0].getMessage()

        clock.advance(60)
        assert cache.get_or_load("k", lambda: "v") == "v"
        records = warnings_in(caplog)
        assert len(records) == 2
        assert "suppressed" in records[1].getMessage()

        for _ in range(20):
            cache.get_or_load("k", lambda: "v")
        assert len(warnings_in(caplog)) == 2
    finally:
        cache.close()


def test_breaker_default_cache_logs_once_per_burst(
    caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    cache = make_cache(closed_url(), clock)
    try:
        for _ in range(20):
            cache.get_or_load("k", lambda: "v")
        assert len(warnings_in(caplog)) == 1
        clock.advance(60)  # past the breaker's reset_timeout too: the probe fails and logs
        cache.get_or_load("k", lambda: "v")
        assert len(warnings_in(caplog)) == 2
    finally:
        cache.close()


# -- async ---------------------------------------------------------------------------------------


def test_aget_or_load_on_closed_port_returns_loader_value(clock: FakeClock) -> None:
    cache = make_cache(closed_url(), clock)
    sync_loader = Counter("sync")

    async def async_loader() -> str:
        return "async-value"

    async def scenario() -> list[object]:
        try:
            results: list[object] = []
            for _ in range(10):
                results.append(await cache.aget_or_load("k", sync_loader))
                results.append(await cache.aget_or_load("k", async_loader))
            results.append(await cache.aget("k", "dflt"))
            return results
        finally:
            await cache.aclose()

    results = asyncio.run(scenario())
    expected: list[object] = []
    for i in range(1, 11):
        expected += [f"sync-{i}", "async-value"]
    assert results == [*expected, "dflt"]
    assert cache.stats().errors >= 1
