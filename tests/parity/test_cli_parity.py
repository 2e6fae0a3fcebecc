"""The same command on both adapters prints the same JSON document: ``manage.py
cacheplug_warm --json`` and ``flask cacheplug warm --json`` running the same warmers, and the
flush commands, on the session's redis-server; and in both a real Ctrl-C ends ``stats
--watch`` with status 0."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from flask import Flask

from cacheplug_django import cache as django_cache
from cacheplug_flask import CachePlug

pytestmark = pytest.mark.django_db(transaction=True)

Warmer = Callable[[], Any]
TESTS = Path(__file__).resolve().parent.parent


def warmers_for(cache: Any) -> dict[str, Warmer]:
    """The same three warmers over either adapter's cache object."""

    def answer() -> int:
        cache.set("answer", 42)
        return 1

    def keys() -> Iterator[str]:
        for i in range(12):
            cache.set(f"key:{i}", i, tags=["numbers"])
            yield f"key:{i}"

    def broken() -> None:
        raise RuntimeError("the database is on fire")

    return {"answer": answer, "broken": broken, "keys": keys}


def untimed(document: dict[str, Any]) -> dict[str, Any]:
    """A warm document without its durations (the only figures two runs may differ in)."""
    assert isinstance(document.pop("seconds"), float)
    for run in document["warmers"]:
        assert isinstance(run.pop("seconds"), float)
    return document


@pytest.fixture
def django_site(settings: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    settings.CACHEPLUG = {"STORE": redis_url, "NAMESPACE": "parity-django"}
    monkeypatch.setattr(
        "cacheplug_django.management.commands.cacheplug_warm.registered",
        lambda: warmers_for(django_cache),
    )
    yield
    django_cache.reset()


@pytest.fixture
def flask_app(redis_url: str) -> Iterator[Flask]:
    app = Flask("parity-cli")
    app.config.update(CACHEPLUG_STORE=redis_url, CACHEPLUG_NAMESPACE="parity-flask")
    app.config["SECRET_KEY"] = "parity-cli-secret"
    ext = CachePlug(app)
    for name, fn in warmers_for(ext).items():
        ext.warmer(name)(fn)
    yield app
    ext.close(app)


def django_json(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.suppress(CommandError):  # a failed warmer: the document came first
        call_command(*args, "--json", stdout=out, stderr=io.StringIO())
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def flask_json(app: Flask, *args: str) -> dict[str, Any]:
    result = app.test_cli_runner().invoke(args=["cacheplug", *args, "--json"])
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.usefixtures("django_site")
def test_the_same_warm_run_prints_the_same_document(flask_app: Flask) -> None:
    args = ("--workers", "2")
    django = untimed(django_json("cacheplug_warm", *args))
    flask = untimed(flask_json(flask_app, "warm", *args))
    assert django == flask
    assert django["keys"] == 13
    assert django["failed"] == ["broken"]
    dry_django = django_json("cacheplug_warm", "--dry-run")
    assert dry_django == flask_json(flask_app, "warm", "--dry-run")
    assert [run["name"] for run in dry_django["warmers"]] == ["answer", "broken", "keys"]


@pytest.mark.usefixtures("django_site")
def test_the_same_flush_prints_the_same_document(flask_app: Flask) -> None:
    def same(django_args: list[str], flask_args: list[str]) -> dict[str, Any]:
        django = django_json("cacheplug_flush", *django_args)
        flask = flask_json(flask_app, "flush", *flask_args)
        assert (django.pop("namespace"), flask.pop("namespace")) == (
            "parity-django",
            "parity-flask",
        )
        # The message names the namespace too (--all): the rest is the same.
        flask["message"] = flask["message"].replace("parity-flask", "parity-django")
        assert django == flask
        return django

    assert same(["--tag", "numbers", "promo"], ["--tag", "numbers", "--tag", "promo"])["tags"] == [
        "numbers",
        "promo",
    ]
    django_json("cacheplug_warm", "--only", "answer")
    flask_json(flask_app, "warm", "--only", "answer")
    flushed = same(["--key", "answer", "gone"], ["--key", "answer", "--key", "gone"])
    assert (flushed["removed"], flushed["missing"]) == (["answer"], ["gone"])
    assert same(["--all", "--yes"], ["--all", "--yes"])["flushed"] == "all"


def watch_command(adapter: str, redis_url: str, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """``stats --watch 0.1`` of ``adapter`` as a user starts it, on the test Redis."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if adapter == "django":
        (tmp_path / "watch_settings.py").write_text(
            f"from cp_settings import *\nCACHEPLUG = {{'STORE': {redis_url!r}}}\n"
        )
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(TESTS / "django")])
        env["DJANGO_SETTINGS_MODULE"] = "watch_settings"
        return [sys.executable, "-m", "django", "cacheplug_stats", "--watch", "0.1"], env
    env["PYTHONPATH"] = str(TESTS / "flask")
    database = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    factory = f"flask_shop:create_app({redis_url!r}, {database!r}, 'parity-watch')"
    flask = str(Path(sys.executable).with_name("flask"))
    return [flask, "--app", factory, "cacheplug", "stats", "--watch", "0.1"], env


def _interruptible() -> None:
    """In the child, before Python starts: SIGINT as a terminal's process has it. A run
    started in the background by a non-interactive shell (CI's can be) ignores SIGINT, the
    child inherits that, and Python then installs no KeyboardInterrupt for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("adapter", ["django", "flask"])
def test_ctrl_c_ends_a_real_watch_with_status_0(
    adapter: str, redis_url: str, tmp_path: Path
) -> None:
    """A real process on a real Redis, interrupted by SIGINT as Ctrl-C does."""
    command, env = watch_command(adapter, redis_url, tmp_path)
    with subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,  # the child has no threads yet: safe before exec
    ) as watching:
        assert watching.stdout is not None
        headers = 0
        for line in watching.stdout:
            headers += line.startswith("-- every 0.1 s, ")
            if headers == 2:  # it refreshed: now press Ctrl-C
                break
        watching.send_signal(signal.SIGINT)
        _, err = watching.communicate(timeout=60)
    assert headers == 2, err
    assert watching.returncode == 0, err
    assert "Traceback" not in err
    assert "Aborted" not in err  # click's word for a Ctrl-C it caught itself
