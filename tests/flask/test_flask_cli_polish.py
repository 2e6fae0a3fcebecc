"""``flask cacheplug ...`` as a user meets it: ``--json`` on warm and flush, click's progress
bar for warm at a terminal, and ``stats --watch N`` (refreshing until Ctrl-C, which exits
0: a real Ctrl-C is sent in tests/parity/test_cli_parity.py)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_shop import Product, cache, create_app, db

from cacheplug.integration import _watch

HERE = Path(__file__).resolve().parent


def invoke(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["cacheplug", *args])


def add_products(app: Flask, count: int) -> None:
    with app.app_context():
        db.session.add_all([Product(name=f"p{i}") for i in range(count)])
        db.session.commit()


# -- --json ----------------------------------------------------------------------------------


def test_warm_prints_one_json_document(app: Flask) -> None:
    add_products(app, 2)
    result = invoke(app, "warm", "--only", "names", "--workers", "2", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # the whole output is the document
    assert document["keys"] == 2
    assert document["failed"] == []
    assert document["workers"] == 2
    assert [(run["name"], run["keys"], run["error"]) for run in document["warmers"]] == [
        ("names", 2, None)
    ]
    with app.app_context():
        assert cache.get("name:1") == "p0"


def test_a_failed_warmer_is_in_the_document_and_the_command_still_fails(app: Flask) -> None:
    result = invoke(app, "warm", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["failed"] == ["broken"]
    assert document["warmers"][0] == {
        "name": "broken",
        "keys": 0,
        "seconds": document["warmers"][0]["seconds"],
        "error": "RuntimeError: boom",
    }
    assert "Traceback" in result.stderr
    assert "Error: warmer(s) failed: broken" in result.stderr


def test_a_dry_run_document_names_the_warmers(app: Flask) -> None:
    result = invoke(app, "warm", "--dry-run", "--json")
    assert json.loads(result.stdout)["warmers"] == [{"name": "broken"}, {"name": "names"}]


def test_flush_prints_one_json_document_for_each_way(app: Flask) -> None:
    with app.app_context():
        cache.set("tagged", 1, tags=["promo"])
        cache.set("plain", 1)
        namespace = cache.cache.namespace_name
    document = json.loads(invoke(app, "flush", "--tag", "promo", "--json").stdout)
    assert document == {
        "namespace": namespace,
        "flushed": "tags",
        "tags": ["promo"],
        "message": "invalidated tag(s): promo",
    }
    result = invoke(app, "flush", "--key", "plain", "--key", "missing", "--json")
    document = json.loads(result.stdout)
    assert (document["removed"], document["missing"]) == (["plain"], ["missing"])
    document = json.loads(invoke(app, "flush", "--model", "Product", "--json").stdout)
    assert document["message"] == "invalidated everything depending on Product"
    assert document["tags"]
    document = json.loads(invoke(app, "flush", "--all", "--yes", "--json").stdout)
    assert (document["flushed"], document["namespace"]) == ("all", namespace)
    with app.app_context():
        assert cache.get("tagged") is None
        assert cache.get("plain") is None


# -- the progress bar ------------------------------------------------------------------------


def at_a_terminal(command: list[str], env: dict[str, str]) -> tuple[str, int]:
    """Run ``command`` with a pseudo-terminal as its stdin, stdout and stderr (as a user's
    shell does): what it printed, and its exit status."""
    main, other = pty.openpty()
    with subprocess.Popen(command, stdin=other, stdout=other, stderr=other, env=env) as process:
        os.close(other)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal closed: the process is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(main)
    return b"".join(chunks).decode(), process.returncode


def flask_command(tmp_path: Path, redis_url: str, *args: str) -> tuple[list[str], dict[str, str]]:
    database = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    factory = f"flask_shop:create_app({redis_url!r}, {database!r}, 'flask-cli-polish')"
    flask = str(Path(sys.executable).with_name("flask"))
    env = {**os.environ, "PYTHONPATH": str(HERE), "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}
    return [flask, "--app", factory, "cacheplug", *args], env


def test_warm_shows_clicks_progress_bar_at_a_terminal(tmp_path: Path, redis_url: str) -> None:
    command, env = flask_command(tmp_path, redis_url, "warm", "--only", "names")
    app = create_app(redis_url, f"sqlite:///{tmp_path / 'shop.sqlite3'}", "flask-cli-polish")
    add_products(app, 25)
    cache.close(app)
    shown, status = at_a_terminal(command, env)
    assert status == 0, shown
    assert "warming  [------------------------------------]  0/1  0 key(s)" in shown
    assert "0/1  10 key(s) (names)" in shown
    assert "0/1  20 key(s) (names)" in shown
    assert "warming  [####################################]  1/1  25 key(s) (names)" in shown
    lines = [line.rsplit("\r\x1b[K", 1)[-1] for line in shown.split("\r\n")]
    assert "names: 25 key(s)" in lines  # printed on a cleared line, above the bar
    assert any(line.startswith("warmed 25 key(s) with 1 warmer(s)") for line in lines)
    # Not at a terminal (a pipe): no bar.
    piped = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "warming" not in piped.stdout
    assert "names: 25 key(s)" in piped.stdout.splitlines()


# -- --watch ---------------------------------------------------------------------------------


def test_stats_watch_refreshes_until_ctrl_c(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # traffic between refreshes, then Ctrl-C
        slept.append(seconds)
        if len(slept) == 3:
            raise KeyboardInterrupt
        with app.app_context():
            cache.get_or_load(f"k{len(slept)}", lambda: 1)
            cache.cache.publish_stats()

    monkeypatch.setattr(_watch, "sleep", sleep)
    result = invoke(app, "stats", "--watch", "0.5", "--json")
    assert result.exit_code == 0, result.output  # Ctrl-C ends a watch normally
    assert slept == [0.5, 0.5, 0.5]
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [document["stats"]["loads"] for document in documents] == [0, 1, 2]
    slept.clear()
    result = invoke(app, "stats", "--watch", "2")
    assert result.stdout.count("-- every 2 s, ") == 3


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "soon"])
def test_stats_watch_needs_seconds_above_0(app: Flask, seconds: str) -> None:
    result = invoke(app, "stats", "--watch", seconds)
    assert result.exit_code == 2  # click's usage error
    assert "--watch takes the seconds between refreshes, a number above 0" in result.output
