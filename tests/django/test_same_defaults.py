"""Django's ``CACHEPLUG`` and Flask's ``CACHEPLUG_*`` give the same cache for the same
settings, and refuse the same values with the same codes: one table of defaults, one
translation, one set of rules (``cacheplug.integration``)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from django.core.checks import run_checks
from flask import Flask

from cacheplug import Cache
from cacheplug.integration import SETTING_DEFAULTS, SettingsError, cache_options
from cacheplug_django import cache as django_cache
from cacheplug_django.conf import outbox_enabled, read_settings
from cacheplug_flask import CachePlug


def _described(cache: Cache) -> dict[str, Any]:
    return {
        "namespace": cache.namespace_name,
        "default_ttl": cache.default_ttl,
        "stale_ttl": cache.stale_ttl,
        "lock_timeout": cache.lock_timeout,
        "negative_ttl": cache.negative_ttl,
        "strict": cache.strict,
        "signed": cache._engine._codec.signed,
        "store": type(cache.store).__name__,
    }


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"NAMESPACE": "shop", "DEFAULT_TTL": 60, "STALE_TTL": 5, "STRICT": True},
        {"LOCK_TIMEOUT": 3, "NEGATIVE_TTL": 0, "SECRET": "s" * 32},
    ],
)
def test_django_and_flask_build_the_same_cache(settings: Any, given: dict[str, Any]) -> None:
    settings.SECRET_KEY = "the-secret-key"
    settings.CACHEPLUG = given
    try:
        from_django = _described(django_cache.core)
    finally:
        django_cache.reset()
    app = Flask("same")
    app.config["SECRET_KEY"] = "the-secret-key"
    app.config.update({f"CACHEPLUG_{name}": value for name, value in given.items()})
    ext = CachePlug(app)
    with app.app_context():
        from_flask = _described(ext.cache)
    ext.close(app)
    assert from_django == from_flask


def test_the_defaults_are_the_cores_where_both_have_one() -> None:
    """A setting left out gives what ``Cache(...)`` gives without the option."""
    core = inspect.signature(Cache).parameters
    options = cache_options({}, secret_key=None, secret_key_fallbacks=None)
    for name, value in options.items():
        if name in core and name not in ("secret_fallbacks", "l1"):
            assert core[name].default == value, name
    assert options["secret_fallbacks"] == ()
    assert options["l1"] is None


def test_every_shared_setting_is_a_key_of_both_adapters(settings: Any) -> None:
    settings.CACHEPLUG = {}
    seen = read_settings()
    assert seen.private_cookies == tuple(SETTING_DEFAULTS["PRIVATE_COOKIES"])
    app = Flask("keys")
    CachePlug(app)
    assert {f"CACHEPLUG_{name}" for name in SETTING_DEFAULTS} <= set(app.config)


def test_secret_fallbacks_follow_the_framework_only_without_a_secret() -> None:
    framework = cache_options({}, secret_key="new", secret_key_fallbacks=["old"])
    assert (framework["secret"], framework["secret_fallbacks"]) == ("new", ("old",))
    own = cache_options({"SECRET": "mine"}, secret_key="new", secret_key_fallbacks=["old"])
    assert (own["secret"], own["secret_fallbacks"]) == ("mine", ())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STORE", 42),
        ("STORE", "no_such_module_here:Store"),
        ("NAMESPACE", "my shop!"),
        ("DEFAULT_TTL", 0),
        ("STALE_TTL", -1),
        ("LOCK_TIMEOUT", -1),
        ("NEGATIVE_TTL", -1),
        ("SECRET", 5),
        ("SECRET_FALLBACKS", "old"),
        ("L1", {"SIZE": 1}),
        ("HOT_KEY_REPLICAS", -1),
        ("STRICT", "yes"),
        ("PRIVATE_COOKIES", "token"),
        ("UNKNOWN_SQL", "everything"),
        ("CDC", "postgresql"),
        ("CDC", {"SOURCE": "mysql"}),
        ("CDC", {"SLOT": "cacheplug"}),
        ("CDC", {"SOURCE": "postgresql", "SLOT": "Not-A-Slot"}),
        ("CDC", {"SOURCE": "postgresql", "DATABASE": 3, "TYPO": 1}),
        ("OUTBOX", "yes"),
        ("NAMESPCE", "typo"),
    ],
)
def test_django_and_flask_refuse_the_same_values_with_the_same_code(
    settings: Any, name: str, value: Any
) -> None:
    settings.CACHEPLUG = {name: value}
    django_codes = sorted(
        str(m.id).removeprefix("cacheplug.")
        for m in run_checks()
        if str(m.id).startswith("cacheplug.E")
    )
    app = Flask("refused")
    app.testing = True  # an unknown key is an error, as in Django
    app.config.update({"SECRET_KEY": "k", f"CACHEPLUG_{name}": value})
    with pytest.raises(SettingsError) as raised:
        CachePlug(app)
    assert django_codes == sorted(problem.code for problem in raised.value.problems)
    assert django_codes  # refused at all


@pytest.mark.parametrize("outbox", [None, True, False])
def test_outbox_reads_the_same_in_both_adapters(settings: Any, outbox: bool | None) -> None:
    given = {} if outbox is None else {"OUTBOX": outbox}
    settings.CACHEPLUG = given
    app = Flask("outbox")
    app.config.update({f"CACHEPLUG_{name}": value for name, value in given.items()})
    ext = CachePlug(app)
    expected = outbox is not False
    assert outbox_enabled() is app.config["CACHEPLUG_OUTBOX"] is read_settings().outbox
    assert outbox_enabled() is expected
    assert app.config["CACHEPLUG_CDC"] is None
    assert read_settings().cdc is None
    ext.close(app)
