"""The README's first command runs this example: it must keep working as printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_quickstart(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "example_project" / "quickstart.py"), "--delay", "0.01", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def test_quickstart_on_the_embedded_store() -> None:
    output = run_quickstart()
    assert "cacheplug quickstart on MemoryStore" in output
    assert "database queries for 50 concurrent requests: 1" in output
    assert "Database queries: 8   cache hits:" in output
    assert "price='199.90'" in output  # the invalidated product was reloaded
    assert "['Espresso machine', 'Burr grinder']" in output  # the tag invalidation worked
    assert "database queries for the catalog page: 4" in output
    assert "'gone'" in output  # the bumped namespace's entry is orphaned


def test_quickstart_on_redis(redis_url: str) -> None:
    output = run_quickstart("--redis", redis_url)
    assert "cacheplug quickstart on RedisStore" in output
    assert "database queries for 50 concurrent requests: 1" in output
    assert "Database queries: 8   cache hits:" in output
    assert "database queries for the catalog page: 4" in output


@pytest.mark.parametrize(
    ("demo", "edit"),
    [
        ("django_shop", "After Product.save() renaming 'Grinder'"),
        ("flask_shop", "After a commit renaming 'Grinder'"),
    ],
)
def test_the_shop_demos_show_a_stampede_averted_and_a_write_reaching_the_page(
    demo: str, edit: str
) -> None:
    import os
    import re

    result = subprocess.run(
        [sys.executable, str(ROOT / "example_project" / demo / "demo.py"), "--once"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SHOP_SLOW_VIEW": "0.05", "CACHEPLUG_STORE": ""},
    )
    assert result.returncode == 0, result.stderr
    with_cache = re.search(r"with cacheplug\s+(\d+)\s+(\d+)", result.stdout)
    without = re.search(r"without\s+(\d+)\s+(\d+)", result.stdout)
    assert with_cache is not None, result.stdout
    assert without is not None, result.stdout
    assert int(with_cache.group(1)) == 1  # one view execution for 32 concurrent clients
    assert int(without.group(1)) == 32
    assert f"{edit}: the cached page shows Burr grinder" in result.stdout
