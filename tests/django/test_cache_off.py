"""The off switch in Django: ``CACHEPLUG["STORE"] = "null://"`` passes the checks and keeps
nothing; the pytest plugin's fixtures find ``cacheplug_django.cache`` by themselves."""

from __future__ import annotations

from typing import Any

from django.core.checks import run_checks

from cacheplug.stores import NullStore
from cacheplug_django import cache


def test_the_null_store_setting_switches_the_cache_off(settings: Any) -> None:
    settings.CACHEPLUG = {"STORE": "null://", "NAMESPACE": "off"}
    try:
        assert [m.id for m in run_checks() if str(m.id).startswith("cacheplug.")] == []
        assert isinstance(cache.core.store, NullStore)
        loads = []
        for _ in range(2):
            cache.get_or_load("k", lambda: loads.append(1) or len(loads))
        assert loads == [1, 1]
        assert cache.set("k", "v") is False
        assert cache.get("k") is None
    finally:
        cache.reset()


def test_the_fixtures_act_on_the_django_cache(cacheplug_cache: Any, cacheplug_calls: Any) -> None:
    assert cacheplug_cache is cache
    with cacheplug_calls() as calls:
        cache.get("absent")
    assert calls.misses == 1


def test_isolated_redirects_the_django_cache(cacheplug_isolated: Any) -> None:
    assert cacheplug_isolated is cache
    assert cache.core.namespace_name.startswith("tests/t")


def test_disabled_switches_the_django_cache_off(cacheplug_disabled: Any) -> None:
    cache.set("k", "v")
    assert cache.get("k") is None
