"""Named sentinels and small shared types.

A cached ``None`` is a legitimate value, so "nothing there" and "use the configured default"
get sentinels of their own instead of overloading ``None``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, Final, Literal, TypeAlias


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


class _Default(enum.Enum):
    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"


class _Marker(enum.Enum):
    """The core's private sentinels: compared by identity, never handed to a caller."""

    FAILED = "FAILED"
    BYPASS = "BYPASS"
    NOTHING = "NOTHING"

    def __repr__(self) -> str:
        return self.value


MISSING: Final = _Missing.MISSING
"""Returned by low-level lookups when there is no usable entry."""

DEFAULT: Final = _Default.DEFAULT
"""Stands for "the value configured on the cache" (for example ``default_ttl``)."""

FAILED: Final[Any] = _Marker.FAILED
"""A store call that failed, or that the circuit breaker refused."""

BYPASS: Final[Any] = _Marker.BYPASS
"""What a read's first step answers when this read must skip the cache (pending writes)."""

NOTHING: Final[Any] = _Marker.NOTHING
"""What the L1 tier answers for "not here" (a cached ``None`` is a value)."""

BOOKKEEPING_TTL_MS: Final = 86_400_000
"""How long the store keeps a key the cache writes for its own bookkeeping (a version key a
bump creates, a write counter), in milliseconds: a day, far longer than any load or lease that
reads it, after which it expires instead of staying forever."""

DefaultType: TypeAlias = Literal[_Default.DEFAULT]

Ttl: TypeAlias = "float | DefaultType | None"
"""Seconds until expiry; ``None`` means no expiry; ``DEFAULT`` means the cache's default."""

Tags: TypeAlias = "str | Iterable[str] | None"
"""Tags of an entry: one name, several, or none."""
