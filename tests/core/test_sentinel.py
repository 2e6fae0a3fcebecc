"""Redis Sentinel: the store follows the master through a failover, without a restart, and
invalidations reach the new master."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from cacheplug import Cache, RedisStore
from cacheplug.testing.conformance import StoreConformance
from cacheplug.testing.sentinel import SentinelSetup

SECRET = "sentinel-secret"


@pytest.fixture(scope="module")
def sentinel_setup() -> Iterator[SentinelSetup]:
    with SentinelSetup() as setup:
        yield setup


class TestSentinelStoreConformance(StoreConformance):
    @pytest.fixture
    def store(self, sentinel_setup: SentinelSetup) -> Iterator[RedisStore]:
        store = RedisStore(sentinel_setup.url)
        store.client.flushdb()
        yield store
        store.close()


def test_a_failover_needs_no_restart_and_loses_no_invalidation(
    sentinel_setup: SentinelSetup,
) -> None:
    cache = Cache(sentinel_setup.url, namespace="sentinel", secret=SECRET)
    writer = Cache(sentinel_setup.url, namespace="sentinel", secret=SECRET)
    errors: list[BaseException] = []
    values: list[str] = []
    stop = threading.Event()

    def traffic(worker: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                values.append(cache.get_or_load(f"w{worker}:{i % 20}", lambda: "loaded", ttl=60))
                cache.set(f"w{worker}:set", i, ttl=60)
            except BaseException as exc:  # anything reaching the caller is a failure
                errors.append(exc)

    try:
        assert cache.get_or_load("product:42", lambda: "v1", ttl=600, tags="p42") == "v1"
        workers = [threading.Thread(target=traffic, args=(n,)) for n in range(4)]
        for thread in workers:
            thread.start()
        old_master = sentinel_setup.master_port()
        new_master = sentinel_setup.failover()
        assert new_master != old_master
        stop.set()
        for thread in workers:
            thread.join()
        # After the failover, invalidations from a cache created before it reach the new master.
        writer.invalidate_tags("p42")
        writer.invalidate("w0:set")
        assert writer.pending_invalidations() == []
        assert errors == []
        assert len(values) > 0
        with redis.Redis(port=new_master) as direct:
            assert direct.get(cache.store_key("w0:set")) is None
        assert cache.get_or_load("product:42", lambda: "v2", ttl=600, tags="p42") == "v2"
        assert cache.get("product:42") == "v2"
    finally:
        stop.set()
        cache.close()
        writer.close()


def test_sentinel_urls_are_checked() -> None:
    from cacheplug import ConfigurationError

    for url in (
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel:///mymaster",
        "redis+sentinel://127.0.0.1:x/mymaster",
        "redis+sentinel://127.0.0.1:26379/mymaster/zero",
        "redis+sentinel://127.0.0.1:26379/mymaster/0?colour=blue",
    ):
        with pytest.raises(ConfigurationError):
            RedisStore(url)
