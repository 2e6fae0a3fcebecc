"""cacheplug.prometheus.CacheCollector: scraped after real traffic, on the embedded store and
on a real Redis, the counters moved exactly as the traffic says."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import redis
from _stampede import stampede, wait_until
from prometheus_client import CollectorRegistry, generate_latest

from cacheplug import Cache, CacheStats, CircuitBreaker, LocalTier, MemoryStore, RedisStore
from cacheplug.integration import DebeziumStreamFeed, OutboxRelay
from cacheplug.prometheus import CacheCollector
from cacheplug.testing import FakeClock, RedisServer
from cacheplug.testing.proxy import TcpProxy

SECRET = "test-secret-key-not-for-production"


class Scrape:
    """One registry holding the collector; reads samples by name and labels."""

    def __init__(self, collector: CacheCollector, cache: str = "default") -> None:
        self.registry = CollectorRegistry()
        self.registry.register(collector)
        self.cache = cache

    def value(self, name: str, scope: str = "process", **labels: str) -> float | None:
        namespace = labels.pop("namespace", None)
        wanted = {"cache": self.cache, "scope": scope, **labels}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name != name:
                    continue
                if all(sample.labels.get(k) == v for k, v in wanted.items()) and (
                    namespace is None or sample.labels.get("namespace") == namespace
                ):
                    return sample.value
        return None

    def hits(self, scope: str = "process") -> dict[str, float | None]:
        tiers = ("l1", "store", "stale", "replica")
        return {tier: self.value("cacheplug_hits_total", scope, tier=tier) for tier in tiers}


def test_a_scrape_counts_misses_loads_and_store_hits(cache: Cache) -> None:
    scrape = Scrape(CacheCollector(cache))
    loads: list[str] = []
    for _ in range(3):
        assert cache.get_or_load("product:1", lambda: loads.append("x") or "one") == "one"
    assert cache.get("absent") is None
    assert loads == ["x"]
    assert scrape.hits() == {"l1": 0, "store": 2, "stale": 0, "replica": 0}
    assert scrape.value("cacheplug_misses_total") == 2  # the first get_or_load, the get
    assert scrape.value("cacheplug_loads_total") == 1
    assert scrape.value("cacheplug_load_duration_seconds_count") == 1
    assert scrape.value("cacheplug_lease_wait_seconds_count") == 0
    assert scrape.value("cacheplug_coalesced_total") == 0
    assert scrape.value("cacheplug_errors_total") == 0
    assert scrape.value("cacheplug_breaker_open") == 0
    assert scrape.value("cacheplug_invalidations_pending") == 0
    assert scrape.value("cacheplug_misses_total", namespace="test") == 2
    text = generate_latest(scrape.registry).decode()
    assert "product" not in text  # no key ever reaches a label


def test_load_durations_fall_into_their_buckets(clocked_cache: Cache, clock: FakeClock) -> None:
    scrape = Scrape(CacheCollector(clocked_cache, fleet=False))

    def slow(seconds: float) -> Callable[[], str]:
        def load() -> str:
            clock.advance(seconds)  # the load "takes" this long on the cache's clock
            return "v"

        return load

    clocked_cache.get_or_load("a", slow(0.3))
    clocked_cache.get_or_load("b", slow(0.02))
    clocked_cache.get_or_load("c", slow(20.0))
    bucket = "cacheplug_load_duration_seconds_bucket"
    assert scrape.value(bucket, le="0.01") == 0
    assert scrape.value(bucket, le="0.025") == 1
    assert scrape.value(bucket, le="0.25") == 1
    assert scrape.value(bucket, le="0.5") == 2
    assert scrape.value(bucket, le="10.0") == 2
    assert scrape.value(bucket, le="+Inf") == 3
    assert scrape.value("cacheplug_load_duration_seconds_sum") == pytest.approx(20.32)
    assert scrape.value("cacheplug_hits_total", "fleet", tier="store") is None  # fleet=False


def test_concurrent_callers_are_counted_as_coalesced(cache: Cache) -> None:
    scrape = Scrape(CacheCollector(cache))
    results, loads = stampede(cache, "hot", 5)
    assert results == ["v"] * 5
    assert loads == 1
    assert scrape.value("cacheplug_coalesced_total") == 4
    assert scrape.value("cacheplug_loads_total") == 1
    assert scrape.value("cacheplug_misses_total") == 5
    assert scrape.value("cacheplug_load_duration_seconds_count") == 1


class _Nothing:
    def __enter__(self) -> None: ...

    def __exit__(self, *exc: object) -> None: ...


class _WaitTracer:
    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.outcomes: list[str] = []

    def start(self, store_key: str, version_keys: Any, refresh: bool) -> _WaitTrace:
        return _WaitTrace(self)


class _WaitTrace:
    def __init__(self, owner: _WaitTracer) -> None:
        self.owner = owner

    def active(self) -> Any:
        return _Nothing()

    def waiting(self) -> None:
        self.owner.waiting.set()

    def wait_over(self, seconds: float) -> None: ...

    def loading(self) -> None: ...

    def loaded(self, seconds: float) -> None: ...

    def end(self, outcome: str, waiters: int, error: BaseException | None) -> None:
        self.owner.outcomes.append(outcome)


@pytest.fixture
def two_processes(redis_url: str) -> Iterator[tuple[Cache, Cache]]:
    """Two caches on one Redis, as two processes have them: own connections, own counters."""
    a = Cache(redis_url, namespace="shared", secret=SECRET)
    b = Cache(redis_url, namespace="shared", secret=SECRET)
    yield a, b
    a.close()
    b.close()


def test_a_wait_for_another_process_load_is_timed_and_coalesced(
    two_processes: tuple[Cache, Cache],
) -> None:
    a, b = two_processes
    tracer = _WaitTracer()
    b.trace_loads(tracer)

    loading = threading.Event()

    def load_once_b_waits() -> str:
        loading.set()  # a holds the lease while its loader runs
        assert tracer.waiting.wait(10)  # b found the lease taken and waits for this load
        return "from a"

    found: list[str] = []
    waiter = threading.Thread(target=lambda: found.append(b.get_or_load("k", lambda: "b")))
    loader = threading.Thread(target=lambda: a.get_or_load("k", load_once_b_waits))
    loader.start()
    assert loading.wait(10)
    waiter.start()
    loader.join(10)
    waiter.join(10)
    assert found == ["from a"]
    assert tracer.outcomes == ["waited"]
    scrape = Scrape(CacheCollector({"b": b}), cache="b")
    assert scrape.value("cacheplug_lease_wait_seconds_count") == 1
    assert scrape.value("cacheplug_loads_total") == 0
    assert scrape.value("cacheplug_coalesced_total") == 1
    assert scrape.value("cacheplug_load_duration_seconds_count") == 0
    assert a.stats().loads == 1


def test_l1_and_stale_hits_are_tiers_of_their_own(redis_url: str, clock: FakeClock) -> None:
    store = RedisStore(redis_url)
    cache = Cache(store, namespace="tiers", l1=LocalTier(max_entries=10, ttl=30), clock=clock)
    try:
        store.fills.start()
        assert store.fills.live
        scrape = Scrape(CacheCollector(cache))
        cache.get_or_load("k", lambda: "v")
        wait_until(lambda: cache.get_or_load("k", lambda: "x") and cache.stats().l1_hits, "L1")
        hits_before = scrape.hits()
        assert hits_before["l1"] == 1
        cache.get_or_load("k", lambda: "x")
        cache.set("old", "stale one", ttl=10)
        clock.advance(15)
        assert cache.get_or_load("old", lambda: "new", stale_ttl=30) == "stale one"
        after = scrape.hits()
        assert after["l1"] == hits_before["l1"] + 1
        assert after["stale"] == 1
        assert after["store"] == hits_before["store"]
    finally:
        cache.close()


def test_hits_by_tier_splits_what_the_store_answered_from_the_rest() -> None:
    stats = CacheStats(hits=10, l1_hits=3, replica_hits=2, stale_hits=1)
    assert stats.hits_by_tier() == {"l1": 3, "replica": 2, "stale": 1, "store": 4}


def test_a_store_that_is_down_shows_in_errors_the_breaker_and_pending(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock()  # the breaker stays open until the test moves it on
    with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        cache = Cache(
            f"redis://127.0.0.1:{proxy.port}/0",
            namespace="down",
            breaker=CircuitBreaker(failure_threshold=3, clock=clock.monotonic),
        )
        scrape = Scrape(CacheCollector(cache))
        assert cache.get_or_load("k", lambda: 1) == 1
        assert scrape.value("cacheplug_errors_total", "fleet") == 0
        proxy.cut()
        assert cache.get_or_load("a", lambda: 2) == 2  # its read and its lease failed
        assert scrape.value("cacheplug_errors_total") == 2
        assert scrape.value("cacheplug_breaker_open") == 0
        assert cache.get_or_load("b", lambda: 3) == 3  # the third failure opens the breaker
        assert scrape.value("cacheplug_errors_total") == 3
        assert scrape.value("cacheplug_breaker_open") == 1
        assert scrape.value("cacheplug_loads_total") == 3
        cache.invalidate("k")
        assert scrape.value("cacheplug_invalidations_pending") == 1
        assert scrape.value("cacheplug_errors_total", "fleet") is None  # unreadable: left out
        cache.close(flush_timeout=0)


def test_registering_reads_nothing_from_the_store(redis_server: RedisServer) -> None:
    with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        cache = Cache(f"redis://127.0.0.1:{proxy.port}/0", namespace="describe")
        proxy.cut()
        registry = CollectorRegistry(auto_describe=True)
        registry.register(CacheCollector(cache))
        assert cache.stats().errors == 0
        with pytest.raises(ValueError, match="Duplicated"):
            registry.register(CacheCollector(cache))  # one collector for all caches
        cache.close(flush_timeout=0)


_WORKER = """
import sys
from cacheplug import Cache
cache = Cache(sys.argv[1], namespace="fleet", secret=sys.argv[2])
number = sys.argv[3]
for _ in range(3):
    cache.get_or_load("item:" + number, lambda: number)
