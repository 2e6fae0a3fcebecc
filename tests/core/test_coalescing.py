"""Request coalescing: concurrent reads of one key share round trips, and never share a read
that was sent before they began."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from cacheplug import Cache, RedisStore
from cacheplug._engine.coalesce import ReadBatches

SECRET = "coalesce-secret"


class SlowReadsStore(RedisStore):
    """A real RedisStore whose reads take 50 ms (a far-away Redis), counted."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reads = 0

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.reads += 1
        time.sleep(0.05)
        return super().get_many(keys)


def test_concurrent_reads_of_a_hot_key_share_round_trips(redis_url: str) -> None:
    store = SlowReadsStore(redis_url)
    cache = Cache(store, namespace="coalesce", secret=SECRET)
    cache.set("hot", "value")
    store.reads = 0
    start = threading.Barrier(16)
    results: list[object] = []

    def read() -> None:
        start.wait()
        results.append(cache.get_or_load("hot", lambda: "loaded"))

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cache.close()
    assert results == ["value"] * 16
    assert store.reads <= 4  # the first read, then one for all who arrived meanwhile


def test_a_reader_never_takes_a_read_sent_before_it_arrived() -> None:
    batches = ReadBatches()
    sent, release = threading.Event(), threading.Event()
    database = {"version": 1}

    def slow_fetch() -> list[object]:
        value = database["version"]  # the request reaches the server...
        sent.set()
        release.wait(5)  # ...and its answer travels back slowly
        return [value]

    first: list[list[object]] = []
    reader = threading.Thread(target=lambda: first.append(batches.read(("k",), slow_fetch)))
    reader.start()
    assert sent.wait(5)
    database["version"] = 2  # a write (and its invalidation) lands after that read was sent
    later: list[list[object]] = []
    late = threading.Thread(
        target=lambda: later.append(batches.read(("k",), lambda: [database["version"]]))
    )
    late.start()
    time.sleep(0.05)  # the late reader is waiting for the read in flight
    release.set()
    reader.join()
    late.join()
    assert first == [[1]]
    assert later == [[2]]  # its own read, sent after it arrived


def test_an_error_reaches_the_readers_it_was_read_for() -> None:
    batches = ReadBatches()
    gate = threading.Event()
    errors: list[BaseException] = []

    def blocked() -> list[object]:
        gate.wait(5)
        return ["first"]

    def failing() -> list[object]:
        raise ConnectionError("down")

    def read(fetch: object) -> None:
        try:
            batches.read(("k",), fetch)  # type: ignore[arg-type]
        except ConnectionError as exc:
            errors.append(exc)

    leader = threading.Thread(target=read, args=(blocked,))
    leader.start()
    time.sleep(0.02)
    waiters = [threading.Thread(target=read, args=(failing,)) for _ in range(3)]
    for thread in waiters:
        thread.start()
    time.sleep(0.05)
    gate.set()
    leader.join()
    for thread in waiters:
        thread.join()
    assert len(errors) == 3
    assert batches.read(("k",), lambda: ["after"]) == ["after"]  # nothing left behind
