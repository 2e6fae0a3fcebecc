"""A write committed while the cache is cut off is not lost when its process dies: a new
process of the app (Django, and Flask with Flask-SQLAlchemy) reads the new value within 5 s,
and never the old one after it. Nor is an edge purge: a process of either app on PostgreSQL
that commits while its edge (a purge endpoint) is down, lives long enough for its outbox relay
to delete the rows it counts delivered, and is SIGKILLed, leaves the purge to the next process.
(Had it counted its row delivered when the store took the invalidation, its relay would have
deleted it, and the purge would have gone with the process.)"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cacheplug.testing import PostgresServer, RedisServer
from cacheplug.testing.proxy import TcpProxy

HERE = Path(__file__).resolve().parent
APPS = {
    "django": HERE / "django" / "outbox_crash_app.py",
    "flask": HERE / "flask" / "outbox_crash_app.py",
}


def run(
    app: Path, database: str, url: str, action: str, edge: str | None = None
) -> subprocess.CompletedProcess[str]:
    """One process of ``app``; ``edge``: the purge URL of its edge cache, if any."""
    return subprocess.run(
        [sys.executable, str(app), database, url, action],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **({"CRASH_EDGE_URL": edge} if edge else {})},
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


@pytest.mark.parametrize("framework", sorted(APPS))
def test_a_purge_owed_by_a_killed_process_is_sent_by_the_next_one(
    framework: str,
    redis_server: RedisServer,
    postgres_server: PostgresServer,
    purge_endpoints: Callable[[int], Any],
) -> None:
    app = APPS[framework]
    database = postgres_server.fresh_database(f"edge_crash_{framework}")
    url = redis_server.url.replace("/0", "/8" if framework == "django" else "/9")
    endpoint = purge_endpoints(0)  # not started: the edge is down
    primed = run(app, database, url, "prime", endpoint.url)
    assert primed.stdout.split() == ["10"], primed.stderr[-2000:]
    written = run(app, database, url, "write-wait-kill", endpoint.url)
    assert "committed" in written.stdout, written.stderr[-2000:]
    assert written.returncode == -9
    endpoint.start()
    relayed = run(app, database, url, "relay", endpoint.url)
    assert relayed.stdout.split() != ["0"], relayed.stderr[-2000:]
    assert endpoint.keys("Surrogate-Key"), relayed.stderr[-2000:]
