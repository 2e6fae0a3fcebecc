"""``manage.py cacheplug_cdc`` on a real, throwaway PostgreSQL and the session's Redis: a
write made outside the app (as psql would) reaches a cached function and a cached page of the
app; a write made while the consumer was SIGKILLed is seen once it runs again; SIGTERM exits
0; ``--once`` catches up and exits; ``--drop-slot`` removes the slot; the stats show its lag;
settings errors; a TRUNCATE, a trigger's write and a stored procedure's write made outside the
app reach it within the 2 s issue #18 allows. The consumer runs as a process of its own
(``python -m django``, settings ``cdc_settings``); the app's reads are made here. No timing
assertions: deadlines only."""

from __future__ import annotations

import io
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cdc_processes import Consumer, drop_slot, run, slots, wait_for
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from shop.models import Category, Product

from cacheplug.integration import SlotLag, row_tag, stats_report, table_tag
from cacheplug.testing import PostgresServer
from cacheplug_django import cache, cache_view, instance_tag
from cacheplug_django.cdc import tags_for

HERE = Path(__file__).resolve().parent
PASSWORD = "pw-never-printed-7f3a"
ISSUE_DEADLINE = 2.0  # seconds: issue #18's bound from an outside write to the app's fresh read
RESTART_DEADLINE = 8.0  # seconds: its bound from a killed consumer's restart to the fresh read
_names = itertools.count()
_dsn: list[str] = []


def _read_price(pk: int) -> str:
    with psycopg.connect(_dsn[0], autocommit=True) as conn:
        row = conn.execute("SELECT name, price FROM shop_product WHERE id = %s", (pk,)).fetchone()
    return "missing" if row is None else f"{row[0]}={row[1]}"


def cached_price(pk: int) -> str:
    """A cached function of the app, tagged with the product's row, as any view would."""
    return str(
        cache.get_or_load(f"price:{pk}", lambda: _read_price(pk), tags=[instance_tag(Product, pk)])
    )


def _rows(statement: str, *params: object) -> str:
    with psycopg.connect(_dsn[0], autocommit=True) as conn:
        rows = conn.execute(statement, params).fetchall()
    return ";".join(f"{row[0]}={row[1]}" for row in rows)


def cached_catalog() -> str:
    """A cached function of the app depending on the whole product table."""
    return str(
        cache.get_or_load(
            "catalog",
            lambda: _rows("SELECT name, price FROM shop_product ORDER BY id"),
            depends_on=[Product],
        )
    )


def cached_category(pk: int) -> str:
    """A cached function of the app, tagged with a category's row."""
    return str(
        cache.get_or_load(
            f"category:{pk}",
            lambda: _rows("SELECT id, name FROM shop_category WHERE id = %s", pk) or "missing",
            tags=[instance_tag(Category, pk)],
        )
    )


def cached_categories() -> str:
    """A cached function of the app depending on the whole category table."""
    return str(
        cache.get_or_load(
            "categories",
            lambda: _rows("SELECT id, name FROM shop_category ORDER BY id"),
            depends_on=[Category],
        )
    )


