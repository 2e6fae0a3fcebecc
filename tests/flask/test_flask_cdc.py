"""``flask cacheplug cdc`` on a real, throwaway PostgreSQL and the session's Redis: a write
made outside the app (as psql would) reaches a cached function and a cached page of the app;
a write made while the consumer was SIGKILLed is seen once it runs again; SIGTERM exits 0;
``--once`` catches up; ``--drop-slot`` removes the slot; the stats show its lag; settings
errors; a TRUNCATE, a trigger's write and a stored procedure's write made outside the app reach
it within the 2 s issue #18 allows. The running consumer is a process of its own
(``flask --app cdc_flask_app``); the app's reads are made here. No timing assertions:
deadlines only."""

from __future__ import annotations

import itertools
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cdc_flask_app
import psycopg
import pytest
from cdc_processes import Consumer, drop_slot, slots, wait_for
from flask import Flask
from flask_shop import Category, Product, cache, db
from sqlalchemy import ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cacheplug.integration import SettingsError, row_tag, table_tag
from cacheplug.testing import PostgresServer
from cacheplug_flask import CachePlug, instance_tag
from cacheplug_flask.cdc import sqlalchemy_tags_for

HERE = Path(__file__).resolve().parent
PASSWORD = "pw-never-printed-9c1e"
ISSUE_DEADLINE = 2.0  # seconds: issue #18's bound from an outside write to the app's fresh read
RESTART_DEADLINE = 8.0  # seconds: its bound from a killed consumer's restart to the fresh read
_names = itertools.count()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


def _url(postgres: PostgresServer) -> str:
    return f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{postgres.port}/postgres"


@pytest.fixture
def app(postgres: PostgresServer, redis_url: str) -> Iterator[Flask]:
    """The app in this process (its cache on the session's Redis, a namespace and a slot of
    the test's own), one product row."""
    slot = f"flask_{next(_names)}"
    flask_app = cdc_flask_app.create_app(
        _url(postgres), redis_url, f"cdc-flask-{next(_names)}", slot
    )
    with flask_app.app_context():
        db.create_all()
        db.engine.dispose()
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE product CASCADE")
        conn.execute("INSERT INTO product (id, name, price) VALUES (1, 'teapot', 10)")
    yield flask_app
    with flask_app.app_context():
        db.engine.dispose()
    cache.close(flask_app)
    drop_slot(postgres.dsn, slot)


def env_of(app: Flask) -> dict[str, str]:
    """The consumer's environment: the same app, made from it."""
    return {
        "PYTHONPATH": f"{HERE}:{HERE.parent}:{HERE.parent.parent}",
        "CDC_TEST_DATABASE": app.config["SQLALCHEMY_DATABASE_URI"],
        "CDC_TEST_REDIS": app.config["CACHEPLUG_STORE"],
        "CDC_TEST_NAMESPACE": app.config["CACHEPLUG_NAMESPACE"],
        "CDC_TEST_SLOT": app.config["CACHEPLUG_CDC"]["slot"],
    }


def consumer(app: Flask) -> Consumer:
    flask = [sys.executable, "-m", "flask", "--app", "cdc_flask_app:create_app"]
    return Consumer([*flask, "cacheplug", "cdc"], env_of(app))


def cached_price(app: Flask, pid: int = 1) -> str:
    """A cached function of the app, tagged with the product's row."""

    def load() -> str:
        found = db.session.get(Product, pid)
        return "missing" if found is None else f"{found.name}={found.price}"

    with app.app_context():  # a session of its own each time, as a request has
        return str(cache.get_or_load(f"price:{pid}", load, tags=[instance_tag(Product, pid)]))


def cached_catalog(app: Flask) -> str:
    """A cached function of the app depending on the whole product table."""

    def load() -> str:
        found = db.session.scalars(db.select(Product).order_by(Product.id))
        return ";".join(f"{p.name}={p.price}" for p in found)

    with app.app_context():
        return str(cache.get_or_load("catalog", load, depends_on=[Product]))


