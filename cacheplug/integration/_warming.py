"""Warmers that fail when the cache could not store what they loaded.

A warmer fills the cache through ``get_or_load``/``set``, which fail open: with the store
down they still return the loaded values, and the warmer would report its keys as warmed.
:func:`store_checked` wraps each warmer so that it fails instead when the cache's store failed
(or its circuit breaker was open) while it ran; the command then reports it among the failed
warmers and exits non-zero (``manage.py cacheplug_warm``, ``flask cacheplug warm``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from numbers import Integral
from typing import TYPE_CHECKING, Any

from cacheplug.exceptions import CacheUnavailable

if TYPE_CHECKING:
    from cacheplug.cache import Cache

__all__ = ["store_checked"]

Warmer = Callable[[], Any]


def store_checked(warmers: Mapping[str, Warmer], cache: Cache) -> dict[str, Warmer]:
    """``warmers``, each raising :class:`~cacheplug.CacheUnavailable` at its end if ``cache``
    counted a failed store call, or had its circuit breaker open, while it ran. (Warmers run
    side by side share the counter: with the store down, every one of them fails.)"""
    return {name: _checked(fn, cache) for name, fn in warmers.items()}


def _checked(fn: Warmer, cache: Cache) -> Warmer:
    def run() -> Any:
        before = cache.stats().errors
        result = fn()
        if isinstance(result, Iterable) and not isinstance(result, str | bytes | Integral):
            return _consumed(result, cache, before)  # the keys are warmed as it is consumed
        _raise_if_failed(cache, before)
        return result

    return run


def _consumed(items: Iterable[Any], cache: Cache, before: int) -> Iterator[Any]:
    yield from items
    _raise_if_failed(cache, before)


def _raise_if_failed(cache: Cache, before: int) -> None:
    failed = cache.stats().errors - before
    if failed > 0 or cache.breaker.tripped:
        raise CacheUnavailable(
            "the cache store could not be reached while this warmer ran "
            f"({failed} failed store call(s)"
            f"{', circuit breaker open' if cache.breaker.tripped else ''}): what it loaded "
            "was not cached. Check that the store is up, then run the warmer again."
        )
