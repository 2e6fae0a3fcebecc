"""Write-behind workers (``WriteBehind.run``): an error is logged, never swallowed, and the
batch comes back."""

from __future__ import annotations

import logging
import threading

import pytest

from cacheplug import Cache, QueuedWrite


@pytest.fixture
def cache(store_url: str) -> Cache:
    cache = Cache(store_url, namespace="wb", secret="write-behind-secret")
    yield cache  # type: ignore[misc]
    cache.close()


@pytest.fixture(params=["redis", "memory"])
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("redis_url")
    return url


def test_a_worker_logs_the_error_it_retries(cache: Cache, caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()

    def sink(writes: list[QueuedWrite]) -> None:
        stop.set()  # run() returns once it has handled this failure
        raise RuntimeError("the database is down")

    durable = cache.store.shared
    queue = cache.write_behind("q", sink, flush_every=0, durable=durable)
    queue.put("k", 1)
    with caplog.at_level(logging.ERROR, logger="cacheplug"):
        queue.run(stop, consumer="w1", idle=0.0)
    [record] = [r for r in caplog.records if "write-behind" in r.getMessage()]
    assert record.getMessage() == (
        "write-behind queue 'q', worker w1: draining failed; retrying in 0s"
    )
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "the database is down"
    assert queue.length() == 1  # nothing acknowledged: the batch comes back


def test_a_worker_that_fails_keeps_going_and_delivers_once_the_sink_recovers(
    cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()
    received: list[QueuedWrite] = []
    failures = [RuntimeError("first"), RuntimeError("second")]

    def sink(writes: list[QueuedWrite]) -> None:
        if failures:
            raise failures.pop(0)
        received.extend(writes)
        stop.set()

    queue = cache.write_behind("q", sink, flush_every=0, durable=cache.store.shared)
    queue.put("k", 1)
    with caplog.at_level(logging.ERROR, logger="cacheplug"):
        queue.run(stop, consumer="w1", idle=0.0)
    logged = [r.exc_info[1] for r in caplog.records if r.exc_info is not None]
    assert [str(error) for error in logged] == ["first", "second"]
    assert [(write.key, write.value) for write in received] == [("k", 1)]
    assert queue.length() == 0
