"""``CACHEPLUG["STORE"]`` takes a URL, a dotted path ``"package.module:Name"`` (a store class
or factory), a ``Store`` instance or ``"django:<alias>"``; what cannot be used is
``cacheplug.E002`` in ``manage.py check`` and a ``ConfigurationError`` when the cache is built."""

from __future__ import annotations

from typing import Any

import custom_stores
import pytest
from django.core.checks import run_checks

from cacheplug import ConfigurationError, MemoryStore, RedisStore
from cacheplug_django import cache


def store_errors() -> list[tuple[str, str]]:
    return [(str(m.id), m.msg) for m in run_checks() if str(m.id) == "cacheplug.E002"]


@pytest.mark.parametrize("path", ["custom_stores:TinyStore", "custom_stores:tiny_store"])
def test_a_dotted_path_names_a_store_class_or_factory(settings: Any, path: str) -> None:
    settings.CACHEPLUG = {"STORE": path}
    try:
        assert store_errors() == []
        store = cache.core.store
        assert isinstance(store, custom_stores.TinyStore)
        cache.set("k", "v")
        assert cache.get("k") == "v"
    finally:
        cache.reset()


def test_a_store_instance_is_used_as_it_is(settings: Any, redis_url: str) -> None:
    given = RedisStore(redis_url)
    settings.CACHEPLUG = {"STORE": given, "NAMESPACE": "given"}
    try:
        assert store_errors() == []
        assert cache.core.store is given
        cache.set("k", {"n": 1})
        assert cache.get("k") == {"n": 1}
    finally:
        cache.reset()


def test_a_url_still_names_a_store(settings: Any) -> None:
    settings.CACHEPLUG = {"STORE": "memory://"}
    try:
        assert isinstance(cache.core.store, MemoryStore)
    finally:
        cache.reset()


@pytest.mark.parametrize(
    ("store", "text"),
    [
        ("no_such_module_here:Store", "no_such_module_here"),
        ("custom_stores:Missing", "Missing"),
        ("custom_stores:not_a_factory", "not a store class nor a factory"),
        ("mongodb://127.0.0.1", "mongodb"),
        ("not a store", "dotted path"),
        (42, "int"),
        ("", "str"),
    ],
)
def test_a_store_that_cannot_be_used_is_e002(settings: Any, store: Any, text: str) -> None:
    settings.CACHEPLUG = {"STORE": store}
    try:
        [(_, message)] = store_errors()
        assert "CACHEPLUG['STORE']" in message
        assert text in message
        with pytest.raises(ConfigurationError):
            cache.core  # noqa: B018
    finally:
        cache.reset()
