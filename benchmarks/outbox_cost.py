"""What the transactional outbox costs a Django write: ``Model.save()`` with ``OUTBOX`` on and
off, on SQLite (a file) and on PostgreSQL (a throwaway server with ``fsync`` on, as in
production), rounds interleaved in one process, printed as ratios to the write without it.

    python benchmarks/outbox_cost.py [--rounds 15] [--ops 200]

Three writes: an autocommitted ``save()``, a ``save()`` inside ``transaction.atomic()``, and
a view's transaction (``select_for_update()``, a new ``Review``, the product saved). On
PostgreSQL the outbox row goes in with the first write, in a ``WITH`` of that statement (no
round trip more); on SQLite (no ``INSERT`` in a ``WITH``) it is a statement of its own, and an
autocommitted write's row is a commit of its own. Goal: at most 1.10x on PostgreSQL. The floor
rows are the cheapest row there can be, written the same way with the ``UPDATE`` of an
autocommitted and of an atomic ``save()``, outbox off and no cacheplug code on the way: a bare
``INSERT`` (no key, no index), and the cheapest row an outbox can work with (a random ``bigint``
key to delete it by, the tags, the time; no index more).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "django"))  # the test shop's models


def configure(database: dict[str, str]) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="outbox-cost",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "cacheplug_django",
            "shop",
        ],
        DATABASES={"default": database},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        CACHEPLUG={"NAMESPACE": "outbox-cost"},  # the embedded store: the database's cost only
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


def measure(rounds: int, ops: int) -> dict[str, list[float]]:
    from django.conf import settings
    from django.db import connection, transaction
    from shop.models import Product, Review

    hammer = Product.objects.create(name="hammer", price=0)
    bare_table, keyed_table = "outbox_cost_bare", "outbox_cost_keyed"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {bare_table} (id varchar(32), tags text)")
        cursor.execute(
            f"CREATE TABLE {keyed_table} (id bigint PRIMARY KEY, tags text, created_at float)"
        )

    def autocommitted() -> None:
        hammer.price += 1
        hammer.save()

    def in_atomic() -> None:
        with transaction.atomic():
            hammer.price += 1
            hammer.save()

    def review() -> None:
        # A view's transaction: read the product (locked), add a review, update the product.
        with transaction.atomic():
            product = Product.objects.select_for_update().get(pk=hammer.pk)
            Review.objects.create(product=product, text="sturdy")
            product.price += 1
            product.save()

    def with_bare_row(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        # The floor of any row written with the statement (no extra round trip): a bare
        # INSERT, into a table without key or index, folded into the UPDATE as the outbox's is.
        if sql.startswith("UPDATE") and connection.vendor == "postgresql":
            sql = f"WITH bare AS (INSERT INTO {bare_table} VALUES (%s, %s)) {sql}"
            params = ["0" * 32, "[]", *params]
        elif sql.startswith("UPDATE"):  # SQLite has no INSERT in a WITH: a statement more
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {bare_table} VALUES (%s, %s)", ["0" * 32, "[]"])
        return execute(sql, params, many, context)

    def with_keyed_row(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        # The cheapest row an outbox can use: a key to delete it by, the tags, the time.
        row = [random.getrandbits(63), '["db:a:shop_product", "db:t:shop_product"]', time.time()]
        if sql.startswith("UPDATE") and connection.vendor == "postgresql":
            sql = f"WITH keyed AS (INSERT INTO {keyed_table} VALUES (%s, %s, %s)) {sql}"
            params = [*row, *params]
        elif sql.startswith("UPDATE"):
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {keyed_table} VALUES (%s, %s, %s)", row)
        return execute(sql, params, many, context)

    def keyed_autocommitted() -> None:
        with connection.execute_wrapper(with_keyed_row):
            autocommitted()

    def bare_in_atomic() -> None:
        with connection.execute_wrapper(with_bare_row):
            in_atomic()

    def bare_autocommitted() -> None:
        with connection.execute_wrapper(with_bare_row):
            autocommitted()

    def timed(write: Callable[[], None], outbox: bool) -> float:
        settings.CACHEPLUG = {"NAMESPACE": "outbox-cost", "OUTBOX": outbox}
        started = time.perf_counter()
        for _ in range(ops):
            write()
        return (time.perf_counter() - started) / ops

    times: dict[str, list[float]] = {}
    writes = (("autocommit", autocommitted), ("atomic", in_atomic), ("review", review))
    for _ in range(rounds):
        for name, write in writes:
            for outbox in (False, True):
                times.setdefault(f"{name} {'on' if outbox else 'off'}", []).append(
                    timed(write, outbox)
                )
        times.setdefault("atomic bare", []).append(timed(bare_in_atomic, False))
        times.setdefault("autocommit bare", []).append(timed(bare_autocommitted, False))
        times.setdefault("autocommit keyed", []).append(timed(keyed_autocommitted, False))
        with connection.cursor() as cursor:  # as a relay would: the rows do not pile up
            cursor.execute(f"DELETE FROM {bare_table}")
            cursor.execute(f"DELETE FROM {keyed_table}")
    return times


LABELS = {
    "autocommit": "save(), autocommitted",
    "atomic": "save() in atomic()",
    "review": "a view's transaction",
}


def ratio(times: dict[str, list[float]], base: str, other: str) -> float:
    return statistics.median(b / a for a, b in zip(times[base], times[other], strict=True))


def report(label: str, times: dict[str, list[float]]) -> None:
    print(label)
    for name, title in LABELS.items():
        off, on = times[f"{name} off"], times[f"{name} on"]
        on_ratio = ratio(times, f"{name} off", f"{name} on")
        print(
            f"  {title:<24} outbox off {statistics.median(off) * 1e6:8.1f} us   "
            f"on {statistics.median(on) * 1e6:8.1f} us   {on_ratio:.2f}x"
        )
    for name, title in (("autocommit", "save(), autocommitted"), ("atomic", "save() in atomic()")):
        print(
            f"  floor: {title}, writing a bare row with its UPDATE (no outbox)"
            f"   {ratio(times, f'{name} off', f'{name} bare'):.2f}x"
        )
    print(
        "  floor: save(), autocommitted, writing a keyed row (key, tags, time) with its UPDATE"
        f"   {ratio(times, 'autocommit off', 'autocommit keyed'):.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default=None)
    args = parser.parse_args()
    if args.database is None:  # each in a process of its own (Django is configured once)
        import subprocess

        for database in ("sqlite", "postgresql"):
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--database",
                    database,
                    "--rounds",
                    str(args.rounds),
                    "--ops",
                    str(args.ops),
                ],
                check=True,
            )
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.database == "sqlite":
            configure({"ENGINE": "django.db.backends.sqlite3", "NAME": f"{tmp}/app.sqlite3"})
            report("SQLite (a file)", measure(args.rounds, args.ops))
            stop_relays()  # before the database file goes with the folder
            return
        from cacheplug.testing import PostgresServer

        with PostgresServer(settings={"fsync": "on", "synchronous_commit": "on"}) as server:
            configure(
                {
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": "postgres",
                    "USER": "postgres",
                    "HOST": "127.0.0.1",
                    "PORT": str(server.port),
                }
            )
            report("PostgreSQL 15 (fsync on)", measure(args.rounds, args.ops))
            stop_relays()  # before the server goes


def stop_relays() -> None:
    from django.conf import settings
    from django.db import connections

    from cacheplug_django import outbox_relays

    settings.CACHEPLUG = {"NAMESPACE": "outbox-cost", "OUTBOX": True}  # they are listed then
    for relay in outbox_relays().values():
        relay.stop()
    connections.close_all()


if __name__ == "__main__":
    main()
