"""A manually advanced clock for tests of TTLs, breakers and early recomputation."""

from __future__ import annotations

import threading


class FakeClock:
    """A clock that moves only when told to; both readings advance together.

    ``FakeClock(start=1_000.0)``; ``clock.advance(5)`` moves time forward five seconds.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds
