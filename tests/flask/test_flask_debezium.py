"""``flask cacheplug cdc`` reading Debezium's change events from a Redis Stream (Debezium
Server's Redis sink), on the session's Redis: an event for a row written outside the app
(straight into the SQLite file, as another service would) reaches a cached function and a
cached page (the consumer a process of its own, stopped by SIGTERM); ``--once`` with
``--source debezium-redis --stream NAME``; settings errors. No timing assertions: deadlines
only."""

from __future__ import annotations

import itertools
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import debezium_flask_app
import pytest
import redis
from cdc_processes import Consumer, stream_caught_up, wait_for
from flask import Flask
from flask_shop import Product, cache, db

from cacheplug.integration import SettingsError
from cacheplug_flask import CachePlug, instance_tag

HERE = Path(__file__).resolve().parent
ISSUE_DEADLINE = 2.0  # seconds: issue #18's bound from an outside write to the app's fresh read
STREAM = "inventory.public.product"  # <topic.prefix>.<schema>.<table>, as the sink names it
_names = itertools.count()


@pytest.fixture
def app(tmp_path: Path, redis_url: str) -> Iterator[Flask]:
    database = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    flask_app = debezium_flask_app.create_app(database, redis_url, f"debezium-flask-{next(_names)}")
    with flask_app.app_context():
        db.create_all()
        db.session.add(Product(id=1, name="teapot", price=10))
        db.session.commit()
    yield flask_app
    cache.close(flask_app)


def env_of(app: Flask) -> dict[str, str]:
    return {
        "PYTHONPATH": f"{HERE}:{HERE.parent}:{HERE.parent.parent}",
        "CDC_TEST_DATABASE": app.config["SQLALCHEMY_DATABASE_URI"],
        "CDC_TEST_REDIS": app.config["CACHEPLUG_STORE"],
        "CDC_TEST_NAMESPACE": app.config["CACHEPLUG_NAMESPACE"],
    }


def outside_update(app: Flask, price: int) -> None:
    """Another service's write: its own connection to the file, no SQLAlchemy, no hooks."""
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE product SET price = ? WHERE id = 1", (price,))


def debezium_event(client: redis.Redis, price: int, op: str = "u") -> None:
    """What Debezium Server's Redis sink writes in its "extended" format, schemas off."""
    value = {
        "before": None,
        "after": {"id": 1, "name": "teapot", "price": price},
        "source": {"connector": "postgresql", "schema": "public", "table": "product"},
        "op": op,
    }
    client.xadd(STREAM, {"key": json.dumps({"id": 1}), "value": json.dumps(value)})


def cached_price(app: Flask) -> str:
    with app.app_context():

        def load() -> str:
            found = db.session.get(Product, 1)
            db.session.remove()
            return f"{found.name}={found.price}" if found else "missing"

        return str(cache.get_or_load("price:1", load, tags=[instance_tag(Product, 1)]))


def page(app: Flask) -> str:
    return app.test_client().get("/cdc/products/1").get_data(as_text=True)


def test_an_event_reaches_a_cached_function_and_page(app: Flask, redis_client: redis.Redis) -> None:
    debezium_event(redis_client, 10, op="r")  # Debezium's snapshot: the stream is there
    flask = [sys.executable, "-m", "flask", "--app", "debezium_flask_app:create_app"]
    consumer = Consumer([*flask, "cacheplug", "cdc"], env_of(app)).start()
    try:
        # The snapshot event is read (and invalidates) before anything is cached here.
        wait_for(stream_caught_up(redis_client, STREAM), 15.0, "the snapshot's event")
        assert (cached_price(app), page(app)) == ("teapot=10", "teapot=10")
        outside_update(app, 12)
        assert (cached_price(app), page(app)) == ("teapot=10", "teapot=10")  # cached
        debezium_event(redis_client, 12)
        wait_for(lambda: cached_price(app) == "teapot=12", ISSUE_DEADLINE, "the function")
        wait_for(lambda: page(app) == "teapot=12", ISSUE_DEADLINE, "the page")
        assert consumer.terminate() == 0
    finally:
        consumer.close()
    assert "consuming the stream(s) 'inventory.public.*' (group 'cacheplug')" in consumer.output
    assert "stopped: 2 change(s) invalidated" in consumer.output
    assert redis_client.xpending(STREAM, "cacheplug")["pending"] == 0


def test_once_reads_what_the_stream_holds(app: Flask, redis_client: redis.Redis) -> None:
    app.config["CACHEPLUG_CDC"] = None  # the command line alone says where to read
    assert cached_price(app) == "teapot=10"
    outside_update(app, 11)
    debezium_event(redis_client, 11)
    result = app.test_cli_runner().invoke(
        args=["cacheplug", "cdc", "--source", "debezium-redis", "--stream", STREAM, "--once"]
    )
    assert result.exit_code == 0, result.output
    assert "caught up: 1 change(s) invalidated" in result.output
    assert cached_price(app) == "teapot=11"


def test_slot_options_are_refused_for_debezium(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["cacheplug", "cdc", "--drop-slot"])
    assert result.exit_code == 1
    assert "--slot and --drop-slot are for SOURCE 'postgresql'" in result.output


@pytest.mark.parametrize(
    ("cdc", "problem"),
    [
        ({"source": "debezium-redis"}, "needs STREAM"),
        ({"source": "debezium-redis", "stream": "x", "database": "d"}, "DATABASE is for"),
        ({"source": "postgresql", "group": "g"}, "GROUP is for SOURCE 'debezium-redis'"),
        ({"source": "debezium-redis", "stream": ["a", 3]}, "STREAM must be a stream name"),
    ],
)
def test_settings_errors_are_reported_at_init_app(cdc: dict[str, Any], problem: str) -> None:
    flask_app = Flask(__name__)
    flask_app.config["CACHEPLUG_CDC"] = cdc
    with pytest.raises(SettingsError, match=problem):
        CachePlug(flask_app)
