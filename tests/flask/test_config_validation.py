"""``init_app`` checks every ``CACHEPLUG_*`` key: bad values are errors, all reported at once;
an unknown key gets a "did you mean", as an error under ``app.testing``/``app.debug`` and a
warning otherwise. ``SECRET_KEY_FALLBACKS`` keeps a rotated secret's entries readable."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from cacheplug.integration import SettingsError
from cacheplug_flask import CachePlug
from cacheplug_flask.config import UnknownSettingWarning


def make_app(**config: Any) -> Flask:
    app = Flask("validated")
    app.config.update(SECRET_KEY="flask-tests-secret", **config)
    return app


def test_every_bad_value_is_reported_at_once() -> None:
    app = make_app(
        CACHEPLUG_DEFAULT_TTL=-5,
        CACHEPLUG_STALE_TTL=-1,
        CACHEPLUG_LOCK_TIMEOUT=-1,
        CACHEPLUG_NAMESPACE="my shop!",
    )
    with pytest.raises(SettingsError) as raised:
        CachePlug(app)
    problems = {(p.code, p.setting) for p in raised.value.problems}
    assert problems == {
        ("E004", "CACHEPLUG_DEFAULT_TTL"),
        ("E005", "CACHEPLUG_STALE_TTL"),
        ("E006", "CACHEPLUG_LOCK_TIMEOUT"),
        ("E003", "CACHEPLUG_NAMESPACE"),
    }
    assert "4 cacheplug setting(s) are not valid" in str(raised.value)
    assert "cacheplug" not in app.extensions or not app.extensions["cacheplug"]


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("CACHEPLUG_DEFAULT_TTL", 0, "E004"),
        ("CACHEPLUG_DEFAULT_TTL", "300", "E004"),
        ("CACHEPLUG_NEGATIVE_TTL", -1, "E007"),
        ("CACHEPLUG_SECRET_FALLBACKS", "old", "E008"),
        ("CACHEPLUG_L1", {"max_entrie": 5}, "E009"),
        ("CACHEPLUG_HOT_KEY_REPLICAS", 1.5, "E010"),
        ("CACHEPLUG_STRICT", "false", "E011"),
        ("CACHEPLUG_PRIVATE_COOKIES", "remember_token", "E013"),
        ("CACHEPLUG_UNKNOWN_SQL", "none", "E014"),
        ("CACHEPLUG_STORE", "mongodb://x", "E002"),
    ],
)
def test_each_bad_value_is_an_error_with_a_hint(key: str, value: object, code: str) -> None:
    with pytest.raises(SettingsError) as raised:
        CachePlug(make_app(**{key: value}))
    [problem] = raised.value.problems
    assert (problem.code, problem.setting) == (code, key)
    assert problem.hint


@pytest.mark.parametrize("mode", ["testing", "debug"])
def test_an_unknown_key_is_an_error_when_testing_or_debugging(mode: str) -> None:
    app = make_app(CACHEPLUG_STOR="redis://127.0.0.1:6379/0", CACHEPLUG_DEFAULT_TTL=0)
    setattr(app, mode, True)
    with pytest.raises(SettingsError) as raised:
        CachePlug(app)
    found = {p.setting: p for p in raised.value.problems}
    assert set(found) == {"CACHEPLUG_STOR", "CACHEPLUG_DEFAULT_TTL"}
    assert found["CACHEPLUG_STOR"].hint == "Did you mean CACHEPLUG_STORE?"


def test_an_unknown_key_is_a_warning_in_production() -> None:
    app = make_app(CACHEPLUG_STOR="redis://127.0.0.1:6379/0")
    with pytest.warns(UnknownSettingWarning, match="Did you mean CACHEPLUG_STORE"):
        ext = CachePlug(app)
    with app.app_context():
        ext.set("k", 1)
        assert ext.get("k") == 1


def test_a_second_prefix_s_keys_are_not_unknown_to_the_first() -> None:
    app = make_app(CACHEPLUG_SESSIONS_NAMESPACE="sessions")
    app.testing = True
    CachePlug(app)
    sessions = CachePlug(app, config_prefix="CACHEPLUG_SESSIONS")
    with app.app_context():
        assert sessions.cache.namespace_name == "sessions"


def test_secret_key_fallbacks_keep_entries_of_the_old_secret(redis_url: str) -> None:
    old, new = "old-flask-secret-0123456789", "new-flask-secret-9876543210"
    before = make_app(CACHEPLUG_STORE=redis_url)
    before.config["SECRET_KEY"] = old
    ext = CachePlug(before)
    with before.app_context():
        ext.set("rotated", {"n": 1})
        ext.close()
    # The rotation (Flask 3.1's SECRET_KEY_FALLBACKS): the old secret is kept as a fallback.
    after = make_app(CACHEPLUG_STORE=redis_url, SECRET_KEY_FALLBACKS=[old])
    after.config["SECRET_KEY"] = new
    rotated = CachePlug(after)
    with after.app_context():
        assert rotated.get("rotated") == {"n": 1}
        assert rotated.stats().discarded == 0
        rotated.close()
    # Without it, the old entry is refused (discarded, never unpickled).
    forgotten = make_app(CACHEPLUG_STORE=redis_url)
    forgotten.config["SECRET_KEY"] = new
    plain = CachePlug(forgotten)
    with forgotten.app_context():
        assert plain.get("rotated") is None
        assert plain.stats().discarded == 1
        plain.close()
