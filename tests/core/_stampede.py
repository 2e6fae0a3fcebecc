"""Concurrent callers of one key, shared by the tests of the metrics and traces."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cacheplug import Cache


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


def stampede(cache: Cache, key: str, callers: int) -> tuple[list[Any], int]:
    """``callers`` threads call ``cache.get_or_load(key, ...)`` at once; the loader is held
    until all but the first joined its call. Their results, and how often the loader ran."""
    release = threading.Event()
    calls: list[int] = []
    joined_before = cache.stats().coalesced

    def load() -> str:
        calls.append(1)
        assert release.wait(10)
        return "v"

    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_load(key, load)))
        for _ in range(callers)
    ]
    for thread in threads:
        thread.start()
    wait_until(
        lambda: cache.stats().coalesced - joined_before == callers - 1,
        "every other caller joined the first one's load",
    )
    release.set()
    for thread in threads:
        thread.join(10)
    return results, len(calls)
