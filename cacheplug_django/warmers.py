"""Cache warmers: functions that fill the cache ahead of traffic, run by
``manage.py cacheplug_warm``.

::

    # shop/warmers.py (found automatically in every installed app)
    from cacheplug_django import warmer

    @warmer("bestsellers")
    def warm_bestsellers():
        for product in Product.objects.filter(bestseller=True):
            product_page(product.pk)      # a @cache.cached function: calling it fills the cache
            yield f"product:{product.pk}"  # one item per key warmed (for the progress display)

A warmer returns an iterable (one item per key it warmed, consumed as it runs), a number of
keys, or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from cacheplug.integration import Warmers

Warmer = Callable[[], object]

_warmers: Final = Warmers()


def warmer(name: str) -> Callable[[Warmer], Warmer]:
    """Register a warmer under ``name`` (names are unique across the project)."""
    return _warmers.register(name)


def registered() -> dict[str, Warmer]:
    """Every warmer, after importing each installed app's ``warmers`` module."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("warmers")
    return _warmers.all()
