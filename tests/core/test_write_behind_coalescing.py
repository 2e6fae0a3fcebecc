"""Write-behind batches coalesced by key (last write wins, or a merge function), handed out
again whole after a failure, flushed by size or time, and read through the cache before the
sink has them."""

from __future__ import annotations

import json
import operator
from collections.abc import Iterator

import pytest

from cacheplug import Cache, ConfigurationError, QueuedWrite, write_order
from cacheplug.integration import stats_report

SECRET = "write-behind-secret"


@pytest.fixture(params=["redis", "memory"])
def cache(request: pytest.FixtureRequest) -> Iterator[Cache]:
    if request.param == "redis":
        made = Cache(request.getfixturevalue("redis_url"), namespace="wbc", secret=SECRET)
    else:
        made = Cache()
    yield made
    made.close()


def durable(cache: Cache) -> bool:
    return bool(cache.store.shared)


def test_last_write_wins_per_key_within_a_batch(cache: Cache) -> None:
    received: list[QueuedWrite] = []
    queue = cache.write_behind("lww", received.extend, durable=durable(cache))
    ids = [queue.put(key, value) for key, value in [("a", 1), ("b", 2), ("a", 3), ("a", 4)]]
    assert queue.drain() == 4
    assert received == [QueuedWrite(ids[3], "a", 4, merged=3), QueuedWrite(ids[1], "b", 2)]
    assert write_order(ids[3]) > write_order(ids[2]) > write_order(ids[0])


def test_a_merge_function_folds_a_keys_writes_in_order(cache: Cache) -> None:
    received: list[QueuedWrite] = []
    queue = cache.write_behind("views", received.extend, merge=operator.add, durable=durable(cache))
    for key in ["article:1", "article:2", "article:1", "article:1"]:
        queue.put(key, 1)
    queue.drain()
    assert [(w.key, w.value, w.merged) for w in received] == [
        ("article:1", 3, 3),
        ("article:2", 1, 1),
    ]
    lists: list[QueuedWrite] = []
    log = cache.write_behind("log", lists.extend, merge=operator.add, durable=durable(cache))
    for word in (["a"], ["b"], ["c"]):
        log.put("k", word)
    log.drain()
    assert lists[0].value == ["a", "b", "c"]  # the order they were put in


def test_a_failed_batch_comes_back_whole_whatever_the_batch_size(cache: Cache) -> None:
    calls: list[list[QueuedWrite]] = []

    def sink(writes: list[QueuedWrite]) -> None:
        calls.append(writes)
        if len(calls) == 1:
            raise RuntimeError("the database went away mid-batch")

    queue = cache.write_behind(
        "counts", sink, merge=operator.add, batch_size=6, claim_idle=0.0, durable=durable(cache)
    )
    for i in range(6):
        queue.put(f"k{i % 2}", 1)
    queue.put("later", 1)  # not part of the first batch
    with pytest.raises(RuntimeError):
        queue.drain("first")
    queue.batch_size = 2  # the worker that takes it over reads smaller batches...
    assert queue.drain("second") == 6  # ...and still gets the whole batch back
    assert calls[1] == calls[0]  # the same writes, with the same ids
    assert [(w.key, w.value) for w in calls[1]] == [("k0", 3), ("k1", 3)]
    assert queue.drain("second") == 1
    assert [(w.key, w.value) for w in calls[2]] == [("later", 1)]
    assert queue.length() == 0


def test_a_batch_handed_out_too_often_goes_to_the_dead_letters_whole(cache: Cache) -> None:
    def sink(writes: list[QueuedWrite]) -> None:
        raise RuntimeError("poison")

    queue = cache.write_behind(
        "poison", sink, claim_idle=0.0, max_deliveries=2, durable=durable(cache)
    )
    ids = [queue.put("a", 1), queue.put("b", 2)]
    for _ in range(2):
        with pytest.raises(RuntimeError):
            queue.drain()
    assert queue.drain() == 2
    assert sorted(queue.dead_letters()) == sorted(zip(ids, ["a", "b"], strict=True))
    assert queue.length() == 0
    # What put() cached for the dead writes is gone: the database never got them.
    assert cache.get("a") is None
    assert cache.get("b") is None
    # The stats commands show them.
    report = json.loads(stats_report(cache, as_json=True))
    assert report["write_behind"]["poison"] == {"queued": 0, "dead_letters": 2}
    assert "poison: 0 queued, 2 dead letter(s)" in stats_report(cache)


