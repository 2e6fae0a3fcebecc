"""The invalidation bus: ``cache.on_invalidation(callback)``.

Every invalidation of a key (its data store key), of a tag or of a namespace (their version
keys) reaches the subscribers, from this process and, on Redis, from every other ``Cache`` on
the same database; fills never do. On Redis the callbacks run on the store's pub/sub thread,
so tests wait for delivery with bounded waits instead of sleeping.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final

import pytest

from cacheplug import Cache, MemoryStore, Store
from cacheplug.testing import RedisServer

SECRET: Final = "invalidation-bus-test-secret"
NAMESPACE: Final = "bus"
PROBE: Final = "probe-"
WAIT: Final = 5.0
"""Seconds a bounded wait for one delivery may take."""

Operation = Callable[[], object]


class Received:
    """An ``on_invalidation`` callback that records what it is given, and by which thread."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._keys: list[str | None] = []
        self.threads: set[int] = set()

    def __call__(self, store_key: str | None) -> None:
        with self._changed:
            self._keys.append(store_key)
            self.threads.add(threading.get_ident())
            self._changed.notify_all()

    @property
    def keys(self) -> list[str | None]:
        """Everything received except the probes used to check that a subscription is up."""
        with self._changed:
            return [k for k in self._keys if k is None or f":{{{PROBE}" not in k]

    def wait_for(self, store_key: str | None, timeout: float = WAIT) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: store_key in self._keys, timeout)


def bus_cache(url_or_store: str | Store) -> Cache:
    return Cache(url_or_store, namespace=NAMESPACE, secret=SECRET)


@pytest.fixture
def caches(redis_url: str) -> Iterator[tuple[Cache, Cache]]:
    """Two caches on the same Redis database and namespace, as two processes would have."""
    first, second = bus_cache(redis_url), bus_cache(redis_url)
    yield first, second
    first.close()
    second.close()


_probes = itertools.count()


def wait_until_subscribed(sender: Cache, *receivers: Received) -> None:
    """Invalidate probe keys from ``sender`` until every receiver has seen one (messages
    published before a subscription is confirmed are never delivered)."""
    deadline = time.monotonic() + 2 * WAIT
    while True:
        probe = f"{PROBE}{next(_probes)}"
        sender.invalidate(probe)
        if all(receiver.wait_for(sender.store_key(probe), 0.5) for receiver in receivers):
            return
        assert time.monotonic() < deadline, "the invalidation bus never came up"


def operations(cache: Cache) -> list[tuple[Operation, list[str]]]:
    """Invalidations of every kind, each with the store keys it must deliver, in order."""
    hashed = cache.store_key("user 1")  # not usable as it is: hashed, with a readable prefix
    assert hashed.startswith("bus:0:d#:{user_1~")
    assert hashed.endswith("}")
    return [
        (lambda: cache.invalidate("k"), ["bus:0:d:{k}"]),
        (lambda: cache.invalidate("k1", "k2"), ["bus:0:d:{k1}", "bus:0:d:{k2}"]),
        (lambda: cache.invalidate(), []),
        (lambda: cache.delete("d"), ["bus:0:d:{d}"]),
        (lambda: cache.delete_many(["m1", "m2"]), ["bus:0:d:{m1}", "bus:0:d:{m2}"]),
        (
            lambda: cache.invalidate_tags("product:42", "color:red"),
            ["bus:0:t:{product:42}", "bus:0:t:{color:red}"],
        ),
        (lambda: cache.invalidate_tags(), []),
        (lambda: cache.bump(), ["bus:0:n:{*}"]),
        (lambda: cache.namespace("x").bump(), ["bus/x:0:n:{*}"]),
        (lambda: cache.namespace("x").invalidate("k"), ["bus/x:0:d:{k}"]),
        # Tags are shared with nested namespaces: the same version key.
        (lambda: cache.namespace("x").invalidate_tags("product:42"), ["bus:0:t:{product:42}"]),
        (lambda: cache.invalidate("user 1"), [hashed]),
    ]


def fills(cache: Cache) -> list[Operation]:
    """Writes that store values (and create version keys) without invalidating anything."""
    return [
        lambda: cache.get_or_load("filled", lambda: "v"),
        lambda: cache.get_or_load("tagged", lambda: "v", tags=["product:42"]),
        lambda: cache.namespace("x").get_or_load("nested", lambda: "v"),
        lambda: cache.set("set", "v", tags=["color:red"]),
        lambda: cache.add("added", "v"),
        lambda: cache.set_many({"m1": 1, "m2": 2}),
        lambda: cache.incr("counter"),
    ]


