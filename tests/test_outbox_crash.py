"""A write committed while the cache is cut off is not lost when its process dies: a new
process of the app (Django, and Flask with Flask-SQLAlchemy) reads the new value within 5 s,
and never the old one after it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cacheplug.testing import PostgresServer, RedisServer
from cacheplug.testing.proxy import TcpProxy

HERE = Path(__file__).resolve().parent
APPS = {
    "django": HERE / "django" / "outbox_crash_app.py",
    "flask": HERE / "flask" / "outbox_crash_app.py",
}


def run(app: Path, database: str, url: str, action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(app), database, url, action],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize("framework", sorted(APPS))
@pytest.mark.parametrize("ending", ["write-exit", "write-kill"])
def test_the_outbox_outlives_the_writer(
    kind: str,
    framework: str,
    ending: str,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    app = APPS[framework]
    database = (
        postgres_server.fresh_database(f"crash_{framework}_{ending.replace('-', '_')}")
        if kind == "postgresql"
        else str(tmp_path / "app.sqlite3")
    )
    with TcpProxy("127.0.0.1", redis_server.port) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/7"
        primed = run(app, database, url, "prime")
        assert primed.stdout.split() == ["10"], primed.stderr[-2000:]
        proxy.cut()  # the writer cannot reach Redis: its invalidation cannot land
        written = run(app, database, url, ending)
        assert "committed" in written.stdout, written.stderr[-2000:]
        if ending == "write-kill":
            assert written.returncode == -9
        proxy.heal()
        read = run(app, database, url, "read")
    within, after = (line.split() for line in read.stdout.splitlines())
    assert within, read.stderr[-2000:]
    assert within[-1] == "11", (within, read.stderr[-2000:])  # the new value within 5 s
    assert after == ["11"], (after, read.stderr[-2000:])  # and never the old one after it