cache.get("absent")
cache.publish_stats()
cache.close()
"""


def test_the_fleet_scope_sums_what_every_process_published(redis_url: str) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_WORKER), redis_url, SECRET, str(n)]
        )
        for n in range(3)
    ]
    assert [worker.wait(60) for worker in workers] == [0, 0, 0]
    cache = Cache(redis_url, namespace="fleet", secret=SECRET)
    try:
        scrape = Scrape(CacheCollector(cache))
        # Each worker: 1 miss and load, 2 hits from Redis, 1 miss of get().
        assert scrape.hits("fleet") == {"l1": 0, "store": 6, "stale": 0, "replica": 0}
        assert scrape.value("cacheplug_misses_total", "fleet") == 6
        assert scrape.value("cacheplug_loads_total", "fleet") == 3
        assert scrape.value("cacheplug_loads_total", "process") == 0  # the scraping process
        assert scrape.value("cacheplug_load_duration_seconds_count", "fleet") is None
        fleet_only = Scrape(CacheCollector(cache, process=False))  # multi-process mode
        assert fleet_only.value("cacheplug_loads_total", "fleet") == 3
        assert fleet_only.value("cacheplug_loads_total", "process") is None
    finally:
        cache.close()


def test_several_caches_and_a_change_feed_lag(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for n in range(4):
        client.xadd("dbz.public.product", {"value": str(n)})
    feed = DebeziumStreamFeed(
        client, lambda tags: True, streams=["dbz.public.product"], group="cacheplug"
    )
    client.xgroup_create("dbz.public.product", "cacheplug", id="0")
    one = Cache(redis_url, namespace="one")
    two = Cache(redis_url, namespace="two")
    try:
        one.get_or_load("k", lambda: 1)
        collector = CacheCollector({"one": one, "two": two}, feeds=[feed], fleet=False)
        scrape = Scrape(collector, cache="one")
        assert scrape.value("cacheplug_loads_total", namespace="one") == 1
        samples = {
            sample.name: sample
            for family in scrape.registry.collect()
            for sample in family.samples
            if sample.name.startswith("cacheplug_cdc")
        }
        assert samples["cacheplug_cdc_stream_undelivered"].value == 4
        assert samples["cacheplug_cdc_stream_undelivered"].labels == {
            "group": "cacheplug",
            "stream": "dbz.public.product",
        }
        assert samples["cacheplug_cdc_stream_pending"].value == 0
        scrape_two = Scrape(CacheCollector({"one": one, "two": two}, fleet=False), cache="two")
        assert scrape_two.value("cacheplug_loads_total") == 0
    finally:
        one.close()
        two.close()
        client.close()


WRITTEN_AT = 1_000_000.0  # when an outbox row says it was written (seconds since the epoch)


class ListOutbox:
    """An outbox table as a dict of row id -> created_at; ``down`` makes it unreadable."""

    def __init__(self, rows: dict[str, float]) -> None:
        self.rows = rows
        self.down = False

    def due(self, written_before: float, limit: int) -> Sequence[tuple[str, str]]:
        return []

    def delete(self, ids: Sequence[str]) -> None:
        for row_id in ids:
            self.rows.pop(row_id, None)

    def waiting(self, excluding: Sequence[str]) -> tuple[int, float | None]:
        if self.down:  # as a driver says it, credentials and all
            raise sqlite3.OperationalError("cannot reach postgresql://app:hunter2@db/shop")
        left = [created for row_id, created in self.rows.items() if row_id not in excluding]
        return len(left), min(left, default=None)


def outbox_relay(outbox: ListOutbox) -> OutboxRelay:
    # Nothing is delivered here: the scrape only asks the relay for its backlog.
    return OutboxRelay(outbox, lambda tags: True, lambda: pytest.fail("no lease is taken"))


@pytest.fixture
def memory_cache() -> Iterator[Cache]:
    with Cache(MemoryStore(), namespace="outbox") as made:
        yield made


def outbox_samples(scrape: Scrape) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels["database"]): sample.value
        for family in scrape.registry.collect()
        for sample in family.samples
        if sample.name.startswith("cacheplug_outbox")
    }


def test_the_outbox_backlog_rows_and_the_oldest_ones_age(memory_cache: Cache) -> None:
    outbox = ListOutbox({"a": WRITTEN_AT + 10, "b": WRITTEN_AT, "delivered": WRITTEN_AT - 10})
    relay = outbox_relay(outbox)
    relay.delivered("delivered")  # its writer delivered it: waiting to be deleted, no backlog
    empty = outbox_relay(ListOutbox({}))
    scrape = Scrape(CacheCollector(memory_cache, relays={"default": relay, "other": empty}))
    samples = outbox_samples(scrape)
    assert samples[("cacheplug_outbox_backlog_rows", "default")] == 2
    assert samples[("cacheplug_outbox_oldest_row_age_seconds", "default")] >= (
        1_700_000_000 - WRITTEN_AT  # written in 1970
    )
    assert samples[("cacheplug_outbox_relayed_total", "default")] == 0
    assert samples[("cacheplug_outbox_backlog_rows", "other")] == 0
    assert samples[("cacheplug_outbox_oldest_row_age_seconds", "other")] == 0


def test_relays_asked_at_each_scrape(memory_cache: Cache) -> None:
    running: dict[str, OutboxRelay] = {}  # the adapter starts its relays after the collector
    asked: list[int] = []

    def relays() -> dict[str, OutboxRelay]:
        asked.append(1)
        return dict(running)

    collector = CacheCollector(memory_cache, relays=relays)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    assert asked == []  # registering describes, without asking
    assert {family.name for family in collector.describe()} >= {
        "cacheplug_outbox_backlog_rows",
        "cacheplug_outbox_oldest_row_age_seconds",
        "cacheplug_outbox_relayed",
    }
    scrape = Scrape(collector)
    assert outbox_samples(scrape) == {}
    running["default"] = outbox_relay(ListOutbox({"a": WRITTEN_AT}))
    samples = outbox_samples(scrape)
    assert samples[("cacheplug_outbox_backlog_rows", "default")] == 1
    assert samples[("cacheplug_outbox_oldest_row_age_seconds", "default")] >= (
        1_700_000_000 - WRITTEN_AT
    )
    assert len(asked) == 2


def test_an_outbox_that_cannot_be_read_is_left_out_not_raised(
    memory_cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    down = ListOutbox({"a": WRITTEN_AT})
    down.down = True
    relays = {"down": outbox_relay(down), "up": outbox_relay(ListOutbox({"b": WRITTEN_AT}))}
    with caplog.at_level(logging.DEBUG, logger="cacheplug"):
        samples = outbox_samples(Scrape(CacheCollector(memory_cache, relays=relays)))
    assert ("cacheplug_outbox_backlog_rows", "down") not in samples
    assert ("cacheplug_outbox_oldest_row_age_seconds", "down") not in samples
    assert samples[("cacheplug_outbox_relayed_total", "down")] == 0
    assert samples[("cacheplug_outbox_backlog_rows", "up")] == 1
    assert "outbox backlog of 'down' not read" in caplog.text
    assert "hunter2" not in caplog.text
