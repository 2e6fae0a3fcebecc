"""What the transactional outbox costs a Django write: ``Model.save()`` with ``OUTBOX`` on and
off, on SQLite (a file) and on PostgreSQL (a throwaway server with ``fsync`` on, as in
production), rounds interleaved in one process, printed as ratios to the write without it.

    python benchmarks/outbox_cost.py [--rounds 15] [--ops 200]

Two writes: an autocommitted ``save()`` (the outbox row goes in first, in a commit of its
own) and a ``save()`` inside ``transaction.atomic()`` (the row goes in the same transaction).
Goal: at most 1.10x on PostgreSQL. The floor row shows what one more statement in the
transaction costs, whatever it is (``SELECT 1``): any outbox row written inside the
transaction costs at least that.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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
    from shop.models import Product

    hammer = Product.objects.create(name="hammer", price=0)

    def autocommitted() -> None:
        hammer.price += 1
        hammer.save()

    def in_atomic() -> None:
        with transaction.atomic():
            hammer.price += 1
            hammer.save()

    def in_atomic_plus_one() -> None:
        # The floor of any row written inside the transaction: one more round trip.
        with transaction.atomic():
            hammer.price += 1
            hammer.save()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")

    def timed(write: Callable[[], None], outbox: bool) -> float:
        settings.CACHEPLUG = {"NAMESPACE": "outbox-cost", "OUTBOX": outbox}
        started = time.perf_counter()
        for _ in range(ops):
            write()
        return (time.perf_counter() - started) / ops

    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, write in (("autocommit", autocommitted), ("atomic", in_atomic)):
            for outbox in (False, True):
                times.setdefault(f"{name} {'on' if outbox else 'off'}", []).append(
                    timed(write, outbox)
                )
        times.setdefault("atomic + SELECT 1 off", []).append(timed(in_atomic_plus_one, False))
    return times


def report(label: str, times: dict[str, list[float]]) -> None:
    print(label)
    for name in ("autocommit", "atomic"):
        off, on = times[f"{name} off"], times[f"{name} on"]
        ratio = statistics.median(b / a for a, b in zip(off, on, strict=True))
        print(
            f"  save() {name:<10} outbox off {statistics.median(off) * 1e6:8.1f} us   "
            f"on {statistics.median(on) * 1e6:8.1f} us   {ratio:.2f}x"
        )
    floor = statistics.median(
        b / a for a, b in zip(times["atomic off"], times["atomic + SELECT 1 off"], strict=True)
    )
    print(f"  floor: save() in atomic() plus one SELECT 1 (no outbox)            {floor:.2f}x")


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
            from django.db import connections

            from cacheplug_django import _state

            for relay in _state._relays.values():  # before the server goes
                relay.stop()
            connections.close_all()


if __name__ == "__main__":
    main()
