"""The management commands fail when they did not do their job: an empty name to flush is a
usage error, warming with the store down fails; ``-v 0`` keeps them quiet."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from shop.models import Product

from cacheplug.testing import RedisServer
from cacheplug_django import cache as project_cache
from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str, **options: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "args",
    [
        ["--tag", ""],
        ["--tag", "promo", " "],
        ["--key", ""],
        ["--model", ""],
        ["--namespace", ""],
    ],
)
def test_flushing_an_empty_name_is_a_usage_error(cache: DjangoCache, args: list[str]) -> None:
    cache.set("kept", 1, tags=["promo"])
    with pytest.raises(CommandError, match="names nothing"):
        run("cacheplug_flush", *args)
    assert cache.get("kept") == 1  # nothing was flushed


def test_verbosity_0_is_quiet(cache: DjangoCache) -> None:
    cache.set("tagged", 1, tags=["promo"])
    assert run("cacheplug_flush", "--tag", "promo", verbosity=0) == ("", "")
    assert cache.get("tagged") is None
    assert run("cacheplug_warm", "--only", "answer", verbosity=0) == ("", "")
    assert cache.get("answer") == 42
    out, _ = run("cacheplug_warm", "--only", "answer", verbosity=1)
    assert "warmed 1 key(s)" in out


def test_verbosity_0_still_reports_failures(cache: DjangoCache) -> None:
    err = io.StringIO()
    with pytest.raises(CommandError, match="warmer\\(s\\) failed: broken"):
        call_command("cacheplug_warm", verbosity=0, stdout=io.StringIO(), stderr=err)
    assert "the database is on fire" in err.getvalue()


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as own:
        yield own


def test_warming_with_the_store_down_fails(settings: Any, server: RedisServer) -> None:
    settings.CACHEPLUG = {"STORE": server.url}
    Product.objects.create(name="hammer")
    Product.objects.create(name="saw")
    server.stop()
    out, err = io.StringIO(), io.StringIO()
    try:
        with pytest.raises(CommandError, match="warmer\\(s\\) failed: answer, products"):
            call_command("cacheplug_warm", "--only", "products", "answer", stdout=out, stderr=err)
    finally:
        project_cache.reset()
    assert "2 failed" in out.getvalue()
    assert "could not be reached while this warmer ran" in err.getvalue()
