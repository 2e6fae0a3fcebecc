from __future__ import annotations

import pytest
import weather

from cacheplug import Cache


@pytest.fixture
def cacheplug_cache() -> Cache:
    """The cache cacheplug's fixtures act on."""
    return weather.cache


@pytest.fixture(autouse=True)
def _forget_fetches() -> None:
    weather.fetched.clear()
