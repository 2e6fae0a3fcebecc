"""Warmers for ``flask cacheplug warm``."""

from __future__ import annotations

from collections.abc import Iterator

from flask_shop.extensions import cache, db
from flask_shop.models import Product
from flask_shop.views import bestsellers


@cache.warmer("bestsellers")
def warm_bestsellers() -> int:
    bestsellers()
    return 1


@cache.warmer("product-names")
def warm_product_names() -> Iterator[int]:
    for product in db.session.scalars(db.select(Product)):
        cache.get_or_load(
            f"product-name:{product.id}", lambda p=product: p.name, depends_on=[Product]
        )
        yield product.id
