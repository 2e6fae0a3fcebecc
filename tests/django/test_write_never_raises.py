"""A cache that cannot be used never turns a committed ORM write into an exception, and the
write's invalidation is not lost: it waits (in the cache's pending queue, or held until the
cache can be built) and is applied when it can be."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from shop.models import Product

from cacheplug.testing import RedisServer
from cacheplug_django import cache
from cacheplug_django.orm import committed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop and start again."""
    with RedisServer() as own:
        yield own


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    cache.reset()
    committed._held.clear()  # what a test left held on purpose
    committed._bump = False


def cached_names(loads: list[int]) -> str:
    def load() -> str:
        loads.append(1)
        return ",".join(Product.objects.order_by("name").values_list("name", flat=True))

    return cache.get_or_load("names", load, depends_on=[Product])


def write(price: int, *, atomic: bool) -> Product:
    if atomic:
        with transaction.atomic():
            return Product.objects.create(name=f"p{price}", price=price)
    return Product.objects.create(name=f"p{price}", price=price)


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "autocommit"])
def test_a_write_with_the_store_down_returns_and_is_invalidated_when_it_is_back(
    settings: Any, server: RedisServer, atomic: bool
) -> None:
    # STRICT: the cache raises CacheUnavailable when the store is down.
    settings.CACHEPLUG = {"STORE": server.url, "STRICT": True}
    loads: list[int] = []
    assert cached_names(loads) == ""
    assert cached_names(loads) == ""
    assert len(loads) == 1
    server.stop()
    failures = committed.failures
    product = write(1, atomic=atomic)  # returns normally
    assert Product.objects.filter(pk=product.pk).exists()
    assert committed.failures > failures  # counted (and logged)
    assert cache.pending_invalidations()  # queued, retried until the store takes it
    server.start()
    assert cache.core._engine._pending.flush(timeout=30.0)  # applied now that it is back
    assert cached_names(loads) == "p1"  # the old entry is gone
    assert len(loads) == 2


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "autocommit"])
def test_a_write_with_a_bad_setting_returns_and_is_invalidated_once_the_cache_is_built(
    settings: Any, redis_url: str, atomic: bool
) -> None:
    good = {"STORE": redis_url, "NAMESPACE": "held"}
    settings.CACHEPLUG = good
    loads: list[int] = []
    assert cached_names(loads) == ""
    assert len(loads) == 1
    settings.CACHEPLUG = {**good, "DEFAULT_TTL": -5}  # the cache cannot be built now
    product = write(2, atomic=atomic)  # returns normally
    assert Product.objects.filter(pk=product.pk).exists()
    assert committed.held()  # kept, not lost
    settings.CACHEPLUG = good  # fixed: the next build applies what was held first
    assert cached_names(loads) == "p2"
    assert len(loads) == 2
    assert committed.held() == []


def test_more_held_than_the_bound_bumps_the_namespace(settings: Any, redis_url: str) -> None:
    good = {"STORE": redis_url, "NAMESPACE": "bumped"}
    settings.CACHEPLUG = good
    cache.set("unrelated", 1)  # no tag of the writes below: only a bump reaches it
    settings.CACHEPLUG = {**good, "LOCK_TIMEOUT": -1}
    bound = committed.max_held
    committed.max_held = 1
    try:
        write(3, atomic=True)  # a product's table and row tags: more than one
    finally:
        committed.max_held = bound
    assert committed.held() == ["<namespace bump>"]
    settings.CACHEPLUG = good
    assert cache.get("unrelated") is None
    assert committed.held() == []
