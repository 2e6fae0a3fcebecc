"""The weather service's tests of its caching, with cacheplug's pytest fixtures."""

from __future__ import annotations

import pytest
import weather

from cacheplug import Cache


# Two tests writing the same keys: each starts from an empty cache, whichever runs first.
@pytest.mark.parametrize("run", ["first", "second"])
def test_a_forecast_is_fetched_once_per_test(cacheplug_isolated, run: str) -> None:
    assert weather.report(["Oslo", "Lima", "Oslo"]) == {
        "Oslo": "sunny in Oslo",
        "Lima": "sunny in Lima",
    }
    assert weather.fetched == ["Oslo", "Lima"]


def test_the_fixture_gives_the_isolated_cache(cacheplug_isolated) -> None:
    assert cacheplug_isolated is weather.cache
    assert cacheplug_isolated.get("forecast:Oslo") is None


def test_counting_a_block(cacheplug_isolated, cacheplug_calls) -> None:
    weather.forecast("Oslo")  # before the block: not counted
    with cacheplug_calls() as calls:
        weather.report(["Oslo", "Lima", "Oslo", "Lima", "Kyiv"])
        assert (calls.hits, calls.misses, calls.loads) == (3, 2, 2)  # so far
        weather.forecast.invalidate("Oslo")
        weather.forecast("Oslo")
    assert (calls.hits, calls.misses, calls.loads) == (3, 3, 3)
    assert weather.fetched == ["Oslo", "Lima", "Kyiv", "Oslo"]


def test_a_tag_invalidation_is_seen(cacheplug_isolated, cacheplug_calls) -> None:
    weather.forecast("Lima")
    weather.cache.invalidate_tags("city:Lima")
    with cacheplug_calls() as calls:
        weather.forecast("Lima")
    assert (calls.hits, calls.loads) == (0, 1)


def test_switched_off(cacheplug_disabled, cacheplug_calls) -> None:
    with cacheplug_calls() as calls:
        weather.report(["Oslo", "Oslo", "Oslo"])
        weather.forecast.invalidate("Oslo")
    assert weather.fetched == ["Oslo", "Oslo", "Oslo"]
    assert (calls.hits, calls.misses, calls.loads) == (0, 3, 3)
    assert cacheplug_disabled.set("anything", 1) is False
    assert cacheplug_disabled.get("anything") is None


def test_counting_a_cache_named_in_the_test(cacheplug_isolated, cacheplug_calls) -> None:
    with Cache(namespace="scratch") as scratch, cacheplug_calls(scratch) as calls:
        scratch.get_or_load("key", lambda: "value")
        weather.forecast("Oslo")  # another cache: not counted
    assert (calls.misses, calls.loads) == (1, 1)
