"""The example shop served in a subprocess for the browser tests (``shop_server.py``)."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Shop:
    """The example shop served in a subprocess: its base URL and the test accounts'
    password."""

    def __init__(self, url: str, password: str, shopper_session: str) -> None:
        self.url = url
        self.password = password
        self.shopper_session = shopper_session
        """A session cookie value signed in as ``shopper`` (not staff)."""


@contextlib.contextmanager
def serving(script: str, environment: dict[str, str], lines: int) -> Iterator[list[str]]:
    """``script`` (of this folder) run until the block ends: the first ``lines`` lines it
    printed, the last a URL."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        printed = [process.stdout.readline().strip() for _ in range(lines)]
        assert printed[-1].startswith("http://"), f"{script} did not start ({process.poll()})"
        yield printed
    finally:
        process.stdin.close()  # the server's cue to stop
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_shop(tmp_path: Path, **env: str) -> Iterator[Shop]:
    """The Django shop (``shop_server.py``)."""
    password = secrets.token_urlsafe(12)
    environment = {
        **os.environ,
        "DJANGO_SHOP_DB": str(tmp_path / "shop.sqlite3"),
        "SHOP_TEST_PASSWORD": password,
        **env,
    }
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    with serving("shop_server.py", environment, 2) as (session, url):
        yield Shop(url, password, session)


def serve_flask_shop(tmp_path: Path) -> Iterator[str]:
    """The Flask shop (``flask_shop_server.py``): its base URL."""
    environment = {**os.environ, "FLASK_SHOP_DB": f"sqlite:///{tmp_path / 'shop.sqlite3'}"}
    with serving("flask_shop_server.py", environment, 1) as (url,):
        yield url
