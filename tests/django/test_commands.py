"""The management commands, through call_command: warm, flush, stats, inspect; bad input
gets a clear message, a non-zero exit, and changes nothing."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from shop.models import Product

from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_warm_runs_the_chosen_warmers(cache: DjangoCache) -> None:
    Product.objects.create(name="hammer")
    Product.objects.create(name="saw")
    output = run("cacheplug_warm", "--only", "products", "answer", "--workers", "2")
    assert "products: 2 key(s)" in output
    assert "answer: 1 key(s)" in output
    assert "warmed 3 key(s) with 2 warmer(s)" in output
    assert "0 failed" in output
    assert cache.get("answer") == 42
    first = Product.objects.order_by("pk").first()
    assert first is not None
    assert cache.get(f"product-name:{first.pk}") == "hammer"


def test_warm_dry_run_lists_and_runs_nothing(cache: DjangoCache) -> None:
    output = run("cacheplug_warm", "--dry-run")
    assert "would run answer" in output
    assert "would run broken" in output
    assert cache.get("answer") is None


def test_a_failing_warmer_fails_the_command(cache: DjangoCache) -> None:
    with pytest.raises(CommandError, match="broken"):
        run("cacheplug_warm")
    assert cache.get("answer") == 42  # the others still ran


def test_an_unknown_warmer_is_refused(cache: DjangoCache) -> None:
    known = r"known: answer, broken, products"
    with pytest.raises(CommandError, match=r"unknown warmer.*nope.*" + known):
        run("cacheplug_warm", "--only", "nope", "answer")
    assert cache.get("answer") is None


def test_flush_by_tag_model_key_namespace_and_all(cache: DjangoCache) -> None:
    cache.set("tagged", 1, tags=["promo"])
    cache.set("by-model", 1, depends_on=[Product])
    cache.set("plain", 1)
    nested = cache.namespace("reports")
    nested.set("report", 1)
    assert "invalidated tag(s): promo" in run("cacheplug_flush", "--tag", "promo")
    assert cache.get("tagged") is None
    assert "depending on shop.Product" in run("cacheplug_flush", "--model", "shop.Product")
    assert cache.get("by-model") is None
    output = run("cacheplug_flush", "--key", "plain", "missing")
    assert "removed 'plain'" in output
    assert "no entry under 'missing'" in output
    assert "flushed namespace" in run("cacheplug_flush", "--namespace", "reports")
    assert nested.get("report") is None
    cache.set("plain", 1)
    assert "flushed every entry" in run("cacheplug_flush", "--all", "--yes")
    assert cache.get("plain") is None


def test_flush_refuses_bad_input_and_changes_nothing(cache: DjangoCache) -> None:
    cache.set("plain", 1, depends_on=[Product])
    with pytest.raises(CommandError, match=r"shop\.Nope.*nothing was flushed"):
        run("cacheplug_flush", "--model", "shop.Nope")
    with pytest.raises(CommandError, match="--yes"):
        run("cacheplug_flush", "--all")  # pytest's stdin is not a terminal
    with pytest.raises(CommandError):
        run("cacheplug_flush")  # nothing chosen
    assert cache.get("plain") == 1


def test_stats_sum_what_processes_published(cache: DjangoCache) -> None:
    cache.get_or_load("a", lambda: 1)
    cache.get_or_load("a", lambda: 1)
    cache.core.publish_stats()
    data = json.loads(run("cacheplug_stats", "--json"))
    assert data["stats"]["hits"] == 1
    assert data["stats"]["loads"] == 1
    assert data["namespace"] == "tests"
    text = run("cacheplug_stats")
    assert "hit ratio   50.0%" in text
    assert "stampedes averted" in text


def test_inspect(cache: DjangoCache) -> None:
    cache.set("k", {"a": 1}, ttl=60, tags=["promo"])
    output = run("cacheplug_inspect", "k")
    assert "state      fresh" in output
    assert "tags       promo" in output
    assert json.loads(run("cacheplug_inspect", "k", "--json"))["value_type"] == "dict"
    with pytest.raises(CommandError, match="no entry under 'nope'"):
        run("cacheplug_inspect", "nope")


def test_writebehind_drains_the_queues(cache: DjangoCache, redis_url: str) -> None:
    from cacheplug import QueuedWrite

    received: list[QueuedWrite] = []
    queue = cache.write_behind("counts", received.extend, durable=cache.core.store.shared)
    for i in range(5):
        queue.put(f"k{i}", i)
    output = run("cacheplug_writebehind", "--once")
    assert "drained 5 write(s) from 1 queue(s)" in output
    assert sorted(entry.value for entry in received) == [0, 1, 2, 3, 4]
    with pytest.raises(CommandError, match=r"unknown queue\(s\): nope"):
        run("cacheplug_writebehind", "--once", "--only", "nope")


def test_flush_model_reaches_entries_tagged_by_row(cache: DjangoCache) -> None:
    from cacheplug_django import instance_tag

    cache.set("row", 1, tags=cache.tags_for([instance_tag(Product, 1)]))
    run("cacheplug_flush", "--model", "shop.Product")
    assert cache.get("row") is None


def test_stats_count_what_the_warm_command_loaded(settings: object, redis_url: str) -> None:
    """The warm command runs in a process of its own: it publishes its counters before it
    ends, so the stats command (any process) counts the warmers' work."""
    from cacheplug_django import cache

    settings.CACHEPLUG = {"STORE": redis_url, "NAMESPACE": "warm-stats"}  # type: ignore[attr-defined]
    try:
        Product.objects.create(name="hammer")
        before = json.loads(run("cacheplug_stats", "--json"))["stats"]
        run("cacheplug_warm", "--only", "products", "answer")
        after = json.loads(run("cacheplug_stats", "--json"))["stats"]
        assert after["misses"] > before["misses"] or after["loads"] > before["loads"]
        assert after["bytes_written"] > before["bytes_written"]
    finally:
        cache.reset()
