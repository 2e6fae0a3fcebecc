"""Round trips on standalone Redis: a tagged hit is one command, a tag invalidation is one
script call however many entries carry the tag.

Round trips are counted twice: on the client (every request a connection sends) and on the
server (``INFO commandstats``), so neither a pipelined extra command nor a hidden second
request can slip through.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from cacheplug import Cache, RedisStore
from cacheplug.testing.round_trips import RoundTrips

SECRET = "round-trip-secret"


def _server_calls(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


def _executed(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Commands the server ran between two snapshots (the second INFO itself excluded)."""
    ran = {name: calls - before.get(name, 0) for name, calls in after.items()}
    ran["info"] -= 1
    return {name: calls for name, calls in ran.items() if calls}


@pytest.fixture
def counted_store(redis_url: str) -> RedisStore:
    return RedisStore(redis_url)


@pytest.fixture
def trips(counted_store: RedisStore) -> RoundTrips:
    return RoundTrips(counted_store)


@pytest.fixture
def counted(counted_store: RedisStore, trips: RoundTrips) -> Iterator[Cache]:
    cache = Cache(counted_store, namespace="rt", secret=SECRET)
    yield cache
    cache.close()


def test_a_hit_with_three_tags_is_one_round_trip(
    counted: Cache, trips: RoundTrips, redis_client: redis.Redis
) -> None:
    tags = ["product:42", "catalog", "vendor:7"]
    assert counted.get_or_load("p42", lambda: {"name": "lamp"}, tags=tags) == {"name": "lamp"}

    before = _server_calls(redis_client)
    sent = trips.count
    for _ in range(5):
        assert counted.get_or_load("p42", lambda: {"name": "reloaded"}, tags=tags) == {
            "name": "lamp"
        }
    assert trips.count - sent == 5
    assert _executed(before, _server_calls(redis_client)) == {"mget": 5}


def test_an_untagged_hit_and_get_are_one_round_trip(
    counted: Cache, trips: RoundTrips, redis_client: redis.Redis
) -> None:
    counted.set("plain", "v")
    before = _server_calls(redis_client)
    sent = trips.count
    assert counted.get("plain") == "v"
    assert counted.get_or_load("plain", lambda: "reloaded") == "v"
    assert trips.count - sent == 2
    assert _executed(before, _server_calls(redis_client)) == {"mget": 2}


def test_get_learns_an_entrys_tags_and_reads_them_with_it(
    counted: Cache, trips: RoundTrips, redis_client: redis.Redis
) -> None:
    counted.get_or_load("p1", lambda: "tagged", tags=["a", "b"])
    assert counted.get("p1") == "tagged"  # first time: the tags' versions in a second read
    sent = trips.count
    assert counted.get("p1") == "tagged"
    assert trips.count - sent == 1
    counted.invalidate_tags("b")
    assert counted.get("p1", "gone") == "gone"


@pytest.mark.parametrize("entries", [10, 5_000])
def test_invalidating_a_tag_costs_one_round_trip_whatever_the_count(
    counted: Cache, trips: RoundTrips, redis_client: redis.Redis, entries: int
) -> None:
    assert counted.set_many({f"item:{i}": i for i in range(entries)}, tags="bulk") == []
    assert counted.get_many([f"item:{i}" for i in range(0, entries, 97)]) == {
        f"item:{i}": i for i in range(0, entries, 97)
    }
    counted.invalidate_tags("warm-up")  # redis-py loads a script on its first use
    before = _server_calls(redis_client)
    sent = trips.count
    counted.invalidate_tags("bulk")
    assert trips.count - sent == 1
    ran = _executed(before, _server_calls(redis_client))
    assert ran.pop("evalsha") == 1
    assert sum(ran.values()) <= 3  # inside the script: INCR, PUBLISH (and SET for a new key)
    assert counted.get_many([f"item:{i}" for i in range(entries)]) == {}
