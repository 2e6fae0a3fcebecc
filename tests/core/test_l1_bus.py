"""How the L1 hears the invalidation bus on Redis, whatever the reading threads do.

A thread serving L1 hits without pause keeps the GIL until the interpreter's switch interval
forces it off, and the bus thread needs the GIL several times per message. So a hit, now and
then, catches up (``FillListener.catch_up``): if the bus socket is readable it receives what
is there itself (the L1 drops its copies), or waits briefly (GIL released) while the bus
thread is receiving. Invalidation subscribers are still called on the bus thread only, once
each, in order. The first test stretches the switch interval so that, without the catch-up,
the spinning reader would never let the bus thread run: what it checks does not depend on
how fast anything is.

And a subscription that redis-py reconnected on its own (its retry) may have missed
messages: the L1 is emptied then, as when the bus thread resubscribes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Final

import pytest
import redis

from cacheplug import Cache, LocalTier, RedisStore
from cacheplug.testing import RedisServer
from cacheplug.testing.proxy import TcpProxy

SECRET: Final = "l1-bus-secret"
NAMESPACE: Final = "l1bus"
WAIT: Final = 10.0
"""Seconds a bounded wait may take before the test gives up (never reached when it passes)."""

MISS: Final = "<miss>"


@pytest.fixture
def reader(redis_url: str) -> Iterator[Cache]:
    """A cache with an L1, its bus subscription up."""
    cache = Cache(RedisStore(redis_url), namespace=NAMESPACE, secret=SECRET, l1=LocalTier(ttl=60))
    cache.store.fills.start()
    assert cache.store.fills.live
    yield cache
    cache.close()


def _kept_in_l1(cache: Cache, redis_url: str, key: str, value: str) -> None:
    """Write ``key`` elsewhere and read it until ``cache`` serves it from its L1."""
    writer = Cache(redis_url, namespace=NAMESPACE, secret=SECRET)
    writer.set(key, value, ttl=600)
    writer.close()
    deadline = time.monotonic() + WAIT
    while True:
        hits = cache.stats().l1_hits
        assert cache.get(key) == value
        if cache.stats().l1_hits > hits:
            return
        assert time.monotonic() < deadline, "the value never reached the L1"
        time.sleep(0.01)  # the write's own announcement drops the copy once: let it pass


class _Subscribed:
    """An ``on_invalidation`` callback noting the store keys it is given and on which threads."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []
        self.threads: set[int] = set()
        self.event = threading.Event()

    def __call__(self, store_key: str | None) -> None:
        self.keys.append(store_key)
        self.threads.add(threading.get_ident())
        self.event.set()


_INVALIDATOR = textwrap.dedent(
    """
    import sys
    from cacheplug import Cache
    url, namespace, secret, key = sys.argv[1:]
    writer = Cache(url, namespace=namespace, secret=secret)
    print("ready", flush=True)
    sys.stdin.readline()
    writer.invalidate(key)
    print("done", flush=True)
    writer.close()
    """
)


