"""What the throwaway Redis set-ups (``RedisServer``, ``SentinelSetup``,
``RedisClusterSetup``) do alike: their ``with`` statement, stopping their processes, and
waiting for them to get somewhere."""

from __future__ import annotations

import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Self


class Throwaway(ABC):
    """``with setup:`` starts it, and stops it then discards what it left behind (its files)
    at the end: a stopped set-up keeps its files so that ``start()`` can bring it back."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def discard(self) -> None:
        """Remove what the stopped set-up left behind."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.discard()


class OneProcess(Throwaway):
    """A set-up that is one server process (``_process``, ``None`` until started)."""

    _process: subprocess.Popen[bytes] | None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self.running and self._process is not None else None


def stop_processes(processes: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process, then wait for each (5 s; SIGKILL one that does not end): all
    are told first, so that they shut down together rather than one after the other."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(condition: Callable[[], bool], timeout: float, every: float) -> bool:
    """Whether ``condition()`` came true within ``timeout`` seconds (asked every ``every``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False