def cached_category(app: Flask, cid: int) -> str:
    """A cached function of the app, tagged with a category's row."""

    def load() -> str:
        found = db.session.get(Category, cid)
        return "missing" if found is None else f"{found.id}={found.name}"

    with app.app_context():
        return str(cache.get_or_load(f"category:{cid}", load, tags=[instance_tag(Category, cid)]))


def cached_categories(app: Flask) -> str:
    """A cached function of the app depending on the whole category table."""

    def load() -> str:
        found = db.session.scalars(db.select(Category).order_by(Category.id))
        return ";".join(f"{c.id}={c.name}" for c in found)

    with app.app_context():
        return str(cache.get_or_load("categories", load, depends_on=[Category]))


def page(app: Flask) -> str:
    return app.test_client().get("/cdc/products/1").get_data(as_text=True)


def psql(postgres: PostgresServer, statement: str) -> None:
    with psycopg.connect(postgres.dsn) as conn:
        conn.execute(statement)


def cli(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["cacheplug", *args])
    return result.exit_code, result.output


def test_a_write_from_outside_reaches_a_cached_function_and_page(
    postgres: PostgresServer, app: Flask
) -> None:
    running = consumer(app).start()
    try:
        assert (cached_price(app), page(app)) == ("teapot=10", "teapot=10")
        assert (cached_price(app), page(app)) == ("teapot=10", "teapot=10")  # hits
        psql(postgres, "UPDATE product SET price = 12 WHERE id = 1")
        wait_for(
            lambda: cached_price(app) == "teapot=12", ISSUE_DEADLINE, "the cached function's reload"
        )
        wait_for(lambda: page(app) == "teapot=12", ISSUE_DEADLINE, "the cached page's reload")
        assert running.terminate() == 0
    finally:
        running.close()
    assert "stopped: " in running.output
    where = f"database 'default' (127.0.0.1:{postgres.port}/postgres, user postgres)"
    assert where in running.output
    assert PASSWORD not in running.output


def test_a_write_made_while_the_consumer_was_killed_is_seen_after_its_restart(
    postgres: PostgresServer, app: Flask
) -> None:
    first = consumer(app).start()
    assert (cached_price(app), page(app)) == ("teapot=10", "teapot=10")
    first.kill()
    psql(postgres, "UPDATE product SET name = 'kettle' WHERE id = 1")
    assert cached_price(app) == "teapot=10"  # nobody invalidated it: the slot keeps the change
    again = consumer(app).start()
    try:
        wait_for(
            lambda: cached_price(app) == "kettle=10",
            RESTART_DEADLINE,
            "the write made while it was dead",
        )
        wait_for(lambda: page(app) == "kettle=10", RESTART_DEADLINE, "the page's reload")
        assert again.terminate() == 0
    finally:
        again.close()


def test_once_catches_up_and_drop_slot_removes_the_slot(
    postgres: PostgresServer, app: Flask
) -> None:
    slot = app.config["CACHEPLUG_CDC"]["slot"]
    assert cli(app, "cdc", "--once")[0] == 0  # creates the slot
    assert slot in slots(postgres.dsn)
    assert cached_price(app) == "teapot=10"
    psql(postgres, "UPDATE product SET price = 20 WHERE id = 1")
    code, output = cli(app, "cdc", "--once")
    assert (code, "caught up: 1 change(s) invalidated" in output) == (0, True), output
    assert cached_price(app) == "teapot=20"
    code, output = cli(app, "stats")
    assert code == 0, output
    assert f"cdc slot    '{slot}': " in output
    code, output = cli(app, "stats", "--json")
    assert (code, f'"slot": "{slot}"' in output) == (0, True), output
    code, output = cli(app, "cdc", "--drop-slot")
    assert (code, f"dropped the replication slot '{slot}'" in output) == (0, True), output
    assert slot not in slots(postgres.dsn)
    code, output = cli(app, "cdc", "--drop-slot")
    assert (code, "there is no replication slot" in output) == (1, True), output
    assert PASSWORD not in output


