"""The examples a newcomer runs: the shop demos behind the README's first command
(``bash scripts/demo.sh``, which runs ``example_project/django_shop/demo.py``; ``--flask``
the Flask one), and the quickstart. Each runs as a user runs it, in a subprocess, and is
judged by what it prints and serves."""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EDITS = {"django_shop": "After Product.save()", "flask_shop": "After a commit"}


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


def demo_command(shop: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "example_project" / shop / "demo.py"), *args]


def demo_env(**extra: str) -> dict[str, str]:
    # The user's own CACHEPLUG_STORE must not leak in: the default demo is the embedded one.
    return {**os.environ, "CACHEPLUG_STORE": "", **extra}


def run_demo(shop: str, *args: str, **env: str) -> str:
    result = subprocess.run(
        demo_command(shop, "--once", *args),
        capture_output=True,
        text=True,
        timeout=120,
        env=demo_env(**env),
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # A stranger's first run prints no warning and no traceback (the outbox's table is
    # there, its relays stop before the demo's database goes).
    assert result.stderr == "", result.stderr
    return result.stdout


def table_row(output: str, label: str) -> tuple[int, int]:
    """The view runs and DB queries of the table's row ``label``."""
    numbers = r"\s+[\d.]+\s+[\d.]+\s+(?:[\d.]+/[\d.]+|-)$"  # p50, p99, waited (p50/max)
    row = re.search(rf"^  {label}\s+(\d+)\s+(\d+){numbers}", output, re.MULTILINE)
    assert row is not None, output
    return int(row.group(1)), int(row.group(2))


@pytest.mark.parametrize("shop", ["django_shop", "flask_shop"])
def test_the_shop_demo_shows_a_stampede_averted_and_a_write_reaching_the_page(shop: str) -> None:
    output = run_demo(shop)
    assert "(cacheplug store: MemoryStore)" in output
    runs, queries = table_row(output, "with cacheplug")
    assert runs == 1  # one view execution for 32 concurrent clients
    runs_without, queries_without = table_row(output, "without")
    assert runs_without == 32
    assert queries_without == 32 * queries  # the same page, rendered 32 times
    assert f"{EDITS[shop]} renaming 'Grinder': the cached page shows Burr grinder\n" in output


@pytest.mark.parametrize("shop", ["django_shop", "flask_shop"])
def test_on_redis_the_workers_share_one_view_execution(shop: str, redis_url: str) -> None:
    output = run_demo(shop, "--redis", redis_url, "--workers", "3")
    assert "(cacheplug store: RedisStore, 3 worker processes)" in output
    served = re.search(
        r"summed over all 3 workers; requests served by each: (\d+)/(\d+)/(\d+)", output
    )
    assert served is not None, output
    assert all(int(n) > 0 for n in served.groups())  # every worker took part in the burst
    assert sum(int(n) for n in served.groups()) == 32
    assert table_row(output, "with cacheplug")[0] == 1  # across all three processes
    assert table_row(output, "without")[0] == 32
    edited = (
        f"{EDITS[shop]} renaming 'Grinder': the cached page shows Burr grinder on all 3 workers"
    )
    assert edited in output


@contextlib.contextmanager
def serving_demo(shop: str, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The demo run until it says it keeps serving: the process and what it printed. It is
    killed after the block if the block did not stop it."""
    demo = subprocess.Popen(
        demo_command(shop, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=demo_env(),
    )
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops it."):
                break
        yield demo, "".join(lines)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_the_demo_keeps_serving_the_shop_and_its_admin_until_ctrl_c() -> None:
    with serving_demo("django_shop") as (demo, printed):
        running = re.search(r"The shop keeps running on (http://127\.0\.0\.1:\d+)/", printed)
        admin = re.search(r"Admin: \S+/admin/  user (\w+), password (\S+) ", printed)
        assert running is not None, printed
        assert admin is not None, printed
        base = running.group(1)
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

        def get(path: str, data: dict[str, str] | None = None) -> str:
            body = urllib.parse.urlencode(data).encode() if data is not None else None
            with browser.open(base + path, body, timeout=10) as response:
                return str(response.read().decode())

        assert "Burr grinder" in get("/catalog/")  # as the demo left it
        product = get("/products/1/")
        assert "Espresso machine" in product
        assert "5/5 — Cafe quality" in product  # its reviews
        assert "Top rated" in product  # the sidebar
        login = get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login)
        assert token is not None, login
        credentials = {"username": admin.group(1), "password": admin.group(2)}
        form = {
            **credentials,
            "csrfmiddlewaretoken": token.group(1),
            "next": "/admin/shop/product/?q=e",  # the named products (the list has pages)
        }
        products = get("/admin/login/", form)  # logged in, and on to the product list
        assert "Burr grinder" in products
        assert "Teapot" in products
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=30) == 0


def test_the_default_demo_needs_no_redis_package(tmp_path: Path) -> None:
    """A user who installs ``cacheplug[django]`` alone has no redis: the demo must run anyway."""
    hidden = tmp_path / "redis"
    hidden.mkdir()
    (hidden / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'redis'\", name='redis')\n"
    )
    output = run_demo("django_shop", PYTHONPATH=str(tmp_path))
    assert table_row(output, "with cacheplug")[0] == 1
