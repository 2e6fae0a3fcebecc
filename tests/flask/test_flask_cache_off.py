"""The off switch in Flask: ``CACHEPLUG_STORE = "null://"`` is a valid setting and keeps
nothing."""

from __future__ import annotations

from flask import Flask

from cacheplug.stores import NullStore
from cacheplug_flask import CachePlug


def test_the_null_store_setting_switches_the_cache_off() -> None:
    app = Flask("off")
    app.config.update(TESTING=True, CACHEPLUG_STORE="null://")
    ext = CachePlug(app)
    with app.app_context():
        assert isinstance(ext.cache.store, NullStore)
        loads: list[int] = []
        for _ in range(2):
            ext.get_or_load("k", lambda: loads.append(1) or len(loads))
        assert loads == [1, 1]
        assert ext.set("k", "v") is False
        assert ext.get("k") is None
    ext.close(app)
