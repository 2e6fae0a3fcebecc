"""Warmers for ``manage.py cacheplug_warm``."""

from __future__ import annotations

from collections.abc import Iterator

from cacheplug_django import warmer
from shop.models import Product
from shop.views import bestsellers


@warmer("bestsellers")
def warm_bestsellers() -> int:
    bestsellers()
    return 1


@warmer("product-names")
def warm_product_names() -> Iterator[str]:
    from cacheplug_django import cache

    for product in Product.objects.order_by("pk"):
        key = f"product-name:{product.pk}"
        cache.get_or_load(key, lambda product=product: product.name, depends_on=[Product])
        yield key
