"""The Debezium consumer on a real Redis: events written as Debezium Server's Redis sink writes
them reach cached entries tagged as the ORM hooks tag rows; entries are acknowledged only once
the invalidations landed; a consumer that failed reads its own again, another claims what a
dead one left; Debezium's own streams are never read; what cannot be read invalidates every
table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from cacheplug import Cache
from cacheplug.integration import (
    ALL_TABLES,
    DebeziumStreamFeed,
    NotLanded,
    change_tags,
    landed_invalidation,
    stored_tags,
)

STREAM = "app.public.orders"


@pytest.fixture
def cache(redis_url: str) -> Iterator[Cache]:
    with Cache(redis_url, namespace="debezium") as made:
        yield made


def add_change(client: redis.Redis, op: str, key: Any, table: str = "orders") -> str:
    """XADD one event as the sink's default ("compact") format writes it."""
    value = {"before": None, "after": key, "source": {"schema": "public", "table": table}}
    entry_id = client.xadd(
        f"app.public.{table}", {json.dumps(key): json.dumps({**value, "op": op})}
    )
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def feed_for(
    client: redis.Redis, cache: Cache, invalidate: Any = None, **options: Any
) -> DebeziumStreamFeed:
    return DebeziumStreamFeed(
        client,
        invalidate or landed_invalidation(cache),
        streams=options.pop("streams", [STREAM]),
        consumer=options.pop("consumer", "test"),
        **options,
    )


class Row:
    """A cached value of one order row, tagged as the ORM hooks tag it, counting its loads."""

    def __init__(self, cache: Cache, pk: int) -> None:
        self.cache, self.pk, self.loads = cache, pk, 0

    def read(self) -> int:
        def load() -> int:
            self.loads += 1
            return self.loads

        tags = stored_tags([f"db:r:orders:{self.pk}"], lambda table: ())
        value: int = self.cache.get_or_load(f"order:{self.pk}", load, tags=tags)
        return value


def pending(client: redis.Redis, stream: str = STREAM) -> int:
    return int(client.xpending(stream, "cacheplug")["pending"])


def test_a_change_reaches_the_row_and_the_entry_is_acknowledged(
    redis_client: redis.Redis, cache: Cache
) -> None:
    feed = feed_for(redis_client, cache)
    assert feed.poll() == 0  # joins the group (the stream is made if missing)
    order, other = Row(cache, 42), Row(cache, 7)
    assert (order.read(), other.read()) == (1, 1)
    add_change(redis_client, "u", {"id": 42})
    assert feed.poll() == 1
    assert order.read() == 2  # reloaded
    assert other.read() == 1  # another row: untouched
    assert pending(redis_client) == 0
    assert feed.poll() == 0  # nothing read twice


def test_a_truncate_reaches_every_row_of_the_table(redis_client: redis.Redis, cache: Cache) -> None:
    feed = feed_for(redis_client, cache)
    feed.poll()
    rows = [Row(cache, pk) for pk in (1, 2)]
    assert [row.read() for row in rows] == [1, 1]
    redis_client.xadd(STREAM, {b"default": json.dumps({"source": {"table": "orders"}, "op": "t"})})
    feed.poll()
    assert [row.read() for row in rows] == [2, 2]


def test_invalidations_that_did_not_land_leave_the_entries_pending_and_read_again(
    redis_client: redis.Redis, cache: Cache
) -> None:
    landed = [False]
    real = landed_invalidation(cache)

    def invalidate(tags: list[str]) -> bool:
        return real(tags) and landed[0]  # as when the cache queued them, Redis unreachable

    feed = feed_for(redis_client, cache, invalidate)
    feed.poll()
    add_change(redis_client, "u", {"id": 42})
    with pytest.raises(NotLanded):
        feed.poll()
    assert pending(redis_client) == 1  # not acknowledged
    landed[0] = True
    # A new consumer process under the same name (a restart) reads its own pending first.
    restarted = feed_for(redis_client, cache)
    assert restarted.poll() == 1
    assert pending(redis_client) == 0


def test_another_consumer_claims_what_a_dead_one_left(
    redis_client: redis.Redis, cache: Cache
) -> None:
    dead = feed_for(redis_client, cache, lambda tags: False, consumer="dead")
    dead.poll()
    add_change(redis_client, "d", {"id": 9})
    with pytest.raises(Exception, match="did not land"):
        dead.poll()
    order = Row(cache, 9)
    assert order.read() == 1
    other = feed_for(redis_client, cache, consumer="other", claim_idle=0.0)
    assert other.poll() == 1  # claimed: idle past claim_idle
    assert order.read() == 2
    assert pending(redis_client) == 0


def test_patterns_find_new_tables_and_never_debeziums_own_streams(
    redis_client: redis.Redis, cache: Cache
) -> None:
    redis_client.xadd("metadata:debezium:schema_history", {"schema": "{}"})
    redis_client.xadd("__debezium-heartbeat.app", {'{"serverName":"app"}': '{"ts_ms":1}'})
    add_change(redis_client, "c", {"id": 1}, table="customers")
    feed = feed_for(redis_client, cache, streams=["app.public.*", "*debezium*"], rescan_every=0)
    customer = Row(cache, 1)
    assert feed.poll() == 1
    add_change(redis_client, "u", {"id": 5}, table="orders")  # a table seen for the first time
    order = Row(cache, 5)
    assert order.read() == 1
    assert feed.poll() == 1
    assert order.read() == 2
    assert customer.loads == 0
    for own in ("metadata:debezium:schema_history", "__debezium-heartbeat.app"):
        assert redis_client.xinfo_groups(own) == []  # never joined, never read


def test_an_entry_that_cannot_be_read_invalidates_every_table(
    redis_client: redis.Redis, cache: Cache
) -> None:
    feed = feed_for(redis_client, cache)
    feed.poll()
    order = Row(cache, 3)
    assert order.read() == 1
    redis_client.xadd(STREAM, {b'{"id": 3}': b'{"op": "u", "source": '})  # cut short
    assert feed.poll() == 1
    assert feed.unreadable == 1
    assert order.read() == 2  # its stored tags include every table's
    assert ALL_TABLES in stored_tags(["db:r:orders:3"], lambda table: ())
    assert pending(redis_client) == 0


def test_a_stream_made_again_is_joined_again(redis_client: redis.Redis, cache: Cache) -> None:
    feed = feed_for(redis_client, cache, rescan_every=0)
    feed.poll()
    redis_client.delete(STREAM)
    add_change(redis_client, "u", {"id": 4})  # made again, without the group
    order = Row(cache, 4)
    order.read()
    for _ in range(3):
        feed.poll()
    assert order.read() == 2


def test_the_lag_counts_entries_not_delivered_and_pending(
    redis_client: redis.Redis, cache: Cache
) -> None:
    feed = feed_for(redis_client, cache)
    feed.poll()
    add_change(redis_client, "u", {"id": 1})
    add_change(redis_client, "u", {"id": 2})
    [lag] = feed.lag()
    assert (lag.stream, lag.length, lag.pending) == (STREAM, 2, 0)
    assert lag.lag in (2, None)  # Redis 7 says; older servers do not
    feed.poll()
    [lag] = feed.lag()
    assert (lag.pending, lag.lag in (0, None)) == (0, True)


def test_the_default_tags_are_the_orm_hooks(redis_client: redis.Redis) -> None:
    assert change_tags("orders", ("42",)) == ["db:t:orders", "db:r:orders:42"]
