"""Work that runs off the caller's path: background refreshes.

Sync callers hand jobs to a bounded thread pool, async callers to tasks of their running
loop. At most one job per key is in flight in the process (the store lease makes it one per
key across processes), a flood of keys is capped, and nothing outlives a shutdown: ``shutdown``
waits for running jobs and drops queued ones, ``ashutdown`` cancels the loop's tasks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

MAX_PENDING: Final = 1000


class Background:
    """Per-key deduplicated background jobs for one cache."""

    def __init__(self, workers: int, on_error: Callable[[str, BaseException], None]) -> None:
        self._workers = max(1, workers)
        self._on_error = on_error
        self._executor: ThreadPoolExecutor | None = None
        self._keys: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._pid = os.getpid()

    def _claim(self, key: str) -> bool:
        if self._pid != os.getpid():  # forked: the pool's threads stayed in the parent
            self._executor, self._keys, self._tasks = None, set(), set()
            self._pid = os.getpid()
        # Overloaded: readers keep the current value and a later read tries again.
        if self._closed or key in self._keys or len(self._keys) >= MAX_PENDING:
            return False
        self._keys.add(key)
        return True

    def submit(self, key: str, job: Callable[[], object]) -> None:
        """Run ``job()`` on the thread pool unless a job for ``key`` is already under way."""
        if not self._claim(key):
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="cacheplug")
        try:
            self._executor.submit(self._run, key, job)
        except RuntimeError:  # shut down meanwhile
            self._keys.discard(key)

    def _run(self, key: str, job: Callable[[], object]) -> None:
        try:
            job()
        except Exception as exc:
            self._on_error(key, exc)
        finally:
            self._keys.discard(key)

    def spawn(self, key: str, job: Callable[[], Awaitable[object]]) -> None:
        """Run ``await job()`` as a task of the running loop, once per ``key`` at a time."""
        if not self._claim(key):
            return
        task = asyncio.get_running_loop().create_task(self._arun(key, job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _arun(self, key: str, job: Callable[[], Awaitable[object]]) -> None:
        try:
            await job()
        except Exception as exc:
            self._on_error(key, exc)
        finally:
            self._keys.discard(key)

    def shutdown(self) -> None:
        """Refuse new jobs, wait for the running ones, drop the queued ones."""
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def ashutdown(self) -> None:
        """Refuse new jobs and cancel this loop's tasks."""
        self._closed = True
        loop = asyncio.get_running_loop()
        tasks = [task for task in self._tasks if task.get_loop() is loop]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