def test_a_truncate_from_outside_reaches_what_depends_on_the_table_and_its_rows(
    postgres: PostgresServer, app: Flask
) -> None:
    running = consumer(app).start()
    try:
        before = (cached_catalog(app), cached_price(app), page(app))
        assert before == ("teapot=10", "teapot=10", "teapot=10")
        assert (cached_catalog(app), cached_price(app), page(app)) == before  # hits
        # product_categories refers to product: the WAL names both tables in one TRUNCATE.
        psql(postgres, "TRUNCATE product CASCADE")
        wait_for(lambda: cached_catalog(app) == "", ISSUE_DEADLINE, "the table's reload")
        wait_for(lambda: cached_price(app) == "missing", ISSUE_DEADLINE, "the row's reload")
        wait_for(lambda: page(app) == "missing", ISSUE_DEADLINE, "the page's reload")
        assert running.terminate() == 0
    finally:
        running.close()


@pytest.fixture
def category_trigger(postgres: PostgresServer, app: Flask) -> Iterator[None]:
    """Category 1 and a trigger labelling it with the last price a product was given: a write
    to ``category`` that no client makes, the server does."""
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE category CASCADE")
        conn.execute("INSERT INTO category (id, name) VALUES (1, 'pots'), (2, 'cups')")
        conn.execute(
            "CREATE FUNCTION label_category() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN UPDATE category SET name = 'pots from ' || NEW.price WHERE id = 1;"
            " RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER label_category AFTER UPDATE OF price ON product"
            " FOR EACH ROW EXECUTE FUNCTION label_category()"
        )
    yield
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP TRIGGER label_category ON product")
        conn.execute("DROP FUNCTION label_category()")


def test_a_write_made_by_a_trigger_reaches_what_depends_on_its_table_and_row(
    postgres: PostgresServer, app: Flask, category_trigger: None
) -> None:
    running = consumer(app).start()
    try:
        before = (cached_category(app, 1), cached_category(app, 2), cached_categories(app))
        assert before == ("1=pots", "2=cups", "1=pots;2=cups")
        again = (cached_category(app, 1), cached_category(app, 2), cached_categories(app))
        assert again == before  # hits
        psql(postgres, "UPDATE product SET price = 14 WHERE id = 1")  # table A only
        wait_for(
            lambda: cached_category(app, 1) == "1=pots from 14", ISSUE_DEADLINE, "the row's reload"
        )
        wait_for(
            lambda: cached_categories(app) == "1=pots from 14;2=cups",
            ISSUE_DEADLINE,
            "the table's reload",
        )
        assert cached_price(app) == "teapot=14"  # never cached: read once, now
        assert running.terminate() == 0
    finally:
        running.close()


@pytest.fixture
def reprice_procedure(postgres: PostgresServer, app: Flask) -> Iterator[None]:
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE PROCEDURE reprice(pid integer, new_price integer) LANGUAGE plpgsql AS $$"
            " BEGIN UPDATE product SET price = new_price WHERE id = pid; END $$"
        )
    yield
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP PROCEDURE reprice(integer, integer)")


def test_a_stored_procedures_write_reaches_a_cached_function_and_page(
    postgres: PostgresServer, app: Flask, reprice_procedure: None
) -> None:
    running = consumer(app).start()
    try:
        assert (cached_price(app), page(app)) == ("teapot=10", "teapot=10")
        assert (cached_price(app), page(app)) == ("teapot=10", "teapot=10")  # hits
        with psycopg.connect(postgres.dsn, autocommit=True) as conn:  # as psql runs it
            conn.execute("CALL reprice(1, 30)")
        wait_for(lambda: cached_price(app) == "teapot=30", ISSUE_DEADLINE, "the function's reload")
        wait_for(lambda: page(app) == "teapot=30", ISSUE_DEADLINE, "the page's reload")
        assert running.terminate() == 0
    finally:
        running.close()


def _plain_app(tmp_path: Path, **config: Any) -> tuple[Flask, CachePlug]:
    app = Flask("cdc_errors")
    app.testing = True
    app.config.update(
        SECRET_KEY="k", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'x.sqlite3'}", **config
    )
    db.init_app(app)
    return app, CachePlug(app, sqlalchemy=db)


