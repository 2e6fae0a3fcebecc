"""What the ORM hooks put in the outbox: a row in each writing transaction, committed or
rolled back with it, handed to the relay once its invalidation landed."""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from shop.models import Product

from cacheplug_django import _state
from cacheplug_django._cache import DjangoCache
from cacheplug_django.models import OutboxEntry

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_outbox() -> None:
    """Start from an empty table (setting the test database up wrote to it too)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM cacheplug_outbox")


def outbox_rows() -> list[list[str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tags FROM cacheplug_outbox ORDER BY created_at")
        return [json.loads(tags) for (tags,) in cursor.fetchall()]


def test_a_transaction_writes_one_row_with_the_tables_it_wrote(cache: DjangoCache) -> None:
    with transaction.atomic():
        hammer = Product.objects.create(name="hammer", price=10)
        hammer.price = 11
        hammer.save()
        rows = outbox_rows()  # inside the transaction: it is there already
    assert len(rows) == 1
    assert "db:t:shop_product" in rows[0]
    assert "db:a:shop_product" in rows[0]


def test_a_rolled_back_transaction_leaves_no_row(cache: DjangoCache) -> None:
    def write_then_fail() -> None:
        with transaction.atomic():
            Product.objects.create(name="hammer", price=10)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert outbox_rows() == []


def test_an_autocommitted_write_commits_with_its_row_and_the_row_goes_once_delivered(
    cache: DjangoCache,
) -> None:
    Product.objects.create(name="hammer", price=10)  # autocommit: wrapped with its row
    relay = _state._relays.get("default")
    assert relay is not None
    relay.stop()  # deletes the rows whose invalidation landed
    assert OutboxEntry.objects.count() == 0


def test_the_outbox_can_be_turned_off(cache: DjangoCache, settings: object) -> None:
    settings.CACHEPLUG = {**settings.CACHEPLUG, "OUTBOX": False}  # type: ignore[attr-defined]
    with transaction.atomic():
        Product.objects.create(name="hammer", price=10)
        assert outbox_rows() == []
