"""recording_calls: every call through cacheplug_django.cache in a block (what the Debug
Toolbar panel shows), with its outcome; page reads and invalidations after commit too;
nothing recorded outside the block."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from shop import page_views
from shop.models import Product

from cacheplug.integration import current_calls, recording_calls
from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_load_then_a_hit_then_a_write(cache: DjangoCache) -> None:
    with recording_calls() as log:
        assert current_calls() is log
        first = cache.get_or_load("answer", lambda: 42, depends_on=[Product])
        second = cache.get_or_load("answer", lambda: 0, depends_on=[Product])
        cache.set("other", 1, tags=["t"])
        assert cache.get("other") == 1
        assert cache.get("absent") is None
    assert current_calls() is None
    assert (first, second) == (42, 42)
    methods = [(call.method, call.key, call.outcome) for call in log.calls]
    assert methods[0] == ("get_or_load", "answer", "loaded")
    assert methods[1][:2] == ("get_or_load", "answer")
    assert methods[1][2] in ("l1", "hit")  # L1 where the store is shared, else the store
    assert methods[2] == ("set", "other", "set")
    assert methods[3][:2] == ("get", "other")
    assert methods[3][2] in ("l1", "hit")
    assert methods[4] == ("get", "absent", "miss")
    assert log.calls[0].load_seconds is not None
    assert "db:t:shop_product" in log.calls[0].tags
    assert log.counts()["loaded"] == 1
    assert log.page_outcome() is None


def test_nothing_is_recorded_outside_the_block(cache: DjangoCache) -> None:
    with recording_calls() as log:
        pass
    cache.get_or_load("answer", lambda: 42)
    assert log.calls == []


def test_invalidations_after_commit_are_recorded(cache: DjangoCache) -> None:
    with recording_calls() as log, transaction.atomic():
        Product.objects.create(name="hammer", price=1)
        assert log.invalidations == []  # not before the commit
    assert any("db:t:shop_product" in tags for tags in log.invalidations)


def test_a_page_rendered_then_served_from_the_cache(cache: DjangoCache, settings: Any) -> None:
    page_views.renders.clear()
    Product.objects.create(name="hammer", price=1)
    with recording_calls() as rendered:
        Client().get("/pages/catalog/")
    with recording_calls() as served:
        Client().get("/pages/catalog/")
    assert rendered.page_outcome() == "loaded"
    assert served.page_outcome() in ("l1", "hit")
    assert page_views.renders["catalog"] == 1


def test_logs_nest(cache: DjangoCache) -> None:
    with recording_calls() as outer:
        cache.get("before")
        with recording_calls() as inner:
            cache.get("inside")
        cache.get("after")
    assert [call.key for call in inner.calls] == ["inside"]
    assert [call.key for call in outer.calls] == ["before", "inside", "after"]
