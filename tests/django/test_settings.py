"""The CACHEPLUG setting: defaults, reuse of a CACHES alias, reading again after a change,
and the system checks that explain mistakes."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django_redis import get_redis_connection

from cacheplug import LocalTier, MemoryStore, RedisStore
from cacheplug_django import cache


def messages(code: str) -> list[str]:
    return [m.msg for m in run_checks() if m.id == code]


def test_defaults_use_the_embedded_store_signed_with_secret_key(settings: Any) -> None:
    settings.CACHEPLUG = {}
    core = cache.core
    assert isinstance(core.store, MemoryStore)
    assert core.namespace_name == "default"
    assert core.default_ttl == 300
    cache.reset()


def test_settings_are_read_again_after_they_change(settings: Any, redis_url: str) -> None:
    settings.CACHEPLUG = {"NAMESPACE": "one"}
    assert cache.core.namespace_name == "one"
    settings.CACHEPLUG = {"NAMESPACE": "two", "STORE": redis_url, "L1": {"MAX_ENTRIES": 50}}
    assert cache.core.namespace_name == "two"
    assert isinstance(cache.core.store, RedisStore)
    assert cache.core._engine._local is not None
    assert cache.core._engine._local.options == LocalTier(max_entries=50)
    cache.reset()


def test_a_caches_alias_lends_its_redis_server(settings: Any, redis_url: str) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_url},
    }
    settings.CACHEPLUG = {"STORE": "django:shared"}
    store = cache.core.store
    assert isinstance(store, RedisStore)
    assert store.url == redis_url
    # django-redis' connections are shared, not duplicated...
    shared = get_redis_connection("shared").connection_pool
    assert store.client.connection_pool is shared
    cache.set("lent", {"n": 1})
    assert cache.get("lent") == {"n": 1}
    assert cache.incr("lent:count") == 1  # never retried: a pool of its own
    assert shared._created_connections >= 1
    cache.reset()
    # ...and closing cacheplug's cache leaves django-redis' pool working.
    assert get_redis_connection("shared").ping()


def test_django_s_own_redis_cache_lends_its_server_not_its_pool(
    settings: Any, redis_url: str
) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url},
    }
    settings.CACHEPLUG = {"STORE": "django:shared"}
    store = cache.core.store
    assert isinstance(store, RedisStore)
    assert store.url == redis_url
    cache.set("lent", 1)
    assert cache.get("lent") == 1
    cache.reset()


@pytest.mark.parametrize(
    ("setting", "code", "text"),
    [
        ("not a dict", "cacheplug.E001", "must be a dict"),
        ({"STOER": "redis://x"}, "cacheplug.E001", "CACHEPLUG['STOER']: is not a cacheplug"),
        ({"L1": {"MAX_ENTRIE": 5}}, "cacheplug.E009", "unknown keys ['MAX_ENTRIE']"),
        ({"STORE": "mongodb://x"}, "cacheplug.E002", "unknown store URL scheme"),
        ({"STORE": "django:nope"}, "cacheplug.E002", "CACHES has no alias 'nope'"),
        ({"STORE": "django:default"}, "cacheplug.E002", "is not a Redis cache"),
    ],
)
def test_mistakes_are_explained_by_the_system_checks(
    settings: Any, setting: object, code: str, text: str
) -> None:
    settings.CACHEPLUG = setting
    found = messages(code)
    assert len(found) == 1
    assert text in found[0]


def test_a_shared_store_without_a_secret_is_warned_about(settings: Any, redis_url: str) -> None:
    settings.SECRET_KEY = ""
    settings.CACHEPLUG = {"STORE": redis_url}
    assert len(messages("cacheplug.W001")) == 1
    settings.CACHEPLUG = {"STORE": redis_url, "SECRET": "s3cret"}
    assert messages("cacheplug.W001") == []
