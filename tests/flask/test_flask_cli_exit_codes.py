"""``flask cacheplug ...`` fails when it did not do its job: an empty name to flush is a
usage error, warming with the store down fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_shop import Product, cache, create_app, db

from cacheplug.testing import RedisServer


@pytest.mark.parametrize(
    "args",
    [
        ["--tag", ""],
        ["--tag", "promo", "--tag", " "],
        ["--key", ""],
        ["--model", ""],
        ["--namespace", ""],
    ],
)
def test_flushing_an_empty_name_is_a_usage_error(app: Flask, args: list[str]) -> None:
    with app.app_context():
        cache.set("kept", 1, tags=["promo"])
    result = app.test_cli_runner().invoke(args=["cacheplug", "flush", *args])
    assert result.exit_code == 2, result.output  # click's usage error
    assert "names nothing" in result.output
    with app.app_context():
        assert cache.get("kept") == 1  # nothing was flushed


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as own:
        yield own


def test_warming_with_the_store_down_fails(tmp_path: Path, server: RedisServer) -> None:
    app = create_app(server.url, f"sqlite:///{tmp_path / 'shop.sqlite3'}")
    with app.app_context():
        db.session.add_all([Product(name="hammer"), Product(name="saw")])
        db.session.commit()
    server.stop()
    try:
        result = app.test_cli_runner().invoke(args=["cacheplug", "warm", "--only", "names"])
    finally:
        cache.close(app)
    assert result.exit_code == 1, result.output
    assert "warmed 2 key(s) with 1 warmer(s)" in result.output
    assert "1 failed" in result.output
    assert "could not be reached while this warmer ran" in result.output
    assert "warmer(s) failed: names" in result.output
