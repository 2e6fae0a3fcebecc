"""``manage.py check`` validates every value of ``CACHEPLUG`` (``PAGES`` rules included) and
reports every problem at once, each with its id and a hint; ``SECRET_KEY_FALLBACKS`` keeps a
rotated secret's entries readable."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from cacheplug_django import cache


def errors(setting: object, settings: Any) -> list[tuple[str, str, str]]:
    settings.CACHEPLUG = setting
    return [
        (str(m.id), m.msg, str(m.hint)) for m in run_checks() if str(m.id).startswith("cacheplug.")
    ]


def test_every_bad_value_fails_check_at_once_with_its_id(settings: Any) -> None:
    settings.CACHEPLUG = {
        "DEFAULT_TTL": -5,
        "STALE_TTL": -1,
        "LOCK_TIMEOUT": -1,
        "NAMESPACE": "my shop!",
        "PAGES": [{"PATH": r"^/a/", "TTL": -1}, {"VIEW": "shop:catalog", "TTL": 0}],
    }
    with pytest.raises(SystemCheckError) as raised:
        call_command("check")
    report = str(raised.value)
    for expected in (
        "(cacheplug.E004) CACHEPLUG['DEFAULT_TTL']",
        "(cacheplug.E005) CACHEPLUG['STALE_TTL']",
        "(cacheplug.E006) CACHEPLUG['LOCK_TIMEOUT']",
        "(cacheplug.E003) CACHEPLUG['NAMESPACE']",
        "(cacheplug.E012) CACHEPLUG['PAGES'][0]['TTL']",
        "(cacheplug.E012) CACHEPLUG['PAGES'][1]['TTL']",
    ):
        assert expected in report
    assert "6 issues" in report


@pytest.mark.parametrize(
    ("setting", "code", "text"),
    [
        ({"DEFAULT_TTL": -5}, "cacheplug.E004", "-5"),
        ({"DEFAULT_TTL": 0}, "cacheplug.E004", "0"),
        ({"DEFAULT_TTL": "300"}, "cacheplug.E004", "'300'"),
        ({"STALE_TTL": -1}, "cacheplug.E005", "-1"),
        ({"LOCK_TIMEOUT": -1}, "cacheplug.E006", "-1"),
        ({"NAMESPACE": "my shop!"}, "cacheplug.E003", "'my shop!'"),
        ({"NEGATIVE_TTL": -1}, "cacheplug.E007", "-1"),
        ({"SECRET_FALLBACKS": "old"}, "cacheplug.E008", "'old'"),
        ({"HOT_KEY_REPLICAS": -1}, "cacheplug.E010", "-1"),
        ({"STRICT": "yes"}, "cacheplug.E011", "'yes'"),
        ({"PRIVATE_COOKIES": "token"}, "cacheplug.E013", "'token'"),
        ({"UNKNOWN_SQL": "all"}, "cacheplug.E014", "'all'"),
        ({"PAGES": [{"PATH": "^/", "TTL": -1}]}, "cacheplug.E012", "-1"),
        ({"PAGES": [{"PATH": "^/", "STATUSES": ["200"]}]}, "cacheplug.E012", "['200']"),
        ({"PAGES": [{"TTL": 5}]}, "cacheplug.E012", "needs PATH"),
        ({"PAGES": [{"PATH": "^/", "DEPENDS_ON": "shop.Nope"}]}, "cacheplug.E012", "Nope"),
    ],
)
def test_each_bad_value_has_its_id_and_a_hint(
    settings: Any, setting: object, code: str, text: str
) -> None:
    found = errors(setting, settings)
    assert [found_code for found_code, _, _ in found] == [code]
    _, message, hint = found[0]
    assert text in message
    assert hint


def test_an_unknown_key_gets_a_did_you_mean(settings: Any) -> None:
    found = errors({"STOR": "redis://127.0.0.1:6379/0", "DEFAULT_TTL": 0}, settings)
    assert [code for code, _, _ in found] == ["cacheplug.E001", "cacheplug.E004"]
    assert "Did you mean CACHEPLUG['STORE']?" in found[0][2]


def test_good_values_pass(settings: Any, redis_url: str) -> None:
    setting = {
        "STORE": redis_url,
        "NAMESPACE": "my-shop",
        "DEFAULT_TTL": None,
        "STALE_TTL": 0,
        "LOCK_TIMEOUT": 2.5,
        "NEGATIVE_TTL": 0,
        "SECRET_FALLBACKS": ["old"],
        "L1": {"MAX_ENTRIES": 10},
        "STRICT": True,
        "PAGES": [{"PATH": "^/", "TTL": 60, "STATUSES": [200, 404], "DEPENDS_ON": "shop.Product"}],
    }
    assert errors(setting, settings) == []
    call_command("check")


def test_a_bad_setting_is_refused_when_the_cache_is_built_too(settings: Any) -> None:
    settings.CACHEPLUG = {"DEFAULT_TTL": -5, "LOCK_TIMEOUT": -1}
    with pytest.raises(ValueError, match="2 cacheplug setting") as raised:
        cache.get("anything")
    assert "CACHEPLUG['LOCK_TIMEOUT']" in str(raised.value)
    cache.reset()


def test_secret_key_fallbacks_keep_entries_of_the_old_secret(settings: Any, redis_url: str) -> None:
    settings.SECRET_KEY = "old-secret-key-of-this-project-0123456789"
    settings.CACHEPLUG = {"STORE": redis_url}
    cache.set("rotated", {"n": 1})
    assert cache.get("rotated") == {"n": 1}
    # The rotation: a new secret, the old one kept in the fallbacks.
    settings.SECRET_KEY = "new-secret-key-of-this-project-9876543210"
    settings.SECRET_KEY_FALLBACKS = ["old-secret-key-of-this-project-0123456789"]
    assert cache.get("rotated") == {"n": 1}
    assert cache.stats().discarded == 0
    # Without the fallback the old entry is refused (discarded, never unpickled).
    settings.SECRET_KEY_FALLBACKS = []
    assert cache.get("rotated") is None
    assert cache.stats().discarded == 1
    cache.reset()
