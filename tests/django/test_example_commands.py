"""The management commands as a user runs them: ``python -m django ...`` in a subprocess,
against the example shop (example_project/django_shop) on a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SHOP = Path(__file__).resolve().parents[2] / "example_project" / "django_shop"


@pytest.fixture
def django(tmp_path: Path, redis_url: str):  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "PYTHONPATH": str(SHOP),
        "DJANGO_SETTINGS_MODULE": "django_shop.settings",
        "DJANGO_SHOP_DB": str(tmp_path / "shop.sqlite3"),
        "CACHEPLUG_STORE": redis_url,
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )

    migrated = run("migrate", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr
    return run


def test_warm_then_inspect_in_another_process(django) -> None:  # type: ignore[no-untyped-def]
    seeded = django(
        "shell",
        "-c",
        "from shop.models import Product; Product.objects.create(name='kettle', price_cents=900)",
    )
    assert seeded.returncode == 0, seeded.stderr
    warmed = django("cacheplug_warm")
    assert warmed.returncode == 0, warmed.stderr
    assert "warmed 2 key(s) with 2 warmer(s)" in warmed.stdout
    inspected = django("cacheplug_inspect", "product-name:1", "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["state"] == "fresh"
    stats = django("cacheplug_stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["namespace"] == "shop"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cacheplug_warm", "--only", "nope"), "unknown warmer(s): nope"),
        (("cacheplug_flush", "--model", "shop.Nope"), "nothing was flushed"),
        (("cacheplug_flush", "--all"), "pass --yes when not at a terminal"),
        (("cacheplug_flush",), "one of the arguments"),
        (("cacheplug_inspect", "nope"), "no entry under 'nope'"),
    ],
)
def test_bad_input_gets_a_message_and_a_failing_exit(  # type: ignore[no-untyped-def]
    django, args: tuple[str, ...], message: str
) -> None:
    seeded = django("cacheplug_warm", "--only", "bestsellers")
    assert seeded.returncode == 0, seeded.stderr
    result = django(*args)
    assert result.returncode != 0
    assert message in result.stderr
    # Nothing was flushed: what the warmer stored is still there.
    still = django(
        "shell",
        "-c",
        "from cacheplug_django import cache; from shop.views import bestsellers; "
        "print(cache.core.inspect(bestsellers.key_for()).state)",
    )
    assert still.returncode == 0, still.stderr
    assert still.stdout.strip().splitlines()[-1] == "fresh"
