"""``flask cacheplug ...`` as a user runs it: a subprocess against the example Flask shop
(example_project/flask_shop) on a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

SHOP = Path(__file__).resolve().parents[2] / "example_project" / "flask_shop"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def flask(tmp_path: Path, redis_url: str) -> Run:
    env = {
        **os.environ,
        "PYTHONPATH": str(SHOP),
        "FLASK_SHOP_DB": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "CACHEPLUG_STORE": redis_url,
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        if args[0] == "python":  # code to run inside the app's context
            code = "from flask_shop import create_app\nwith create_app().app_context():\n"
            code += "".join(f"    {line}\n" for line in args[1].split("; "))
            command = [sys.executable, "-c", code]
        else:
            command = [sys.executable, "-m", "flask", "--app", "flask_shop", *args]
        return subprocess.run(
            command,
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def test_warm_then_inspect_in_another_process(flask: Run) -> None:
    seeded = flask(
        "python",
        "from flask_shop.extensions import db; from flask_shop.models import Product; "
        "db.session.add(Product(name='kettle', price_cents=900)); db.session.commit()",
    )
    assert seeded.returncode == 0, seeded.stderr
    warmed = flask("cacheplug", "warm")
    assert warmed.returncode == 0, warmed.stderr
    assert "warmed 2 key(s) with 2 warmer(s)" in warmed.stdout
    inspected = flask("cacheplug", "inspect", "product-name:1", "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["state"] == "fresh"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("warm", "--only", "nope"), "unknown warmer(s): nope"),
        (("flush", "--model", "Nope"), "nothing was flushed"),
        (("flush", "--all"), "pass --yes when not at a terminal"),
        (("inspect", "nope"), "no entry under 'nope'"),
    ],
)
def test_bad_input_gets_a_message_and_a_failing_exit(
    flask: Run, args: tuple[str, ...], message: str
) -> None:
    assert flask("cacheplug", "warm", "--only", "bestsellers").returncode == 0
    result = flask("cacheplug", *args)
    assert result.returncode != 0
    assert message in result.stderr
    still = flask(
        "python",
        "from flask_shop.extensions import cache; from flask_shop.views import bestsellers; "
        "print(cache.cache.inspect(bestsellers.key_for()).state)",
    )
    assert still.returncode == 0, still.stderr
    assert still.stdout.strip().splitlines()[-1] == "fresh"
