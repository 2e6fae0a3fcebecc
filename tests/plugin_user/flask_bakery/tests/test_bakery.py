"""The bakery's tests of its caching, with cacheplug's pytest fixtures."""

from __future__ import annotations

import bakery
import pytest
from bakery import cache


# Two tests writing the same keys: each starts from an empty cache, whichever runs first.
@pytest.mark.parametrize("run", ["first", "second"])
def test_breads_are_baked_once_per_test(cacheplug_isolated, run: str) -> None:
    assert cache.get("breads") is None
    assert bakery.todays_breads() == bakery.todays_breads()
    assert bakery.baked == ["breads"]
    cache.set("left-behind", run)


@pytest.mark.parametrize("run", ["first", "second"])
def test_nothing_is_left_behind(cacheplug_isolated, run: str) -> None:
    assert cache.get("left-behind") is None


@pytest.mark.parametrize("run", ["first", "second"])
def test_the_menu_is_rendered_once_per_test(client, cacheplug_isolated, cacheplug_calls, run):
    with cacheplug_calls() as calls:
        first = client.get("/menu")
        second = client.get("/menu")
    assert first.data == second.data == b"baguette, rye, sourdough"
    assert bakery.baked == ["breads"]
    assert calls.hits >= 1
    assert calls.loads >= 1


def test_counting_hits_misses_and_loads(cacheplug_isolated, cacheplug_calls) -> None:
    with cacheplug_calls() as calls:
        for _ in range(3):
            bakery.price("rye")
        bakery.price("baguette")
    assert (calls.hits, calls.misses, calls.loads) == (2, 2, 2)
    assert bakery.baked == ["price:rye", "price:baguette"]


def test_without_the_cache_everything_is_baked(client, cacheplug_disabled, cacheplug_calls) -> None:
    with cacheplug_calls() as calls:
        for _ in range(3):
            assert client.get("/menu").data == b"baguette, rye, sourdough"
            assert bakery.price("rye") == "3.20"
        cache.invalidate("breads")
        cache.invalidate_tags("breads")
    assert bakery.baked == ["breads", "price:rye"] * 3
    assert calls.hits == 0
    assert calls.loads >= 6
    assert cache.get("breads") is None
