"""The outbox row in the statements Django sends, on a real PostgreSQL and a SQLite file: on
PostgreSQL it goes in a ``WITH`` of the transaction's first write (no statement of its own,
``INSERT ... RETURNING`` still returns), and is there after a savepoint rolled back or a
statement failed; on SQLite, the relay never writes while the app reads then writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cacheplug.testing import PostgresServer, RedisServer

APP = Path(__file__).with_name("outbox_statements_app.py")
TABLES = {"db:a:shop_product", "db:t:shop_product"}


def run(database: str, redis_url: str, action: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(APP), database, redis_url, action],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return report


def test_on_postgresql_the_row_goes_with_the_first_write(
    postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    database = postgres_server.fresh_database("outbox_statements")
    report = run(database, redis_server.url, "statements")

    atomic = report["atomic"]
    assert isinstance(atomic["pk"], int)  # INSERT ... RETURNING returned through the WITH
    assert len(atomic["writes"]) == 2  # the INSERT and the UPDATE: no statement more
    assert atomic["writes"][0].startswith("WITH cacheplug_outbox_write AS (INSERT INTO")
    assert not atomic["writes"][1].startswith("WITH")  # the table is in the row already
    [row] = atomic["rows"]
    assert set(row) >= TABLES

    autocommit = report["autocommit"]
    assert isinstance(autocommit["pk"], int)
    assert len(autocommit["writes"]) == 1
    assert autocommit["writes"][0].startswith("WITH cacheplug_outbox_write AS (INSERT INTO")

    for case in ("savepoint", "failed", "with"):
        rows = report[case]["rows"]
        assert any(set(row) >= TABLES for row in rows), (case, rows)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_relay_never_fails_a_transaction_that_reads_then_writes(
    kind: str, postgres_server: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    database = (
        postgres_server.fresh_database("outbox_contention")
        if kind == "postgresql"
        else str(tmp_path / "app.sqlite3")
    )
    report = run(database, redis_server.url, "contention")
    assert report["done"] > 0
    assert report["failed"] == 0, report
