"""``CACHEPLUG_STORE`` takes a URL, a dotted path ``"package.module:Name"`` (a store class or
factory) or a ``Store`` instance, like Django's ``CACHEPLUG["STORE"]``; what cannot be used
is an ``E002`` problem of the ``SettingsError`` that ``init_app`` raises."""

from __future__ import annotations

from typing import Any

import custom_stores  # tests/django is on sys.path (pyproject's pythonpath)
import pytest
from flask import Flask

from cacheplug import MemoryStore, RedisStore
from cacheplug.integration import SettingsError
from cacheplug_flask import CachePlug


def make_app(store: Any) -> Flask:
    app = Flask("stores")
    app.config.update(SECRET_KEY="flask-tests-secret", CACHEPLUG_STORE=store)
    return app


@pytest.mark.parametrize("path", ["custom_stores:TinyStore", "custom_stores:tiny_store"])
def test_a_dotted_path_names_a_store_class_or_factory(path: str) -> None:
    app = make_app(path)
    ext = CachePlug(app)
    with app.app_context():
        assert isinstance(ext.cache.store, custom_stores.TinyStore)
        ext.set("k", "v")
        assert ext.get("k") == "v"
    ext.close(app)


def test_a_store_instance_is_used_as_it_is(redis_url: str) -> None:
    given = RedisStore(redis_url)
    app = make_app(given)
    app.config["CACHEPLUG_NAMESPACE"] = "given"
    ext = CachePlug(app)
    with app.app_context():
        assert ext.cache.store is given
        ext.set("k", {"n": 1})
        assert ext.get("k") == {"n": 1}
    ext.close(app)


def test_a_url_still_names_a_store() -> None:
    app = make_app("memory://")
    ext = CachePlug(app)
    with app.app_context():
        assert isinstance(ext.cache.store, MemoryStore)
    ext.close(app)


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
def test_a_store_that_cannot_be_used_is_e002(store: Any, text: str) -> None:
    with pytest.raises(SettingsError) as raised:
        CachePlug(make_app(store))
    [problem] = raised.value.problems
    assert (problem.code, problem.setting) == ("E002", "CACHEPLUG_STORE")
    assert text in problem.message
    assert "dotted path" in problem.hint
