"""Fixtures for the Django adapter's tests: the configured cache over each store (the
embedded one and a real redis-server), and a client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client

from cacheplug_django import cache as django_cache
from cacheplug_django._cache import DjangoCache


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest, settings: object) -> Iterator[DjangoCache]:
    """``cacheplug_django.cache`` configured on each store in turn (through the setting, as a
    project would)."""
    options = {"NAMESPACE": "tests"}
    if request.param == "redis":
        options["STORE"] = request.getfixturevalue("redis_url")
    settings.CACHEPLUG = options  # type: ignore[attr-defined]
    yield django_cache
    django_cache.reset()


@pytest.fixture
def client() -> Client:
    return Client()
