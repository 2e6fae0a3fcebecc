"""The store registry: a URL scheme, a dotted path or an instance names a store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _custom_stores import RecordingStore

from cacheplug import Cache, ConfigurationError, MemoryStore, register_store, store_from_url
from cacheplug.stores import _registry, resolve_store


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    """Each test starts from the built-in registrations and leaves them as they were."""
    saved = dict(_registry._by_scheme)
    yield
    _registry._by_scheme.clear()
    _registry._by_scheme.update(saved)


def test_a_registered_scheme_builds_its_store_from_the_url() -> None:
    register_store("recording", "_custom_stores:RecordingStore")
    store = store_from_url("recording://somewhere/0")
    assert isinstance(store, RecordingStore)
    assert store.url == "recording://somewhere/0"


def test_a_registered_factory_is_called_with_the_url() -> None:
    register_store("fact", "_custom_stores:from_url_factory")
    store = resolve_store("fact://x")
    assert isinstance(store, RecordingStore)
    assert store.url == "factory:fact://x"


def test_the_scheme_of_a_url_is_case_insensitive() -> None:
    register_store("recording", "_custom_stores:RecordingStore")
    assert isinstance(store_from_url("RECORDING://x"), RecordingStore)


def test_registering_a_scheme_again_replaces_the_store() -> None:
    register_store("memory", "_custom_stores:RecordingStore")
    assert isinstance(store_from_url("memory://"), RecordingStore)


def test_a_cache_is_built_on_a_registered_scheme() -> None:
    register_store("recording", "_custom_stores:RecordingStore")
    cache = Cache("recording://cache")
    try:
        cache.set("k", 1)
        assert cache.get("k") == 1
        assert isinstance(cache.store, RecordingStore)
    finally:
        cache.close()


def test_the_module_is_imported_only_when_its_scheme_is_used() -> None:
    code = (
        "import sys, cacheplug; "
        "cacheplug.register_store('recording', '_custom_stores:RecordingStore'); "
        "before = '_custom_stores' in sys.modules; "
        "cacheplug.store_from_url('recording://x'); "
        "print(before, '_custom_stores' in sys.modules, 'redis' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.split() == ["False", "True", "False"]


def test_resolve_store_returns_an_instance_as_it_is() -> None:
    store = MemoryStore()
    assert resolve_store(store) is store


def test_resolve_store_builds_a_url() -> None:
    store = resolve_store("memory://?max_entries=7")
    assert isinstance(store, MemoryStore)


def test_resolve_store_constructs_a_dotted_class_with_no_arguments() -> None:
    store = resolve_store("_custom_stores:RecordingStore")
    assert isinstance(store, RecordingStore)
    assert store.url is None


def test_resolve_store_calls_a_dotted_factory() -> None:
    store = resolve_store("_custom_stores:make_store")
    assert isinstance(store, RecordingStore)
    assert store.url == "made"


def test_resolve_store_follows_a_dotted_attribute_path() -> None:
    store = resolve_store("cacheplug.stores:MemoryStore")
    assert isinstance(store, MemoryStore)


def test_a_cache_takes_a_url_or_a_store() -> None:
    store = MemoryStore()
    for spec in ("memory://", store):
        cache = Cache(store=spec)
        try:
            cache.set("k", "v")
            assert cache.get("k") == "v"
        finally:
            cache.close()
    assert cache.store is store


def test_an_unknown_scheme_lists_the_registered_ones_without_the_password() -> None:
    register_store("recording", "_custom_stores:RecordingStore")
    with pytest.raises(ConfigurationError, match="unknown store URL scheme") as raised:
        store_from_url("mongodb://admin:s3cr3t-pw@db:27017/0")
    message = str(raised.value)
    assert "s3cr3t-pw" not in message
    assert "mongodb://admin:***@db:27017/0" in message
    for scheme in ("memory://", "recording://", "redis://", "redis+cluster://"):
        assert scheme in message
    assert "register_store" in message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("no_such_module_here:Store", "cannot import no_such_module_here"),
        ("_custom_stores:Missing", "_custom_stores has no Missing"),
        ("_custom_stores:not_a_store", "gave a value of type object, not a cacheplug.stores.Store"),
        ("_custom_stores:NOT_CALLABLE", "not a store class nor a factory"),
        ("just-a-name", "a dotted path ('package.module:Name')"),
        ("user:s3cr3t-pw@host", "a dotted path"),
    ],
)
def test_a_bad_dotted_path_says_what_is_wrong(spec: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        resolve_store(spec)
    assert expected in str(raised.value)
    assert "s3cr3t-pw" not in str(raised.value)


def test_a_value_of_another_type_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a value of type int"):
        resolve_store(42)  # type: ignore[arg-type]


def test_a_registered_path_that_does_not_import_fails_on_use() -> None:
    register_store("broken", "no_such_module_here:Store")
    with pytest.raises(ConfigurationError, match="cannot import no_such_module_here"):
        store_from_url("broken://x")


def test_a_registered_store_that_returns_no_store_is_refused() -> None:
    register_store("odd", "_custom_stores:no_store_from_url")
    with pytest.raises(ConfigurationError, match=r"odd:// .*not a cacheplug.stores.Store"):
        store_from_url("odd://x")


@pytest.mark.parametrize("scheme", ["", "Upper", "1st", "has space", "with://"])
def test_register_store_refuses_a_bad_scheme(scheme: str) -> None:
    with pytest.raises(ConfigurationError, match="store URL scheme"):
        register_store(scheme, "_custom_stores:RecordingStore")


@pytest.mark.parametrize("path", ["_custom_stores.RecordingStore", "", ":Name", "mod:"])
def test_register_store_refuses_a_path_without_module_and_name(path: str) -> None:
    with pytest.raises(ConfigurationError, match=r"package\.module:Name"):
        register_store("custom", path)


def test_a_redis_url_without_redis_py_names_the_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['redis'] = None; import cacheplug\n"
        "for choose in (lambda: cacheplug.store_from_url('redis://:s3cr3t@h/0'),\n"
        "               lambda: cacheplug.RedisStore):\n"
        "    try:\n"
        "        choose()\n"
        "    except cacheplug.ConfigurationError as exc:\n"
        "        print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "pip install 'cacheplug[redis]'" in line
        assert "s3cr3t" not in line


def test_a_cache_takes_a_dotted_path_to_its_store() -> None:
    cache = Cache("_custom_stores:make_store", namespace="dotted")
    try:
        assert type(cache.store) is RecordingStore
        cache.set("k", 1)
        assert cache.get("k") == 1
    finally:
        cache.close()


def test_a_cache_refuses_a_store_of_another_type_with_what_it_takes() -> None:
    with pytest.raises(TypeError, match="dotted path"):
        Cache(42)  # type: ignore[arg-type]
