"""Warmers of the test shop (found by cacheplug_warm's autodiscovery)."""

from __future__ import annotations

from collections.abc import Iterator

from cacheplug_django import cache, warmer
from shop.models import Product


@warmer("products")
def warm_products() -> Iterator[str]:
    for product in Product.objects.order_by("pk"):
        key = f"product-name:{product.pk}"
        cache.get_or_load(key, lambda product=product: product.name, depends_on=[Product])
        yield key


@warmer("answer")
def warm_answer() -> int:
    cache.set("answer", 42)
    return 1


@warmer("broken")
def warm_broken() -> None:
    raise RuntimeError("the database is on fire")