def test_reads_through_the_cache_see_a_pending_write(cache: Cache) -> None:
    database = {"user:1": {"name": "old"}}
    queue = cache.write_behind(
        "profiles",
        lambda writes: database.update({w.key: w.value for w in writes}),
        durable=durable(cache),
    )
    assert cache.get_or_load("user:1", lambda: database["user:1"]) == {"name": "old"}
    queue.put("user:1", {"name": "new"})
    assert database["user:1"] == {"name": "old"}  # not there yet...
    assert cache.get_or_load("user:1", lambda: database["user:1"]) == {"name": "new"}
    queue.drain()
    assert database["user:1"] == {"name": "new"}
    assert cache.get_or_load("user:1", lambda: database["user:1"]) == {"name": "new"}


def test_a_merge_queue_leaves_the_cache_alone_and_has_no_pending_value(cache: Cache) -> None:
    cache.set("article:1", {"views": 10})
    queue = cache.write_behind(
        "views", lambda writes: None, merge=operator.add, durable=durable(cache)
    )
    queue.put("article:1", 1)
    assert cache.get("article:1") == {"views": 10}
    with pytest.raises(TypeError, match="merges changes"):
        queue.pending("article:1")


def test_workers_wait_for_a_full_batch_or_flush_every(cache: Cache) -> None:
    queue = cache.write_behind(
        "slow", lambda writes: None, batch_size=5, flush_every=3600, durable=durable(cache)
    )
    queue.drain()  # a batch just went: the next is due in an hour, or at 5 writes
    for i in range(4):
        queue.put(f"k{i}", i)
    assert not queue.due()
    queue.put("k4", 4)
    assert queue.due()
    eager = cache.write_behind("eager", lambda writes: None, flush_every=0, durable=durable(cache))
    assert eager.due()


@pytest.mark.parametrize(
    "options",
    [{"batch_size": 0}, {"flush_every": -1}, {"max_length": 0}, {"max_deliveries": 0}],
)
def test_bad_options_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError):
        Cache().write_behind("q", lambda writes: None, durable=False, **options)  # type: ignore[arg-type]


def test_update_cache_is_refused_for_a_merge_queue() -> None:
    with pytest.raises(ConfigurationError, match="whole values"):
        Cache().write_behind(
            "q", lambda writes: None, merge=operator.add, update_cache=True, durable=False
        )


def test_a_worker_retries_its_failed_batch_before_newer_writes(cache: Cache) -> None:
    """Otherwise the newer value reaches the database first, and the retried older one
    overwrites it."""
    database: dict[str, int] = {}
    failures = [1]

    def sink(writes: list[QueuedWrite]) -> None:
        if failures[0]:
            failures[0] -= 1
            raise RuntimeError("the database went away")
        database.update({w.key: w.value for w in writes})

    queue = cache.write_behind("ordered", sink, batch_size=1, durable=durable(cache))
    queue.put("k", 1)
    with pytest.raises(RuntimeError):
        queue.drain()
    queue.put("k", 2)
    while queue.length():
        queue.drain()
    assert database == {"k": 2}


def test_write_order_sorts_stream_ids_as_they_were_added() -> None:
    ids = ["999-5", "1000-0", "1000-1", "1000-10", "1700000000000-2"]
    assert sorted(ids, key=write_order) == ids
    assert sorted(write_order(i) for i in ids) == [write_order(i) for i in ids]
    assert len(write_order("1700000000000-2")) == 26


def test_once_the_sink_has_a_keys_latest_write_reads_see_it(cache: Cache) -> None:
    """Two processes putting one key at once can cache the older value last (each puts, then
    caches); once the sink has the newer one, the cache is dropped for the database's."""
    database: dict[str, str] = {}
    queue = cache.write_behind(
        "race",
        lambda writes: database.update({w.key: w.value for w in writes}),
        durable=durable(cache),
    )
    queue.put("k", "older")
    queue.put("k", "newer")
    cache.set("k", "older")  # the other process's set, landing late
    queue.drain()
    assert database["k"] == "newer"
    assert cache.get_or_load("k", lambda: database["k"]) == "newer"