@cache_view(ttl=300, tags=lambda request, pk: [instance_tag(Product, pk)])
def product_page(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(_read_price(pk))


urlpatterns = [path("cdc/products/<int:pk>/", product_page)]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        _dsn[:] = [server.dsn]
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE shop_product (id bigserial PRIMARY KEY, name varchar(100),"
                " price integer NOT NULL DEFAULT 0)"
            )
            conn.execute("CREATE TABLE shop_category (id bigserial PRIMARY KEY, name varchar(100))")
        yield server


@pytest.fixture
def app(postgres: PostgresServer, redis_url: str, settings: Any) -> Iterator[dict[str, str]]:
    """This process configured as the app (its cache on the session's Redis, a namespace of
    the test's own), one product row, and the consumer's environment."""
    namespace = f"cdc-django-{next(_names)}"
    slot = f"django_{next(_names)}"
    settings.CACHEPLUG = {"NAMESPACE": namespace, "STORE": redis_url}
    settings.ROOT_URLCONF = __name__
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE shop_product")
        conn.execute("INSERT INTO shop_product (id, name, price) VALUES (1, 'teapot', 10)")
    env = {
        "DJANGO_SETTINGS_MODULE": "cdc_settings",
        "PYTHONPATH": f"{HERE}:{HERE.parent.parent}",
        "CDC_TEST_PG_PORT": str(postgres.port),
        "CDC_TEST_PASSWORD": PASSWORD,
        "CDC_TEST_NAMESPACE": namespace,
        "CDC_TEST_REDIS": redis_url,
        "CDC_TEST_SLOT": slot,
    }
    yield env
    cache.reset()
    drop_slot(postgres.dsn, slot)


def manage(*args: str) -> list[str]:
    return [sys.executable, "-m", "django", *args]


def psql(postgres: PostgresServer, statement: str) -> None:
    """A write from outside the app: another client, its own connection and transaction."""
    with psycopg.connect(postgres.dsn) as conn:
        conn.execute(statement)


def page() -> str:
    return Client().get("/cdc/products/1/").content.decode()


def test_a_write_from_outside_reaches_a_cached_function_and_page(
    postgres: PostgresServer, app: dict[str, str]
) -> None:
    consumer = Consumer(manage("cacheplug_cdc"), app).start()
    try:
        assert (cached_price(1), page()) == ("teapot=10", "teapot=10")
        assert (cached_price(1), page()) == ("teapot=10", "teapot=10")  # hits
        psql(postgres, "UPDATE shop_product SET price = 12 WHERE id = 1")
        wait_for(
            lambda: cached_price(1) == "teapot=12", ISSUE_DEADLINE, "the cached function's reload"
        )
        wait_for(lambda: page() == "teapot=12", ISSUE_DEADLINE, "the cached page's reload")
        assert consumer.terminate() == 0
    finally:
        consumer.close()
    assert "consuming the replication slot" in consumer.output
    assert "stopped: " in consumer.output
    assert f"database 'pg' (127.0.0.1:{postgres.port}/postgres, user postgres)" in consumer.output
    assert PASSWORD not in consumer.output


def test_a_write_made_while_the_consumer_was_killed_is_seen_after_its_restart(
    postgres: PostgresServer, app: dict[str, str]
) -> None:
    consumer = Consumer(manage("cacheplug_cdc"), app).start()
    assert (cached_price(1), page()) == ("teapot=10", "teapot=10")
    consumer.kill()
    psql(postgres, "UPDATE shop_product SET name = 'kettle' WHERE id = 1")
    assert cached_price(1) == "teapot=10"  # nobody invalidated it: the slot keeps the change
    again = Consumer(manage("cacheplug_cdc"), app).start()
    try:
        wait_for(
            lambda: cached_price(1) == "kettle=10",
            RESTART_DEADLINE,
            "the write made while it was dead",
        )
        wait_for(lambda: page() == "kettle=10", RESTART_DEADLINE, "the page's reload")
        assert again.terminate() == 0
    finally:
        again.close()


def test_once_catches_up_and_drop_slot_removes_the_slot(
    postgres: PostgresServer, app: dict[str, str]
) -> None:
    slot = app["CDC_TEST_SLOT"]
    code, output = run(manage("cacheplug_cdc", "--once"), app)  # creates the slot
    assert (code, slot in slots(postgres.dsn)) == (0, True), output
    assert cached_price(1) == "teapot=10"
    psql(postgres, "UPDATE shop_product SET price = 20 WHERE id = 1")
    code, output = run(manage("cacheplug_cdc", "--once"), app)
    assert code == 0, output
    assert "caught up: 1 change(s) invalidated" in output
    assert cached_price(1) == "teapot=20"
    code, output = run(manage("cacheplug_stats"), app)
    assert code == 0, output
    assert f"cdc slot    '{slot}': " in output
    assert "no consumer is reading it" in output
    code, output = run(manage("cacheplug_cdc", "--drop-slot"), app)
    assert code == 0, output
    assert f"dropped the replication slot '{slot}'" in output
    assert slot not in slots(postgres.dsn)
    code, output = run(manage("cacheplug_cdc", "--drop-slot"), app)
    assert code == 1
    assert "there is no replication slot" in output
    assert PASSWORD not in output


def test_a_truncate_from_outside_reaches_what_depends_on_the_table_and_its_rows(
    postgres: PostgresServer, app: dict[str, str]
) -> None:
    consumer = Consumer(manage("cacheplug_cdc"), app).start()
    try:
        before = (cached_catalog(), cached_price(1), page())
        assert before == ("teapot=10", "teapot=10", "teapot=10")
        assert (cached_catalog(), cached_price(1), page()) == before  # hits
        psql(postgres, "TRUNCATE shop_product")
        wait_for(lambda: cached_catalog() == "", ISSUE_DEADLINE, "the table's reload")
        wait_for(lambda: cached_price(1) == "missing", ISSUE_DEADLINE, "the row's reload")
        wait_for(lambda: page() == "missing", ISSUE_DEADLINE, "the page's reload")
        assert consumer.terminate() == 0
    finally:
        consumer.close()


@pytest.fixture
def category_trigger(postgres: PostgresServer) -> Iterator[None]:
    """Category 1 and a trigger labelling it with the last price a product was given: a write
    to ``shop_category`` that no client makes, the server does."""
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE shop_category")
        conn.execute("INSERT INTO shop_category (id, name) VALUES (1, 'pots'), (2, 'cups')")
        conn.execute(
            "CREATE FUNCTION label_category() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN UPDATE shop_category SET name = 'pots from ' || NEW.price WHERE id = 1;"
            " RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER label_category AFTER UPDATE OF price ON shop_product"
            " FOR EACH ROW EXECUTE FUNCTION label_category()"
        )
    yield
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP TRIGGER label_category ON shop_product")
        conn.execute("DROP FUNCTION label_category()")


def test_a_write_made_by_a_trigger_reaches_what_depends_on_its_table_and_row(
    postgres: PostgresServer, app: dict[str, str], category_trigger: None
) -> None:
    consumer = Consumer(manage("cacheplug_cdc"), app).start()
    try:
        before = (cached_category(1), cached_category(2), cached_categories())
        assert before == ("1=pots", "2=cups", "1=pots;2=cups")
        assert (cached_category(1), cached_category(2), cached_categories()) == before  # hits
        psql(postgres, "UPDATE shop_product SET price = 14 WHERE id = 1")  # table A only
        wait_for(lambda: cached_category(1) == "1=pots from 14", ISSUE_DEADLINE, "the row's reload")
        wait_for(
            lambda: cached_categories() == "1=pots from 14;2=cups",
            ISSUE_DEADLINE,
            "the table's reload",
        )
        assert cached_price(1) == "teapot=14"  # never cached: read once, now
        assert consumer.terminate() == 0
    finally:
        consumer.close()


@pytest.fixture
def reprice_procedure(postgres: PostgresServer) -> Iterator[None]:
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE PROCEDURE reprice(pid bigint, new_price integer) LANGUAGE plpgsql AS $$"
            " BEGIN UPDATE shop_product SET price = new_price WHERE id = pid; END $$"
        )
    yield
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP PROCEDURE reprice(bigint, integer)")


