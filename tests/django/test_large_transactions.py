"""A transaction that writes more rows than an entry can carry tags (64) still invalidates
what it wrote, and the commits after it still invalidate theirs."""

from __future__ import annotations

import pytest
from django.db import transaction
from shop.models import Product

from cacheplug_django import instance_tag
from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)


def price(cache: DjangoCache, pk: int) -> int:
    def load() -> int:
        return int(Product.objects.get(pk=pk).price)

    return int(cache.get_or_load(f"price:{pk}", load, tags=[instance_tag(Product, pk)]))


def test_a_commit_naming_hundreds_of_rows_invalidates_them_all(cache: DjangoCache) -> None:
    products = [Product.objects.create(name=f"p{i}", price=1) for i in range(100)]
    first, last = products[0].pk, products[-1].pk
    assert (price(cache, first), price(cache, last)) == (1, 1)
    with transaction.atomic():
        for product in products:  # one statement a row: a row tag each
            Product.objects.filter(pk=product.pk).update(price=2)
    assert (price(cache, first), price(cache, last)) == (2, 2)
    Product.objects.filter(pk=first).update(price=3)  # the next commit's invalidation lands too
    assert price(cache, first) == 3
