"""What the benchmarks share: the cached value and the signing secret."""

from __future__ import annotations

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
