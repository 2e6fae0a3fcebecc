"""``CACHEPLUG["COMPRESSION"]``: checked by ``manage.py check`` (E019), and the cache built from
the setting compresses with it."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks

from cacheplug import Cache
from cacheplug.encoding import _compression
from cacheplug.encoding._compression import ZstdCompressor
from cacheplug_django.conf import read_settings


def problems(settings: Any, value: object) -> list[tuple[str, str]]:
    settings.CACHEPLUG = {"COMPRESSION": value}
    return [(str(m.id), str(m.hint)) for m in run_checks() if str(m.id).startswith("cacheplug.")]


def test_a_bad_value_is_e019_with_a_hint(settings: Any) -> None:
    ((code, hint),) = problems(settings, "gzip")
    assert code == "cacheplug.E019"
    assert "'zstd'" in hint


def test_zstd_without_zstandard_is_e019(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems(settings, "zstd") == []
    monkeypatch.setattr(_compression, "zstd_available", lambda: False)
    ((code, _),) = problems(settings, "zstd")
    assert code == "cacheplug.E019"


def test_the_setting_reaches_the_cache_options(settings: Any) -> None:
    settings.CACHEPLUG = {}
    assert read_settings().options["compression"] == "none"
    settings.CACHEPLUG = {"COMPRESSION": "zstd"}
    options = read_settings().options
    assert options["compression"] == "zstd"
    with Cache(**options) as built:
        assert isinstance(built._engine._codec._compressor, ZstdCompressor)
