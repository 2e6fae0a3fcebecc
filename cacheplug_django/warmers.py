"""Cache warmers: functions that fill the cache ahead of traffic, run by
``manage.py cacheplug_warm``.

::

    # shop/warmers.py (found automatically in every installed app)
    from cacheplug_django import warmer

    @warmer("bestsellers")
    def warm_bestsellers():
        for product in Product.objects.filter(bestseller=True):
            product_page(product.pk)      # a @cache.cached function: calling it fills the cache
            yield f"product:{product.pk}"  # one item per key warmed (for the progress bar)

A warmer returns an iterable (one item per key it warmed, consumed as it runs), a number of
keys, or ``None``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Warmer = Callable[[], Any]

_registry: dict[str, Warmer] = {}
_lock = threading.Lock()


def warmer(name: str) -> Callable[[Warmer], Warmer]:
    """Register a warmer under ``name`` (names are unique across the project)."""
    if not isinstance(name, str) or not name:
        raise TypeError("warmer() needs a name: @warmer('bestsellers')")

    def register(fn: Warmer) -> Warmer:
        with _lock:
            existing = _registry.get(name)
            if existing is not None and existing is not fn and _label(existing) != _label(fn):
                raise ValueError(f"two warmers named {name!r}: {_label(existing)} and {_label(fn)}")
            _registry[name] = fn
        return fn

    return register


def registered() -> dict[str, Warmer]:
    """Every warmer, after importing each installed app's ``warmers`` module."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("warmers")
    with _lock:
        return dict(sorted(_registry.items()))


def _label(fn: Warmer) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
