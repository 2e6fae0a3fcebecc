"""Checks of the options given to ``Cache``: TTLs, seconds, fractions."""

from __future__ import annotations

import math

from cacheplug._types import DEFAULT, DefaultType
from cacheplug.exceptions import ConfigurationError


def ttl_seconds(ttl: float | DefaultType | None, default: float | None) -> float | None:
    """Validate a TTL; ``DEFAULT`` gives ``default``, ``None`` or +inf means no expiry."""
    if ttl is DEFAULT:
        return default
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise TypeError(f"ttl must be seconds (int or float) or None, not {type(ttl).__name__}")
    if math.isinf(ttl) and ttl > 0:
        return None
    if not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds or None, not {ttl!r}")
    return float(ttl)


def ttl_ms(seconds: float | None) -> int | None:
    """Whole milliseconds for the store, rounded up so that a TTL is never shortened to 0."""
    return None if seconds is None else max(1, math.ceil(seconds * 1000))


def non_negative(name: str, value: float) -> float:
    """``value`` as seconds, refusing anything but a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigurationError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return float(value)


def positive(name: str, value: float) -> float:
    """``value`` as seconds, refusing anything but a number > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def fraction_or_none(value: float | None) -> float | None:
    """A ``refresh_ahead`` fraction, strictly between 0 and 1, or ``None``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigurationError(
            f"refresh_ahead must be a fraction of the ttl between 0 and 1, not {value!r}"
        )
    return float(value)
