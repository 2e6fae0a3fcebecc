"""One process of a Django app for test_outbox_statements: ``python outbox_statements_app.py
DB REDIS_URL ACTION`` (DB as for outbox_crash_app). Prints one JSON object.

``statements`` (PostgreSQL): what each kind of write sends, and the rows the transaction holds
just before it commits. ``contention``: one thread runs transactions that read and then write
(deferred, as Django's atomic() begins them) for 4 s while the relay runs; how many failed."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from outbox_crash_app import setup


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL the default connection sends, in order."""
    from django.db import connection

    sent: list[str] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append(sql)
        return execute(sql, params, many, context)

    # Outermost: the hooks' wrapper (installed first) rewrites what reaches this one.
    connection.execute_wrappers.append(record)
    try:
        yield sent
    finally:
        connection.execute_wrappers.remove(record)


def outbox_rows() -> list[list[str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT tags FROM cacheplug_outbox ORDER BY created_at")
        return [json.loads(tags) for (tags,) in cursor.fetchall()]


def writes(sent: list[str]) -> list[str]:
    return [
        sql
        for sql in sent
        if not sql.lstrip().upper().startswith(("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK"))
    ]


def statements_report() -> dict[str, Any]:
    from django.db import IntegrityError, connection, transaction
    from shop.models import Product, Profile

    report: dict[str, Any] = {}
    Product.objects.all().delete()
    Profile.objects.create(handle="taken")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM cacheplug_outbox")

    with statements() as sent, transaction.atomic():  # INSERT ... RETURNING, then an UPDATE
        hammer = Product.objects.create(name="hammer", price=10)
        hammer.price = 11
        hammer.save()
        report["atomic"] = {"pk": hammer.pk, "writes": writes(sent), "rows": outbox_rows()}

    with statements() as sent:  # autocommitted: one statement, its row in it
        saw = Product.objects.create(name="saw", price=5)
        report["autocommit"] = {"pk": saw.pk, "writes": writes(sent)}

    with transaction.atomic():  # the first write's savepoint rolled back, then a write
        try:
            with transaction.atomic():
                Product.objects.filter(pk=hammer.pk).update(price=12)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        Product.objects.filter(pk=saw.pk).update(price=6)
        report["savepoint"] = {"rows": outbox_rows()}

    with transaction.atomic():  # a write that fails in a savepoint, then a write
        try:
            with transaction.atomic():
                Profile.objects.create(handle="taken")
        except IntegrityError:
            pass
        Product.objects.filter(pk=saw.pk).update(price=7)
        report["failed"] = {"rows": outbox_rows()}

    with transaction.atomic():  # a statement with a WITH of its own: the row on its own
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH picked AS (SELECT id FROM shop_product WHERE name = %s) "
                "UPDATE shop_product SET price = price + 1 WHERE id IN (SELECT id FROM picked)",
                ["saw"],
            )
        report["with"] = {"rows": outbox_rows()}
    return report


def contention_report() -> dict[str, Any]:
    from django.db import OperationalError, transaction
    from shop.models import Product

    hammer = Product.objects.create(name="hammer", price=0)
    failed = done = 0
    deadline = time.monotonic() + 4  # the relay runs every second
    while time.monotonic() < deadline:
        try:
            with transaction.atomic():
                product = Product.objects.get(pk=hammer.pk)  # read (a shared lock on SQLite)
                product.price += 1
                product.save()  # then write
            done += 1
        except OperationalError as error:
            failed += 1
            last = str(error)
    report: dict[str, Any] = {"done": done, "failed": failed}
    if failed:
        report["error"] = last
    return report


def main() -> None:
    database, redis_url, action = sys.argv[1:4]
    setup(database, redis_url)
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    report = statements_report() if action == "statements" else contention_report()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
