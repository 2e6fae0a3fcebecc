"""A write committed while the cache is cut off is not lost when its process dies: a new
process of the app reads the new value within seconds, and never the old one after it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cacheplug.testing import RedisServer
from cacheplug.testing.proxy import TcpProxy

APP = Path(__file__).with_name("outbox_crash_app.py")


def run(database: Path, url: str, action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(APP), str(database), url, action],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("ending", ["write-exit", "write-kill"])
def test_the_outbox_outlives_the_writer(
    ending: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    database = tmp_path / "app.sqlite3"
    with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/7"
        primed = run(database, url, "prime")
        assert primed.stdout.split() == ["10"], primed.stderr[-2000:]
        proxy.cut()  # the writer cannot reach Redis: its invalidation cannot land
        written = run(database, url, ending)
        assert "committed" in written.stdout, written.stderr[-2000:]
        if ending == "write-kill":
            assert written.returncode == -9
        proxy.heal()
        read = run(database, url, "read")
    seen = [int(value) for value in read.stdout.split()]
    assert seen, read.stderr[-2000:]
    assert seen[-1] == 11, (seen, read.stderr[-2000:])
    assert 10 not in seen[seen.index(11) :]  # never the old value once the new one was read