def test_a_reader_that_never_lets_go_of_the_gil_still_sees_an_invalidation(
    reader: Cache, redis_url: str
) -> None:
    _kept_in_l1(reader, redis_url, "k", "old")
    delivered = _Subscribed()
    reader.on_invalidation(delivered)
    # Another process invalidates "k" while this thread spins on L1 hits.
    child = subprocess.Popen(
        [sys.executable, "-c", _INVALIDATOR, redis_url, NAMESPACE, SECRET, "k"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    interval = sys.getswitchinterval()
    try:
        assert child.stdout.readline().strip() == "ready"
        sys.setswitchinterval(1000.0)  # the interpreter never forces this thread off the GIL
        child.stdin.write("go\n")
        child.stdin.flush()
        deadline = time.monotonic() + WAIT
        hits = 0
        while reader.get("k", MISS) == "old":  # nothing here releases the GIL...
            hits += 1
            # ...so without the catch-up the bus thread would never run: this would fail.
            assert time.monotonic() < deadline, f"still the old value after {hits} hits"
    finally:
        sys.setswitchinterval(interval)
        child.stdin.close()
        done = child.stdout.readline().strip()
        child.stdout.close()
        child.wait(WAIT)
    assert done == "done"
    assert reader.get("k", MISS) == MISS
    assert delivered.event.wait(WAIT)
    assert reader.store_key("k") in delivered.keys
    # Handled on the bus thread all the same: subscribers are promised that thread.
    assert threading.get_ident() not in delivered.threads


def test_readers_never_get_a_value_older_than_an_invalidation_already_handled(
    reader: Cache, redis_url: str
) -> None:
    # Readers spin on L1 hits (so they catch up: "steady" stays in the L1) while another
    # connection commits versions of "k" and invalidates it; a marker invalidation after
    # each tells when the bus handled it.
    _kept_in_l1(reader, redis_url, "steady", "s")
    database = [0]
    handled = [0]
    rounds = 150
    markers = {reader.store_key(f"marker:{version}"): version for version in range(rounds + 1)}

    def on_invalidation(store_key: str | None) -> None:
        if store_key in markers:
            handled[0] = markers[store_key]

    reader.on_invalidation(on_invalidation)
    told = _Subscribed()
    reader.on_invalidation(told)
    changed: list[str | None] = []
    reader.store.fills.on_change(changed.append)  # called by readers catching up too
    stop = threading.Event()
    failures: list[str] = []
    reads = [0]

    def read() -> None:
        while not stop.is_set():
            floor = handled[0]
            value = reader.get_or_load("k", lambda: database[0], ttl=600)
            reads[0] += 1
            if reader.get("steady") != "s":
                failures.append("lost a key nobody changed")
            if value < floor:
                failures.append(f"read version {value} after version {floor} was handled")
                return

    threads = [threading.Thread(target=read, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    writer = Cache(redis_url, namespace=NAMESPACE, secret=SECRET)
    try:
        # Bounds on progress, not on the whole run: three readers spinning in this process
        # hold the interpreter, so on a loaded machine the rounds may take a minute (all of
        # them correct); only a round, or the bus, making no progress for WAIT fails.
        for version in range(1, rounds + 1):
            deadline = time.monotonic() + WAIT
            database[0] = version  # the write commits...
            writer.invalidate("k")  # ...then its invalidation, then the marker
            writer.invalidate(f"marker:{version}")
            while reads[0] < version and not failures:  # readers keep pace
                assert time.monotonic() < deadline, f"{reads[0]} reads in {version} rounds"
                time.sleep(0.001)
        seen, deadline = handled[0], time.monotonic() + WAIT
        while handled[0] < rounds and not failures:
            if handled[0] != seen:
                seen, deadline = handled[0], time.monotonic() + WAIT
            assert time.monotonic() < deadline, f"the bus handled {handled[0]} of {rounds}"
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(WAIT)
        writer.close()
    assert failures == []
    assert reads[0] > rounds
    # Every message received once (by a reader or the bus thread), told once, in order.
    in_order = [key for version, key in sorted((v, k) for k, v in markers.items()) if version]
    assert [key for key in told.keys if key in markers] == in_order
    assert [key for key in changed if key in markers] == in_order
    assert threading.get_ident() not in told.threads
    assert len(told.threads) == 1
    assert reader.get_or_load("k", lambda: database[0], ttl=600) == rounds
    assert reader.stats().l1_hits > 0  # "steady", read between the loads


def test_a_bus_thread_held_by_a_slow_subscriber_does_not_hold_the_l1_back(
    reader: Cache, redis_url: str
) -> None:
    _kept_in_l1(reader, redis_url, "k", "v")
    held, gate = threading.Event(), threading.Event()
    hold_key = reader.store_key("hold")

    def slow(store_key: str | None) -> None:
        if store_key == hold_key:
            held.set()
            gate.wait(WAIT)

    delivered = _Subscribed()
    reader.on_invalidation(slow)
    reader.on_invalidation(delivered)
    writer = Cache(redis_url, namespace=NAMESPACE, secret=SECRET)
    try:
        writer.invalidate("hold")
        assert held.wait(WAIT)
        writer.invalidate("k")  # the bus thread is busy telling "hold": it cannot read this
        deadline = time.monotonic() + WAIT
        while reader.get("k", MISS) == "v":  # so only this thread's hits can
            assert time.monotonic() < deadline, "the L1 waited for the held bus thread"
        # The subscribers are still told on the bus thread, in order, once it is free.
        assert reader.store_key("k") not in delivered.keys
    finally:
        gate.set()
        writer.close()
    deadline = time.monotonic() + WAIT
    while reader.store_key("k") not in delivered.keys:
        assert time.monotonic() < deadline, "the queued invalidation was never told"
        time.sleep(0.01)
    assert delivered.keys[-2:] == [hold_key, reader.store_key("k")]
    assert threading.get_ident() not in delivered.threads


def test_a_hit_on_the_bus_thread_does_not_wait_for_itself(reader: Cache, redis_url: str) -> None:
    _kept_in_l1(reader, redis_url, "k", "v")
    seen: list[object] = []
    done = threading.Event()
    trigger = reader.store_key("trigger")

    def read_on_the_bus(store_key: str | None) -> None:
        if store_key == trigger:
            seen.extend(reader.get("k", MISS) for _ in range(5_000))
            done.set()

    reader.on_invalidation(read_on_the_bus)
    writer = Cache(redis_url, namespace=NAMESPACE, secret=SECRET)
    try:
        writer.invalidate("trigger")
        assert done.wait(WAIT)
    finally:
        writer.close()
    assert seen == ["v"] * 5_000


def test_a_subscription_redis_py_reconnected_by_itself_empties_l1(
    reader: Cache, redis_url: str, redis_client: redis.Redis
) -> None:
    # redis-py's retry reconnects and resubscribes a pub/sub connection without a word:
    # announcements made in between were missed, so the L1 must not outlive them.
    _kept_in_l1(reader, redis_url, "k", "v")
    everything = threading.Event()
    reader.store.fills.on_change(lambda key: everything.set() if key is None else None)
    assert redis_client.client_kill_filter(_type="pubsub") >= 1
    assert everything.wait(WAIT)
    hits = reader.stats().l1_hits
    reader.get("k")
    assert reader.stats().l1_hits == hits  # read from Redis: the copy was dropped


@pytest.mark.parametrize("first", [True, False], ids=["first subscription", "resubscribed"])
def test_a_read_begun_before_the_subscription_was_confirmed_is_not_kept(
    redis_server: RedisServer, first: bool
) -> None:
    # A read takes the L1's epoch, reads the store, and keeps what it read only if the epoch
    # has not moved and the bus is live. Announcements made before the subscription was
    # confirmed were not heard, so a read begun then may hold a value invalidated since: the
    # confirmation must move the epoch on, the first one as well as a resubscription. A cut
    # proxy holds the subscription back while the read begins.
    from cacheplug._engine.local import LocalCache

    with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0")
        fills = store.fills
        local = LocalCache(LocalTier(ttl=60), live=lambda: fills.live)
        try:
            if first:
                proxy.cut()
            fills.on_change(lambda key: local.drop(key, "root"))  # subscribes (or tries)
            if not first:
                assert fills.live
                proxy.cut()
                deadline = time.monotonic() + WAIT
                while fills.live:
                    assert time.monotonic() < deadline, "the cut subscription stayed live"
                    time.sleep(0.01)
            began = local.epoch  # a read begins, its value about to be read from the store
            proxy.heal()
            deadline = time.monotonic() + WAIT
            while not fills.live:
                assert time.monotonic() < deadline, "the subscription never came (back)"
                time.sleep(0.01)
            local.put("k", "old", 60.0, ("root",), 3, began)  # the read ends
            assert len(local) == 0
            local.put("k", "new", 60.0, ("root",), 3, local.epoch)  # one begun after it
            assert len(local) == 1
        finally:
            fills.stop()
            store.close()