def test_a_stored_procedures_write_reaches_a_cached_function_and_page(
    postgres: PostgresServer, app: dict[str, str], reprice_procedure: None
) -> None:
    consumer = Consumer(manage("cacheplug_cdc"), app).start()
    try:
        assert (cached_price(1), page()) == ("teapot=10", "teapot=10")
        assert (cached_price(1), page()) == ("teapot=10", "teapot=10")  # hits
        with psycopg.connect(postgres.dsn, autocommit=True) as conn:  # as psql runs it
            conn.execute("CALL reprice(1, 30)")
        wait_for(lambda: cached_price(1) == "teapot=30", ISSUE_DEADLINE, "the function's reload")
        wait_for(lambda: page() == "teapot=30", ISSUE_DEADLINE, "the page's reload")
        assert consumer.terminate() == 0
    finally:
        consumer.close()


def test_the_stats_warn_about_a_slot_retaining_too_much_wal(settings: Any) -> None:
    class Feed:
        slot = "cacheplug"
        warn_lag_bytes = 1 << 30

        def lag(self) -> SlotLag:
            return SlotLag("cacheplug", 3 << 30, 3 << 30, False, "extended")

    settings.CACHEPLUG = {"NAMESPACE": "cdc-stats"}
    try:
        report = stats_report(cache.core, change_feed=Feed())
    finally:
        cache.reset()
    assert "cdc slot    'cacheplug': 3 GB of WAL retained" in report
    assert "WARNING     the slot 'cacheplug' retains 3 GB of WAL (over 1 GB)" in report
    assert "max_slot_wal_keep_size" in report


def test_a_change_is_tagged_as_the_orm_hooks_tag_the_write() -> None:
    assert list(tags_for("shop_product", ("7",))) == [
        table_tag("shop_product"),
        row_tag("shop_product", "7"),
    ]
    # Multi-table inheritance: a row of the parent is the same row of the child.
    assert row_tag("shop_restaurant", "5") in tags_for("shop_place", ("5",))
    assert list(tags_for("shop_product", None)) == ["db:t:shop_product", "db:a:shop_product"]
    assert list(tags_for("cacheplug_outbox", ("ab",))) == []


def _command(*args: str) -> str:
    out = io.StringIO()
    call_command("cacheplug_cdc", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.parametrize(
    ("cdc", "message"),
    [
        (None, "change data capture is off"),
        ({"SOURCE": "mysql"}, r"SOURCE must be 'postgresql'.*cacheplug\.E015"),
        ({"SOURCE": "postgresql", "DATABASE": "default"}, "'default'.* is not PostgreSQL"),
        ({"SOURCE": "postgresql", "DATABASE": "nope"}, "DATABASES has no alias 'nope'"),
    ],
)
def test_settings_errors_are_reported_and_exit_non_zero(
    settings: Any, cdc: Any, message: str
) -> None:
    settings.CACHEPLUG = {"NAMESPACE": "cdc-errors", "CDC": cdc}
    try:
        with pytest.raises(CommandError, match=message):
            _command()
    finally:
        cache.reset()
    checked = {str(m.id) for m in run_checks() if str(m.id).startswith("cacheplug.E")}
    assert checked == (set() if cdc is None else {"cacheplug.E015"})


def test_a_slot_name_is_checked(settings: Any) -> None:
    settings.CACHEPLUG = {"CDC": {"SOURCE": "postgresql", "SLOT": "Not-A-Slot"}}
    assert {str(m.id) for m in run_checks() if str(m.id).startswith("cacheplug.E")} == {
        "cacheplug.E015"
    }
    settings.CACHEPLUG = {"CDC": {"SOURCE": "postgresql"}}
    with pytest.raises(CommandError, match="--slot 'x-y'"):
        _command("--slot", "x-y")
