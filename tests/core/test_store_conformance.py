"""Every store passes the shipped conformance suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cacheplug import MemoryStore, RedisStore, Store
from cacheplug.testing.conformance import StoreConformance


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store(self) -> Store:
        return MemoryStore()


class TestRedisStore(StoreConformance):
    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[Store]:
        store = RedisStore(redis_url)
        yield store
        store.close()