# -- on Redis: across caches -------------------------------------------------------------------


def test_every_invalidation_reaches_subscribers_of_every_cache(
    caches: tuple[Cache, Cache],
) -> None:
    sender, other = caches
    own, remote = Received(), Received()
    sender.on_invalidation(own)  # made by this process...
    other.on_invalidation(remote)  # ...and by another one on the same database
    wait_until_subscribed(sender, own, remote)

    expected: list[str | None] = []
    for operation, keys in operations(sender):
        operation()
        expected += keys
    last = sender.store_key("last")
    sender.invalidate("last")
    expected.append(last)
    assert own.wait_for(last)
    assert remote.wait_for(last)
    assert own.keys == expected
    assert remote.keys == expected
    assert threading.get_ident() not in own.threads | remote.threads  # the pub/sub thread


def test_every_store_key_delivered_is_the_one_invalidated(caches: tuple[Cache, Cache]) -> None:
    sender, other = caches
    remote = Received()
    other.on_invalidation(remote)
    wait_until_subscribed(sender, remote)
    keys = ["plain", "with space", "ünïcode", "x" * 300]  # the last three are hashed
    for key in keys:
        sender.invalidate(key)
        assert remote.wait_for(other.store_key(key))
        assert sender.store_key(key) == other.store_key(key)
    assert remote.keys == [other.store_key(key) for key in keys]


def test_fills_are_not_delivered(caches: tuple[Cache, Cache]) -> None:
    sender, other = caches
    own, remote = Received(), Received()
    sender.on_invalidation(own)
    other.on_invalidation(remote)
    wait_until_subscribed(sender, own, remote)
    for fill in [*fills(sender), *fills(other)]:
        fill()
    assert sender.get("filled") == "v"
    assert other.get("set") == "v"
    marker = sender.store_key("marker")
    sender.invalidate("marker")  # published after every fill's announcement
    assert own.wait_for(marker)
    assert remote.wait_for(marker)
    assert own.keys == [marker]
    assert remote.keys == [marker]


def test_unsubscribe_stops_delivery(caches: tuple[Cache, Cache]) -> None:
    sender, other = caches
    dropped, kept = Received(), Received()
    unsubscribe = other.on_invalidation(dropped)
    other.on_invalidation(kept)
    wait_until_subscribed(sender, dropped, kept)
    sender.invalidate("before")
    assert dropped.wait_for("bus:0:d:{before}")
    assert kept.wait_for("bus:0:d:{before}")

    unsubscribe()
    sender.invalidate("after")
    sender.invalidate("later")
    # One thread delivers messages in order: once "later" is in, "after" is fully handled.
    assert kept.wait_for("bus:0:d:{later}")
    assert kept.keys == ["bus:0:d:{before}", "bus:0:d:{after}", "bus:0:d:{later}"]
    assert dropped.keys == ["bus:0:d:{before}"]
    unsubscribe()  # a second call is harmless


def test_dropped_subscription_is_reported_with_none_then_delivery_resumes() -> None:
    with RedisServer() as server:
        sender, other = bus_cache(server.url), bus_cache(server.url)
        try:
            remote = Received()
            other.on_invalidation(remote)
            wait_until_subscribed(sender, remote)

            server.stop()
            assert remote.wait_for(None), "no notice that invalidations may have been missed"
            server.start()
            # The subscription comes back by itself (with backoff): later invalidations arrive.
            deadline = time.monotonic() + 2 * WAIT
            for attempt in itertools.count():
                sender.invalidate(f"after-{attempt}")
                if remote.wait_for(f"bus:0:d:{{after-{attempt}}}", 0.2):
                    break
                assert time.monotonic() < deadline, "the subscription did not come back"
        finally:
            sender.close(flush_timeout=0.5)
            other.close(flush_timeout=0.5)


# -- on an in-process store ----------------------------------------------------------------------


def test_memory_store_delivers_synchronously_on_the_calling_thread() -> None:
    store = MemoryStore()
    cache, sibling = bus_cache(store), bus_cache(store)
    received, sibling_received = Received(), Received()
    cache.on_invalidation(received)
    sibling.on_invalidation(sibling_received)
    try:
        expected: list[str | None] = []
        for operation, keys in operations(cache):
            operation()
            expected += keys
            assert received.keys == expected  # already delivered when the call returns
        assert sibling_received.keys == expected  # any cache on the same store
        assert received.threads == {threading.get_ident()}
    finally:
        cache.close()


