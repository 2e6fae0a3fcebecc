"""The bookstore's tests of its caching, with cacheplug's pytest fixtures only."""

from __future__ import annotations

import pytest
from bookstore import catalog
from django.test import Client

from cacheplug_django import cache


@pytest.fixture(autouse=True)
def _forget_computations() -> None:
    catalog.computed.clear()


# Two tests writing the same keys: each starts from an empty cache, whichever runs first.
@pytest.mark.parametrize("run", ["first", "second"])
def test_bestsellers_are_computed_once_per_test(cacheplug_isolated, run: str) -> None:
    assert cache.get("bestsellers") is None
    assert catalog.bestsellers() == catalog.bestsellers()
    assert catalog.computed == ["bestsellers"]
    cache.set("left-behind", run)


@pytest.mark.parametrize("run", ["first", "second"])
def test_nothing_is_left_behind(cacheplug_isolated, run: str) -> None:
    assert cache.get("left-behind") is None
    assert cache.get("bestsellers") is None


@pytest.mark.parametrize("run", ["first", "second"])
def test_the_page_is_rendered_once_per_test(cacheplug_isolated, cacheplug_calls, run) -> None:
    client = Client()
    with cacheplug_calls() as calls:
        first = client.get("/bestsellers/")
        second = client.get("/bestsellers/")
    assert first.content == second.content == b"Dune, Emma, Ulysses"
    assert catalog.computed == ["bestsellers"]
    assert calls.loads >= 1  # the page, and the list inside it
    assert calls.hits >= 1


def test_counting_hits_misses_and_loads(cacheplug_isolated, cacheplug_calls) -> None:
    with cacheplug_calls() as calls:
        catalog.price("978-0")
        catalog.price("978-0")
        catalog.price("978-0")
        catalog.price("978-1")
    assert (calls.hits, calls.misses, calls.loads) == (2, 2, 2)
    with cacheplug_calls() as calls:
        catalog.price("978-1")
    assert (calls.hits, calls.misses, calls.loads) == (1, 0, 0)


def test_without_the_cache_everything_is_computed(cacheplug_disabled, cacheplug_calls) -> None:
    client = Client()
    with cacheplug_calls() as calls:
        for _ in range(3):
            assert client.get("/bestsellers/").content == b"Dune, Emma, Ulysses"
            assert catalog.price("978-0") == "12.50"
        cache.invalidate("bestsellers")
        cache.invalidate_tags("books")
    assert catalog.computed == ["bestsellers", "price:978-0"] * 3
    assert calls.hits == 0
    assert cache.get("bestsellers") is None


def test_disabled_stores_nothing_for_later(cacheplug_isolated, cacheplug_disabled) -> None:
    catalog.bestsellers()
    catalog.bestsellers()
    assert catalog.computed == ["bestsellers", "bestsellers"]