@pytest.mark.parametrize(
    ("cdc", "message"),
    [
        (None, "change data capture is off: set CACHEPLUG_CDC"),
        ({"source": "postgresql"}, "is not a PostgreSQL database"),
        ({"source": "postgresql", "database": "archive"}, "no SQLAlchemy bind 'archive'"),
        ({"source": "postgresql", "database": "mysql://u:secret@h/d"}, "is not a PostgreSQL"),
    ],
)
def test_a_database_cdc_cannot_read_is_an_error(tmp_path: Path, cdc: Any, message: str) -> None:
    app, ext = _plain_app(tmp_path, CACHEPLUG_CDC=cdc)
    code, output = cli(app, "cdc")
    assert (code, message in output) == (1, True), output
    assert "secret" not in output
    ext.close(app)


def test_a_role_without_replication_is_an_error_with_a_hint(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS plain_app")
        conn.execute("CREATE ROLE plain_app LOGIN")
    url = f"postgresql+psycopg://plain_app:{PASSWORD}@127.0.0.1:{postgres.port}/postgres"
    app, ext = _plain_app(tmp_path, CACHEPLUG_CDC={"source": "postgresql", "database": url})
    code, output = cli(app, "cdc")
    assert (code, "the role needs the REPLICATION attribute" in output) == (1, True), output
    assert f"database 127.0.0.1:{postgres.port}/postgres, user plain_app" in output
    assert PASSWORD not in output
    ext.close(app)


@pytest.mark.parametrize(
    "cdc",
    [
        {"source": "mysql"},
        {"slot": "cacheplug"},
        "postgresql",
        {"source": "postgresql", "slot": "Bad-Name"},
        {"source": "postgresql", "typo": 1},
    ],
)
def test_a_bad_cdc_setting_is_refused_at_init_app(tmp_path: Path, cdc: Any) -> None:
    with pytest.raises(SettingsError) as refused:
        _plain_app(tmp_path, CACHEPLUG_CDC=cdc)
    assert [problem.code for problem in refused.value.problems] == ["E015"]


def test_outbox_is_a_validated_and_seeded_setting(tmp_path: Path) -> None:
    app, ext = _plain_app(tmp_path)
    assert app.config["CACHEPLUG_OUTBOX"] is True
    assert app.config["CACHEPLUG_CDC"] is None
    ext.close(app)
    with pytest.raises(SettingsError) as refused:
        _plain_app(tmp_path, CACHEPLUG_OUTBOX="yes")
    assert [problem.code for problem in refused.value.problems] == ["E016"]


def test_a_change_is_tagged_as_the_sqlalchemy_hooks_tag_the_write() -> None:
    class Base(DeclarativeBase):
        pass

    class Place(Base):
        __tablename__ = "cdc_place"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        name: Mapped[str] = mapped_column(String(50))

    class Restaurant(Place):
        __tablename__ = "cdc_restaurant"
        id: Mapped[int] = mapped_column(ForeignKey("cdc_place.id"), primary_key=True)

    class Ticket(Base):
        __tablename__ = "cdc_ticket"
        code: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
        shop: Mapped[int] = mapped_column(Integer, primary_key=True)

    tags_for = sqlalchemy_tags_for(Base.registry.mappers)
    # Joined inheritance: a row of the parent is the same row of the child.
    assert list(tags_for("cdc_place", ("5",))) == [
        table_tag("cdc_place"),
        row_tag("cdc_place", "5"),
        row_tag("cdc_restaurant", "5"),
    ]
    code = uuid.uuid4()
    assert row_tag("cdc_ticket", f"{code},3") in tags_for("cdc_ticket", (str(code), "3"))
    assert instance_tag(Ticket, (code, 3)) == row_tag("cdc_ticket", f"{code},3")
    assert list(tags_for("unmapped", ("a", "b"))) == ["db:t:unmapped", "db:r:unmapped:a,b"]
    assert list(tags_for("cacheplug_outbox", ("ab",))) == []
