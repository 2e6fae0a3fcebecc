"""What the benchmarks share: the cached value, the signing secret, the L1-hit bound's read."""

from __future__ import annotations

from typing import Any

VALUE = {
    "id": 42,
    "name": "Espresso machine, stainless steel",
    "price": "249.90",
    "tags": ["kitchen", "coffee", "steel"],
    "stock": 17,
    "rating": 4.6,
    "description": "A compact machine with a 15 bar pump and a steam wand. " * 2,
}
"""A typical cached row: about 400 bytes pickled."""

SECRET = "benchmark-secret-key"


def held_page(cache: Any, key: str, page: tuple[int, Any, bytes]) -> tuple[int, Any, bytes]:
    """The L1-hit bound views' read: ``page`` as ``cache`` (a cacheplug cache with the L1
    tier) holds it under ``key``, tagged so that its versions are checked on every hit;
    stored first if it is not held."""
    found: tuple[int, Any, bytes] | None = cache.get(key)
    if found is None:
        cache.set(key, page, ttl=300, tags="bench:floor-hit")
        return page
    return found
