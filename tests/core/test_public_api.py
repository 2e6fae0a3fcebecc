"""The public surface: what is exported, and what importing costs."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cacheplug
import cacheplug.encoding
import cacheplug.features
import cacheplug.integration
import cacheplug.writebehind
import cacheplug_django
import cacheplug_flask

LAZY = {cacheplug: {"RedisStore"}}  # imported on first use


@pytest.mark.parametrize(
    "package",
    [
        cacheplug,
        cacheplug.encoding,
        cacheplug.features,
        cacheplug.integration,
        cacheplug.writebehind,
    ],
    ids=lambda p: p.__name__,
)
def test_all_is_sorted_and_lists_every_public_name(package: object) -> None:
    names = vars(package)
    public = {
        name
        for name in names
        if not name.startswith("_")
        and name not in {"annotations", "TYPE_CHECKING", "Any"}
        and not isinstance(names[name], type(sys))
    } | LAZY.get(package, set())  # type: ignore[call-overload]
    exported = package.__all__  # type: ignore[attr-defined]
    assert sorted(exported) == exported
    assert set(exported) == public
    missing = [name for name in exported if not hasattr(package, name)]
    assert not missing


@pytest.mark.parametrize("adapter", [cacheplug_django, cacheplug_flask])
def test_the_adapters_export_what_their_docs_name(adapter: object) -> None:
    exported = adapter.__all__  # type: ignore[attr-defined]
    assert exported == sorted(exported)
    for name in exported:
        assert getattr(adapter, name) is not None


def test_import_needs_neither_framework_nor_redis() -> None:
    code = (
        "import sys, cacheplug; "
        "c = cacheplug.Cache(); c.set('k', 1); assert c.get('k') == 1; "
        "print(sorted(m for m in ('django', 'flask', 'redis', 'sqlalchemy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_redis_is_imported_only_when_a_redis_store_is_chosen() -> None:
    code = (
        "import sys, cacheplug; assert 'redis' not in sys.modules; "
        "cacheplug.RedisStore; print('redis' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"


def test_a_cache_option_is_read_only_once_the_cache_is_made() -> None:
    cache = cacheplug.Cache(default_ttl=5, strict=True)
    assert (cache.default_ttl, cache.strict, cache.lock_timeout) == (5.0, True, 10.0)
    with pytest.raises(AttributeError, match=r"Cache\(default_ttl=\.\.\.\)"):
        cache.default_ttl = 1  # type: ignore[misc]
    assert cache.default_ttl == 5.0
