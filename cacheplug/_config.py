"""Turning the options given to ``Cache`` into the objects it runs with."""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

from cacheplug._exceptions import ConfigurationError
from cacheplug._serializers import JsonSerializer, PickleSerializer, Serializer
from cacheplug._signing import Signer
from cacheplug._types import DEFAULT, DefaultType
from cacheplug.stores.base import Store

SerializerName: TypeAlias = Literal["auto", "pickle", "json", "unsafe-pickle"]


def choose_serializer(
    choice: SerializerName | Serializer, store: Store, signer: Signer | None
) -> Serializer:
    """The serializer for ``choice``, refusing unsigned pickle from a shared store.

    ``auto``: pickle when entries are signed or the store is in-process, JSON otherwise.
    """
    if not isinstance(choice, str):
        return choice
    if choice == "auto":
        return PickleSerializer() if signer is not None or not store.shared else JsonSerializer()
    if choice == "json":
        return JsonSerializer()
    if choice == "pickle":
        if signer is None and store.shared:
            raise ConfigurationError(
                "serializer='pickle' on a shared store needs a signing secret: pass "
                "secret=... so that only entries this application wrote are ever unpickled "
                "(serializer='unsafe-pickle' skips that protection)"
            )
        return PickleSerializer()
    if choice == "unsafe-pickle":
        return PickleSerializer()
    raise ConfigurationError(
        f"unknown serializer {choice!r}: use 'auto', 'pickle', 'json', 'unsafe-pickle' "
        "or a Serializer object"
    )


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
