"""Limits on what is cached: ``max_value_bytes`` and TTL validation, over each store."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import pytest

from cacheplug import Cache, Store

SECRET = "limits-test-secret"
MAX_VALUE_BYTES = 1000
LOGGER = "cacheplug"
SMALL = "s" * 100
LARGE = "L" * 10_000  # 10 kB: over the limit whatever the envelope and serializer add


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def limited(store: Store) -> Iterator[Cache]:
    """A cache over each store that refuses entries over ``MAX_VALUE_BYTES``."""
    secret = SECRET if store.shared else None
    cache = Cache(store, namespace="limits", secret=secret, max_value_bytes=MAX_VALUE_BYTES)
    yield cache
    cache.close()


def stored(cache: Cache, key: str) -> bytes | None:
    """The raw record under ``key`` in the store, behind the cache's back."""
    return cache.store.get(cache.store_key(key))


def oversize_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == LOGGER
        and record.levelno == logging.WARNING
        and "max_value_bytes" in record.getMessage()
    ]


# -- max_value_bytes -----------------------------------------------------------------------------


def test_get_or_load_of_oversize_value_returns_it_without_caching(
    limited: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    calls: list[int] = []

    def loader() -> str:
        calls.append(1)
        return LARGE

    assert limited.get_or_load("big", loader) == LARGE
    assert stored(limited, "big") is None
    assert limited.stats().oversize == 1
    assert limited.stats().errors == 0
    records = oversize_warnings(caplog)
    assert len(records) == 1
    assert str(MAX_VALUE_BYTES) in records[0].getMessage()

    # Not cached, so the loader runs again; the warning is not repeated within the burst.
    assert limited.get_or_load("big", loader) == LARGE
    assert len(calls) == 2
    assert stored(limited, "big") is None
    assert limited.stats().oversize == 2
    assert len(oversize_warnings(caplog)) == 1


def test_values_under_the_limit_are_cached(limited: Cache) -> None:
    assert limited.get_or_load("small", lambda: SMALL) == SMALL
    assert stored(limited, "small") is not None
    assert limited.get_or_load("small", lambda: "not called") == SMALL
    assert limited.stats().oversize == 0


def test_limit_applies_to_the_stored_record(store: Store) -> None:
    # The record stored for a value within the limit is never larger than the limit.
    secret = SECRET if store.shared else None
    with Cache(store, namespace="limits", secret=secret, max_value_bytes=MAX_VALUE_BYTES) as cache:
        for size in (10, 200, 500, 800, 900, 950, 1000, 1200):
            value = "v" * size
            cache.set(f"k{size}", value)
            record = stored(cache, f"k{size}")
            if record is not None:
                assert len(record) <= MAX_VALUE_BYTES
                assert cache.get(f"k{size}") == value
        assert stored(cache, "k10") is not None
        assert stored(cache, "k1200") is None


def test_limit_applies_to_the_value_before_compression(store: Store) -> None:
    # Readers inflate a payload to at most max_value_bytes (a forged record must not cost
    # more), so a value that only fits once compressed is oversize: written, it could never
    # be read back.
    secret = SECRET if store.shared else None
    with Cache(
        store,
        namespace="limits",
        secret=secret,
        compress_min_bytes=100,
        max_value_bytes=MAX_VALUE_BYTES,
    ) as cache:
        within = "w" * (MAX_VALUE_BYTES // 2)
        assert cache.set("within", within) is True
        record = stored(cache, "within")
        assert record is not None
        assert len(record) < MAX_VALUE_BYTES // 4  # compressed
        assert cache.get("within") == within

        assert cache.set("k", SMALL) is True
        assert cache.set("k", LARGE) is False  # 10 kB that compresses to a few dozen bytes
        assert stored(cache, "k") is None
        assert cache.get("k", None) is None
        assert cache.stats().oversize == 1
        assert cache.stats().discarded == 0


def test_set_of_oversize_value_returns_false_and_removes_older_value(limited: Cache) -> None:
    sentinel = object()
    assert limited.set("k", SMALL) is True
    assert limited.get("k") == SMALL

    assert limited.set("k", LARGE) is False
    assert limited.get("k", sentinel) is sentinel
    assert stored(limited, "k") is None
    assert limited.stats().oversize == 1


def test_add_of_oversize_value_returns_false(limited: Cache) -> None:
    assert limited.add("k", LARGE) is False
    assert stored(limited, "k") is None
    assert limited.stats().oversize == 1


def test_set_many_returns_oversize_keys_and_stores_the_rest(limited: Cache) -> None:
    assert limited.set("big", "older small value") is True
    failed = limited.set_many({"a": SMALL, "big": LARGE, "b": 2, "huge": LARGE * 2})
    assert sorted(failed) == ["big", "huge"]
    assert limited.get_many(["a", "big", "b", "huge"]) == {"a": SMALL, "b": 2}
    assert stored(limited, "big") is None  # the older value is gone too
    assert stored(limited, "huge") is None
    assert limited.stats().oversize == 2


def test_oversize_warning_names_the_key_and_is_logged_once_per_burst(
    limited: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for i in range(10):
        assert limited.set(f"k{i}", LARGE) is False
    records = oversize_warnings(caplog)
    assert len(records) == 1
    assert limited.store_key("k0") in records[0].getMessage()
    assert limited.stats().oversize == 10


# -- TTL validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [0, 0.0, -1, -0.5, float("nan"), -math.inf])
def test_non_positive_or_nan_ttl_raises_value_error(limited: Cache, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        limited.set("k", "v", ttl=ttl)
    assert stored(limited, "k") is None


@pytest.mark.parametrize("ttl", ["10", b"10", True, [10]])
def test_non_numeric_ttl_raises_type_error(limited: Cache, ttl: Any) -> None:
    with pytest.raises(TypeError, match="ttl"):
        limited.set("k", "v", ttl=ttl)
    assert stored(limited, "k") is None


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), "10"])
def test_invalid_ttl_is_refused_by_every_writer(limited: Cache, ttl: Any) -> None:
    error = TypeError if isinstance(ttl, str) else ValueError
    loader_calls: list[int] = []

    def loader() -> str:
        loader_calls.append(1)
        return "v"

    with pytest.raises(error):
        limited.add("k", "v", ttl=ttl)
    with pytest.raises(error):
        limited.set_many({"k": "v"}, ttl=ttl)
    with pytest.raises(error):
        limited.get_or_load("k", loader, ttl=ttl)
    assert loader_calls == []
    assert stored(limited, "k") is None


@pytest.mark.parametrize("default_ttl", [0, -5, float("nan")])
def test_invalid_default_ttl_is_refused(store: Store, default_ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        Cache(store, default_ttl=default_ttl)


def test_ttl_none_means_no_expiry(limited: Cache) -> None:
    assert limited.set("forever", "v", ttl=None) is True
    assert limited.store.ttl_ms(limited.store_key("forever")) is None
    assert limited.get("forever") == "v"


def test_infinite_ttl_means_no_expiry(limited: Cache) -> None:
    assert limited.set("forever", "v", ttl=math.inf) is True
    assert limited.store.ttl_ms(limited.store_key("forever")) is None


def test_default_ttl_none_means_no_expiry(store: Store) -> None:
    secret = SECRET if store.shared else None
    with Cache(store, namespace="limits", secret=secret, default_ttl=None) as cache:
        assert cache.set("forever", "v") is True
        assert cache.store.ttl_ms(cache.store_key("forever")) is None


def test_positive_ttl_sets_an_expiry(limited: Cache) -> None:
    assert limited.set("k", "v", ttl=10) is True
    remaining = limited.store.ttl_ms(limited.store_key("k"))
    assert remaining is not None
    assert 0 < remaining <= 10_000
