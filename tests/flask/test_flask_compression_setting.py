"""``CACHEPLUG_COMPRESSION``: reaches the cache, and a bad value fails ``init_app``."""

from __future__ import annotations

import pytest
from flask import Flask

from cacheplug.encoding import _compression
from cacheplug.encoding._compression import ZlibCompressor, ZstdCompressor
from cacheplug.integration import SettingsError
from cacheplug_flask import CachePlug


@pytest.mark.parametrize(
    ("value", "kind"), [("none", type(None)), ("zlib", ZlibCompressor), ("zstd", ZstdCompressor)]
)
def test_the_setting_chooses_the_compression(value: str, kind: type) -> None:
    app = Flask(__name__)
    app.config["CACHEPLUG_COMPRESSION"] = value
    extension = CachePlug(app)
    with app.app_context():
        assert isinstance(extension.cache._engine._codec._compressor, kind)


def test_the_default_is_none() -> None:
    app = Flask(__name__)
    CachePlug(app)
    assert app.config["CACHEPLUG_COMPRESSION"] == "none"


@pytest.mark.parametrize("zstandard_installed", [True, False])
def test_a_bad_value_fails_init_app_with_e019(
    zstandard_installed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_compression, "zstd_available", lambda: zstandard_installed)
    app = Flask(__name__)
    app.config["CACHEPLUG_COMPRESSION"] = "zstd" if not zstandard_installed else "brotli"
    with pytest.raises(SettingsError, match=r"CACHEPLUG_COMPRESSION: .*\[cacheplug\.E019\]"):
        CachePlug(app)
