"""Views whose output is cached through cacheplug_django.cache."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from cacheplug_django import cache, instance_tag
from shop.models import ArchivedOrder, Place, Product, Restaurant


def catalog(request: HttpRequest) -> HttpResponse:
    """Every product with its price and categories."""

    def render() -> str:
        lines = []
        for product in Product.objects.order_by("name").prefetch_related("categories"):
            names = ",".join(sorted(c.name for c in product.categories.all()))
            lines.append(f"{product.name}={product.price}[{names}]")
        return "\n".join(lines)

    return HttpResponse(cache.get_or_load("catalog", render, depends_on=[Product]))


def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One product, tagged with its row only."""

    def render() -> str:
        product = Product.objects.filter(pk=pk).first()
        if product is None:
            return "missing"
        names = ",".join(sorted(c.name for c in product.categories.all()))
        return f"{product.name}={product.price}[{names}]"

    text = cache.get_or_load(f"product:{pk}", render, tags=[instance_tag(Product, pk)])
    return HttpResponse(text)


def places(request: HttpRequest) -> HttpResponse:
    def render() -> str:
        rows = [f"{p.name}" for p in Place.objects.order_by("name")]
        rows += [f"{r.name}:pizza={r.serves_pizza}" for r in Restaurant.objects.order_by("name")]
        return "\n".join(rows)

    return HttpResponse(cache.get_or_load("places", render, depends_on=[Restaurant]))


def restaurant_detail(request: HttpRequest, pk: int) -> HttpResponse:
    def render() -> str:
        r = Restaurant.objects.filter(pk=pk).first()
        return "missing" if r is None else f"{r.name}:pizza={r.serves_pizza}"

    text = cache.get_or_load(f"restaurant:{pk}", render, tags=[instance_tag(Restaurant, pk)])
    return HttpResponse(text)


def archive(request: HttpRequest) -> HttpResponse:
    def render() -> str:
        return ",".join(o.reference for o in ArchivedOrder.objects.order_by("reference"))

    return HttpResponse(cache.get_or_load("archive", render, depends_on=["shop.ArchivedOrder"]))
