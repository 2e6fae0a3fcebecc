"""The Django side of the outbox (its table, made by the migration, and the relay's queries);
the hooks that fill it are tested with them."""

from __future__ import annotations

import threading

import pytest

from cacheplug import Cache
from cacheplug.integration import (
    OutboxBacklog,
    OutboxRelay,
    OutboxRow,
    landed_invalidation,
    outbox_write,
)
from cacheplug_django.models import OutboxEntry
from cacheplug_django.outbox import DjangoOutbox

pytestmark = pytest.mark.django_db(transaction=True)


WRITTEN_AT = 1_000_000.0  # when the row says it was written (seconds since the epoch)
EVERY_ROW = 2_000_000.0  # due() of rows written before this: all of them


def test_the_migration_makes_the_table_and_the_relay_empties_it(redis_url: str) -> None:
    outbox = DjangoOutbox("default")
    assert outbox.exists()
    write = outbox_write(OutboxRow(), ["db:r:shop_product:1"])
    assert write is not None
    OutboxEntry.objects.create(id=write.id, tags=write.tags_json, created_at=WRITTEN_AT)
    assert write.id in [row_id for row_id, _ in outbox.due(EVERY_ROW, 100)]
    with Cache(redis_url, namespace="dj-outbox") as cache:
        relay = OutboxRelay(
            outbox,
            landed_invalidation(cache),
            lambda: cache.lock("outbox-relay", timeout=10, blocking=False),
        )
        assert relay.relay_once() >= 1
    assert not OutboxEntry.objects.filter(id=write.id).exists()


def test_the_backlog_counts_the_rows_waiting_and_the_oldest_ones_age(redis_url: str) -> None:
    outbox = DjangoOutbox("default")
    OutboxEntry.objects.all().delete()  # setting the test database up wrote to it
    assert outbox.waiting([]) == (0, None)
    for row_id, written_at in (
        ("older", WRITTEN_AT - 30),
        ("old", WRITTEN_AT),
        ("new", WRITTEN_AT + 30),
    ):
        OutboxEntry.objects.create(id=row_id, tags='["db:t:shop_product"]', created_at=written_at)
    assert outbox.waiting([]) == (3, WRITTEN_AT - 30)
    assert outbox.waiting(["older", "new"]) == (1, WRITTEN_AT)
    with Cache(redis_url, namespace="dj-outbox-backlog") as cache:
        relay = OutboxRelay(
            outbox,
            landed_invalidation(cache),
            lambda: cache.lock("outbox-relay", timeout=10, blocking=False),
            deletes_delivered=False,  # as on SQLite: delivered rows wait for the next write
        )
        relay.delivered("older")
        backlog = relay.backlog()
        assert backlog.rows == 2
        assert backlog.oldest_age is not None
        assert backlog.oldest_age >= 1_700_000_000 - WRITTEN_AT  # written in 1970
        assert relay.relay_once(grace=0) == 2
        assert relay.backlog() == OutboxBacklog(rows=0, oldest_age=None)
    assert list(OutboxEntry.objects.values_list("id", flat=True)) == ["older"]


def test_a_backlog_asked_from_a_thread_of_its_own_closes_the_connection_it_opened() -> None:
    # A Prometheus scrape served by prometheus_client's HTTP server runs on a new thread:
    # nothing else closes a connection opened there. (The test database is in memory, where
    # Django ignores close(): the calls are counted.)
    from django.db import connections

    OutboxEntry.objects.all().delete()  # setting the test database up wrote to it
    OutboxEntry.objects.create(id="left", tags="[]", created_at=WRITTEN_AT)
    seen: list[object] = []

    def counting_closes() -> list[int]:
        connection = connections["default"]
        closed = [0]
        close = connection.close

        def counted() -> None:
            closed[0] += 1
            close()

        connection.close = counted  # type: ignore[method-assign]
        return closed

    def scrape() -> None:
        closed = counting_closes()
        seen.append(DjangoOutbox("default").waiting([]))
        seen.append(closed[0])

    thread = threading.Thread(target=scrape)
    thread.start()
    thread.join()
    assert seen == [(1, WRITTEN_AT), 1]
    # A connection already open (a request's) is left open.
    closed = counting_closes()
    try:
        assert DjangoOutbox("default").waiting([]) == (1, WRITTEN_AT)
        assert closed == [0]
    finally:
        del connections["default"].close