def test_memory_store_unsubscribe_stops_delivery() -> None:
    cache = bus_cache(MemoryStore())
    dropped, kept = Received(), Received()
    unsubscribe = cache.on_invalidation(dropped)
    cache.on_invalidation(kept)
    try:
        cache.invalidate("before")
        unsubscribe()
        cache.invalidate_tags("after")
        assert dropped.keys == ["bus:0:d:{before}"]
        assert kept.keys == ["bus:0:d:{before}", "bus:0:t:{after}"]
    finally:
        cache.close()


def test_memory_store_fills_are_not_delivered() -> None:
    cache = bus_cache(MemoryStore())
    received = Received()
    cache.on_invalidation(received)
    try:
        for fill in fills(cache):
            fill()
        assert cache.get("filled") == "v"
        assert received.keys == []
    finally:
        cache.close()


# -- a load that started before an invalidation made by another cache ---------------------------


class BlockedLoad:
    """A loader that returns ``value`` once the test releases it."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> str:
        self.started.set()
        if not self.release.wait(2 * WAIT):
            raise TimeoutError("the test never released this load")
        return self.value


class Caller(threading.Thread):
    """Runs one cache call on a thread of its own."""

    def __init__(self, call: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self._call = call
        self.result: object = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


def test_caller_arriving_after_a_remote_invalidation_does_not_get_the_older_load(
    caches: tuple[Cache, Cache],
) -> None:
    writer, reader = caches
    old_load = BlockedLoad("old")
    first = Caller(lambda: reader.get_or_load("k", old_load))
    second: Caller | None = None
    try:
        first.start()
        assert old_load.started.wait(WAIT)
        delivered = Received()
        reader.on_invalidation(delivered)
        wait_until_subscribed(writer, delivered)

        writer.invalidate("k")  # the database changed after the old load read it
        assert delivered.wait_for("bus:0:d:{k}")
        writer.invalidate("sync")  # delivered in order: the reader has handled "k" by then
        assert delivered.wait_for("bus:0:d:{sync}")

        second = Caller(lambda: reader.get_or_load("k", lambda: "new"))
        second.start()
        assert second.done.wait(WAIT), "a later caller waited for the load that predates it"
        assert second.error is None
        assert second.result == "new"
        assert not old_load.release.is_set()
    finally:
        old_load.release.set()
    assert first.done.wait(WAIT)
    assert first.error is None
    assert reader.get("k", "<miss>") in ("new", "<miss>")
    assert writer.get("k", "<miss>") in ("new", "<miss>")
    assert reader.get_or_load("k", lambda: "newer") in ("new", "newer")


def test_caller_arriving_before_the_bus_delivers_still_never_gets_the_older_load(
    caches: tuple[Cache, Cache],
) -> None:
    # Hold the reader's bus thread on the invalidation, before the reader's own listener sees
    # it (subscribers are called in turn; this one subscribed first): a caller arriving then
    # finds the old load still in flight. Whatever it does, it must not get its result.
    writer, reader = caches
    key = reader.store_key("k")
    bus_held, bus_gate = threading.Event(), threading.Event()
    delivered = Received()

    def hold_bus(store_key: str | None) -> None:
        if store_key == key:
            bus_held.set()
            bus_gate.wait(2 * WAIT)

    reader.on_invalidation(hold_bus)
    reader.on_invalidation(delivered)
    wait_until_subscribed(writer, delivered)
    old_load = BlockedLoad("old")
    first = Caller(lambda: reader.get_or_load("k", old_load))
    second = Caller(lambda: reader.get_or_load("k", lambda: "new"))
    try:
        first.start()
        assert old_load.started.wait(WAIT)
        writer.invalidate("k")
        assert bus_held.wait(WAIT)

        second.start()
        deadline = time.monotonic() + WAIT
        while not second.done.is_set() and reader.stats().coalesced == 0:
            assert time.monotonic() < deadline, "the second caller neither joined nor returned"
            time.sleep(0.01)
        old_load.release.set()
        assert second.done.wait(WAIT)
        assert first.done.wait(WAIT)
        assert second.error is None
        assert second.result == "new", "a caller arriving after the invalidation got the old load"
        assert first.error is None
    finally:
        old_load.release.set()
        bus_gate.set()
    assert delivered.wait_for(key)
    assert reader.get("k", "<miss>") in ("new", "<miss>")
    assert reader.get_or_load("k", lambda: "newer") in ("new", "newer")
