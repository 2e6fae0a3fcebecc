"""The Django side of the outbox (its table, made by the migration, and the relay's queries);
the hooks that fill it are tested with them."""

from __future__ import annotations

import pytest

from cacheplug import Cache
from cacheplug.integration import OutboxRelay, OutboxRow, landed_invalidation, outbox_write
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
