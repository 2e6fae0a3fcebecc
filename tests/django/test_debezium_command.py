"""``manage.py cacheplug_cdc`` reading Debezium's change events from a Redis Stream (Debezium
Server's Redis sink), on the session's Redis: an event for a row reaches a cached function and
a cached page of the app (the consumer a process of its own, stopped by SIGTERM); ``--once``
with ``--source debezium-redis --stream NAME`` and no setting; settings errors. The data the
app caches stands for another database Debezium captures: a dict here, changed "outside".
No timing assertions: deadlines only."""

from __future__ import annotations

import io
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cdc_processes import Consumer, stream_caught_up, wait_for
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from shop.models import Product

from cacheplug_django import cache, cache_view, instance_tag

HERE = Path(__file__).resolve().parent
ISSUE_DEADLINE = 2.0  # seconds: issue #18's bound from an outside write to the app's fresh read
STREAM = "inventory.public.shop_product"  # <topic.prefix>.<schema>.<table>, as the sink names it
_names = itertools.count()
PRICES: dict[int, int] = {}  # the other database's rows


def cached_price(pk: int) -> str:
    return str(
        cache.get_or_load(f"price:{pk}", lambda: PRICES[pk], tags=[instance_tag(Product, pk)])
    )


@cache_view(ttl=300, tags=lambda request, pk: [instance_tag(Product, pk)])
def product_page(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(str(PRICES[pk]))


urlpatterns = [path("debezium/products/<int:pk>/", product_page)]


def page(pk: int) -> str:
    return Client().get(f"/debezium/products/{pk}/").content.decode()


def debezium_update(
    client: redis.Redis, pk: int, price: int, stream: str = STREAM, op: str = "u"
) -> None:
    """What Debezium Server's Redis sink writes for an UPDATE (``op`` ``u``; ``r``: a snapshot
    read) in its compact format, schemas on."""
    key = {"schema": {"type": "struct"}, "payload": {"id": pk}}
    value = {
        "schema": {"type": "struct"},
        "payload": {
            "before": None,
            "after": {"id": pk, "name": "teapot", "price": price},
            "source": {"connector": "postgresql", "schema": "public", "table": "shop_product"},
            "op": op,
            "ts_ms": 1718000000123,
        },
    }
    client.xadd(stream, {json.dumps(key): json.dumps(value)})


@pytest.fixture
def app(redis_url: str, settings: Any) -> Iterator[dict[str, str]]:
    """This process configured as the app (its cache on the session's Redis, a namespace and a
    stream of the test's own), and the consumer's environment."""
    namespace = f"debezium-django-{next(_names)}"
    settings.CACHEPLUG = {"NAMESPACE": namespace, "STORE": redis_url}
    settings.ROOT_URLCONF = __name__
    PRICES.clear()
    PRICES[1] = 10
    yield {
        "DJANGO_SETTINGS_MODULE": "debezium_settings",
        "PYTHONPATH": f"{HERE}:{HERE.parent.parent}",
        "CDC_TEST_NAMESPACE": namespace,
        "CDC_TEST_REDIS": redis_url,
        "CDC_TEST_STREAM": "inventory.public.*",
    }
    cache.reset()


def test_an_event_reaches_a_cached_function_and_page(
    app: dict[str, str], redis_client: redis.Redis
) -> None:
    debezium_update(redis_client, 1, 10, op="r")  # Debezium's snapshot: the stream is there
    consumer = Consumer([sys.executable, "-m", "django", "cacheplug_cdc"], app).start()
    try:
        # The snapshot event is read (and invalidates) before anything is cached here.
        wait_for(stream_caught_up(redis_client, STREAM), 15.0, "the snapshot's event")
        assert (cached_price(1), page(1)) == ("10", "10")
        PRICES[1] = 12  # written in the other database: the app's hooks never saw it
        assert (cached_price(1), page(1)) == ("10", "10")  # cached
        debezium_update(redis_client, 1, 12)
        wait_for(lambda: cached_price(1) == "12", ISSUE_DEADLINE, "the cached function's reload")
        wait_for(lambda: page(1) == "12", ISSUE_DEADLINE, "the cached page's reload")
        assert consumer.terminate() == 0
    finally:
        consumer.close()
    assert "consuming the stream(s) 'inventory.public.*' (group 'cacheplug')" in consumer.output
    assert "stopped: 2 change(s) invalidated" in consumer.output
    assert redis_client.xpending(STREAM, "cacheplug")["pending"] == 0  # acknowledged


def test_once_reads_what_the_stream_holds_without_a_setting(
    app: dict[str, str], redis_client: redis.Redis
) -> None:
    assert cached_price(1) == "10"
    PRICES[1] = 11
    debezium_update(redis_client, 1, 11)
    out = io.StringIO()
    call_command(
        "cacheplug_cdc", "--source", "debezium-redis", "--stream", STREAM, "--once", stdout=out
    )
    assert "caught up: 1 change(s) invalidated" in out.getvalue()
    assert cached_price(1) == "11"


def test_slot_options_are_refused_for_debezium(app: dict[str, str]) -> None:
    with pytest.raises(CommandError, match="--slot and --drop-slot are for SOURCE 'postgresql'"):
        call_command("cacheplug_cdc", "--stream", STREAM, "--drop-slot")


@pytest.mark.parametrize(
    ("cdc", "problem"),
    [
        ({"SOURCE": "debezium-redis"}, "needs STREAM"),
        ({"SOURCE": "debezium-redis", "STREAM": "x", "SLOT": "s"}, "SLOT is for SOURCE"),
        ({"SOURCE": "postgresql", "STREAM": "x"}, "STREAM is for SOURCE 'debezium-redis'"),
        ({"SOURCE": "debezium-redis", "STREAM": []}, "STREAM must be a stream name"),
        ({"SOURCE": "debezium-redis", "STREAM": "x", "REDIS": "localhost"}, "REDIS must be"),
    ],
)
def test_settings_errors_are_reported_before_the_first_request(
    cdc: dict[str, Any], problem: str, settings: Any
) -> None:
    settings.CACHEPLUG = {"CDC": cdc}
    errors = [error for error in run_checks() if error.id == "cacheplug.E015"]
    assert errors
    assert problem in errors[0].msg
