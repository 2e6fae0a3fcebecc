"""Keeping a failing store from hurting the application: circuit breaker, quiet logging."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("cacheplug")


class CircuitBreaker:
    """Stops calling a store after consecutive failures, until a probe succeeds.

    Closed: every call goes through. After ``failure_threshold`` consecutive failures it opens
    for ``reset_timeout`` seconds: calls are refused without touching the store. Then it lets
    exactly one call through (the probe); success closes it, failure opens it again.
    """

    __slots__ = (
        "_clock",
        "_failures",
        "_lock",
        "_open_until",
        "_probing",
        "failure_threshold",
        "reset_timeout",
        "tripped",
    )

    def __init__(
        self,
        failure_threshold: int = 3,
        reset_timeout: float = 2.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if failure_threshold < 1 or reset_timeout <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout > 0")
        import time

        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock or time.monotonic
        self._failures = 0
        self._open_until = 0.0
        self._probing = False
        self._lock = threading.Lock()
        self.tripped = False
        """False while no failure is outstanding: callers may skip ``allow``/``record_success``
        (one attribute read on the hot path instead of two calls)."""

    @property
    def is_open(self) -> bool:
        """True while calls are being refused (the probe not yet allowed)."""
        return self._open_until > 0.0 and self._clock() < self._open_until

    def allow(self) -> bool:
        """May the next call go to the store?"""
        if self._open_until == 0.0:
            return True
        if self._clock() < self._open_until:
            return False
        with self._lock:
            if self._probing:
                return False
            self._probing = True
            return True

    def record_success(self) -> None:
        """The call went through: close the breaker."""
        if self.tripped:
            with self._lock:
                self._failures = 0
                self._open_until = 0.0
                self._probing = False
                self.tripped = False

    def record_failure(self) -> None:
        """The call failed: count it, and open the breaker past the threshold."""
        with self._lock:
            self.tripped = True
            self._failures += 1
            if self._probing or self._failures >= self.failure_threshold:
                self._open_until = self._clock() + self.reset_timeout
                self._probing = False


class BurstLogger:
    """Logs the first event of a burst and counts the rest.

    A burst ends after ``quiet_seconds`` without events; the next event is logged again,
    with how many were suppressed since the last message.
    """

    __slots__ = ("_clock", "_last", "_lock", "_suppressed", "quiet_seconds")

    def __init__(self, quiet_seconds: float = 30.0, clock: Callable[[], float] | None = None):
        import time

        self.quiet_seconds = quiet_seconds
        self._clock = clock or time.monotonic
        self._last = -float("inf")
        self._suppressed = 0
        self._lock = threading.Lock()

    def warning(self, message: str, exc: BaseException | None = None) -> bool:
        """Log ``message`` unless a burst is under way; True when it was logged."""
        with self._lock:
            now = self._clock()
            quiet = now - self._last > self.quiet_seconds
            self._last = now
            if not quiet:
                self._suppressed += 1
                return False
            suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            message += f" ({suppressed} similar events suppressed since the last message)"
        logger.warning(message, exc_info=exc)
        return True
