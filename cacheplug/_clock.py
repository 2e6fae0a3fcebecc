"""Time sources, injectable so that time-dependent code needs no sleeps in tests."""

from __future__ import annotations

import time as _time
from typing import Protocol


class Clock(Protocol):
    """Two readings of time: wall clock (shared across hosts) and a monotonic one."""

    def time(self) -> float:
        """Seconds since the epoch; used for values stored in the cache."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; used for in-process timeouts."""
        ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()


SYSTEM_CLOCK: Clock = SystemClock()
