"""What the adapters' change data capture tests share: the consumer command in a process of
its own (started, waited for, SIGTERMed, SIGKILLed), and waits with deadlines."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def wait_for(condition: Callable[[], object], timeout: float = 15.0, what: str = "it") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds (a deadline, not a
    timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.02)


def stream_caught_up(client: Any, stream: str, group: str = "cacheplug") -> Callable[[], bool]:
    """A condition for :func:`wait_for`: ``group`` has read and acknowledged all ``stream``
    holds now (a consumer that started late must not invalidate, after the test cached a
    value, what an event written before the test began named)."""
    last = client.xrevrange(stream, count=1)[0][0]

    def caught_up() -> bool:
        for found in client.xinfo_groups(stream):
            if found["name"] in (group, group.encode()):
                delivered = found["last-delivered-id"]
                return bool(delivered == last and found["pending"] == 0)
        return False

    return caught_up


class Consumer:
    """``argv`` (a consumer command) in a process of its own, its output collected."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.argv = list(argv)
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.cwd = cwd
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Consumer:
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        wait_for(self._consuming, 30, "the consumer's start")
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def _consuming(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            time.sleep(0.1)  # the rest of its output
            raise AssertionError(f"the consumer exited ({self.process.returncode}): {self.output}")
        return any(line.startswith("consuming the ") for line in self.lines)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def terminate(self) -> int:
        """SIGTERM, and the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(20)
        time.sleep(0.05)  # the reader thread takes the last lines
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


def run(argv: Sequence[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """A command run to its end: its exit code and output (stdout and stderr)."""
    result = subprocess.run(
        list(argv),
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result.returncode, result.stdout + result.stderr


def slots(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT slot_name FROM pg_replication_slots")}


def drop_slot(dsn: str, slot: str) -> None:
    """Remove ``slot`` once no consumer holds it (a killed one's WAL sender lets go soon)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                    " WHERE slot_name = %s",
                    (slot,),
                )
            return
        except psycopg.errors.ObjectInUse:
            assert time.monotonic() < deadline
            time.sleep(0.05)
