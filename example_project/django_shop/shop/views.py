"""The shop's views: cached whole (@cache_view, or the middleware for the home page), with
writes to the models invalidating them, never by hand."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from cacheplug_django import cache, cache_view, instance_tag
from shop.models import Category, Product


@cache.cached(ttl=600, depends_on=[Product])
def bestsellers() -> list[str]:
    return list(Product.objects.order_by("-price_cents").values_list("name", flat=True)[:3])


def home(request: HttpRequest) -> HttpResponse:
    # The queryset is lazy: it runs only when the {% cacheplug %} fragment misses.
    categories = Category.objects.order_by("name")
    return render(
        request, "shop/home.html", {"bestsellers": bestsellers(), "categories": categories}
    )


@cache_view(ttl=300, depends_on=[Product, Category])
def catalog(request: HttpRequest) -> HttpResponse:
    products = Product.objects.order_by("name").prefetch_related("categories")
    return render(request, "shop/catalog.html", {"products": products})


@cache_view(ttl=300, tags=lambda request, pk: [instance_tag(Product, pk)])
def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    product = Product.objects.filter(pk=pk).prefetch_related("categories").first()
    if product is None:
        raise Http404("no such product")
    return render(request, "shop/product.html", {"product": product})
