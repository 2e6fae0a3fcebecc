"""A statement the SQL reader cannot classify as a read (``CALL``, ``DO``, ``EXECUTE``, ...)
may have written anything: it invalidates every entry that depends on a table, the cached
pages tagged with one row included. Reads and transaction control invalidate nothing, and
``CACHEPLUG["UNKNOWN_SQL"] = "ignore"`` narrows it to nothing.

SQLite has neither stored procedures nor ``SHOW``: an execute wrapper inside cacheplug's
(installed after it) hands SQLite what such a statement would do, so cacheplug's hook sees
the statement the app sent, and the rows change as the procedure would change them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from shop.models import Product

from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)

STANDS_FOR = {
    "CALL discount_everything()": "UPDATE shop_product SET price = price - 1",
    "SHOW search_path": "SELECT 'public'",
    "SET search_path TO public": "SELECT 1",
    "EXPLAIN ANALYZE SELECT * FROM shop_product": "SELECT * FROM shop_product",
}


@contextmanager
def other_databases_statements() -> Iterator[None]:
    def run(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        return execute(STANDS_FOR.get(sql, sql), params, many, context)

    with connection.execute_wrapper(run):
        yield


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def cached(cache: DjangoCache, client: Client) -> int:
    """A product, its page (tagged with its row) and the catalog (tagged with the table)
    cached; its key."""
    hammer = Product.objects.create(name="hammer", price=10)
    for url in ("/catalog/", f"/products/{hammer.pk}/"):
        assert page(client, url) == "hammer=10[]"
    return hammer.pk


def test_a_statement_that_cannot_be_classified_invalidates_every_table(
    cached: int, client: Client
) -> None:
    with other_databases_statements(), connection.cursor() as cursor:
        cursor.execute("CALL discount_everything()")
    assert page(client, f"/products/{cached}/") == "hammer=9[]"
    assert page(client, "/catalog/") == "hammer=9[]"


def test_reads_and_transaction_control_invalidate_nothing(
    cached: int, client: Client, cache: DjangoCache
) -> None:
    hits = cache.stats().hits
    with other_databases_statements(), connection.cursor() as cursor:
        for sql in (
            "SELECT count(*) FROM shop_product",
            "EXPLAIN QUERY PLAN UPDATE shop_product SET price = 0",
            "EXPLAIN ANALYZE SELECT * FROM shop_product",
            "SAVEPOINT s1",
            "RELEASE SAVEPOINT s1",
            "BEGIN",
            "COMMIT",
            "SET search_path TO public",
            "SHOW search_path",
            "PRAGMA foreign_keys",
        ):
            cursor.execute(sql)
    assert page(client, f"/products/{cached}/") == "hammer=10[]"
    assert page(client, "/catalog/") == "hammer=10[]"
    assert cache.stats().hits == hits + 2  # both served from the cache


def test_unknown_sql_ignore_invalidates_nothing(
    settings: Any, cache: DjangoCache, client: Client
) -> None:
    settings.CACHEPLUG = {**settings.CACHEPLUG, "UNKNOWN_SQL": "ignore"}
    hammer = Product.objects.create(name="hammer", price=10)
    assert page(client, f"/products/{hammer.pk}/") == "hammer=10[]"
    with other_databases_statements(), connection.cursor() as cursor:
        cursor.execute("CALL discount_everything()")
    assert Product.objects.get(pk=hammer.pk).price == 9
    assert page(client, f"/products/{hammer.pk}/") == "hammer=10[]"  # as told: left alone
