"""How the L1 hears the invalidation bus on Redis.

A subscription that redis-py reconnected on its own (its retry) may have missed messages:
the L1 is emptied then, as when the bus thread resubscribes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Final

import pytest
import redis

from cacheplug import Cache, LocalTier, RedisStore

SECRET: Final = "l1-bus-secret"
NAMESPACE: Final = "l1bus"
WAIT: Final = 10.0
"""Seconds a bounded wait may take before the test gives up (never reached when it passes)."""


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
