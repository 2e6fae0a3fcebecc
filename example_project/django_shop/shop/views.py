"""The shop's views: cached whole (@cache_view, or the middleware for the home page), with
writes to the models invalidating them, never by hand."""

from __future__ import annotations

import os
import time

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


VIEW_RUNS = {"catalog": 0}  # how often the catalog view really ran (the demo prints it)


def render_catalog(request: HttpRequest) -> HttpResponse:
    VIEW_RUNS["catalog"] += 1
    time.sleep(float(os.environ.get("SHOP_SLOW_VIEW", "0")))  # the demo's "slow query"
    products = Product.objects.order_by("name").prefetch_related("categories")
    return render(request, "shop/catalog.html", {"products": products})


@cache_view(ttl=300, depends_on=[Product, Category])
def catalog(request: HttpRequest) -> HttpResponse:
    return render_catalog(request)


def catalog_uncached(request: HttpRequest) -> HttpResponse:
    """The same page without cacheplug, for the demo's comparison."""
    return render_catalog(request)


@cache_view(ttl=300, tags=lambda request, pk: [instance_tag(Product, pk)])
def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    product = Product.objects.filter(pk=pk).prefetch_related("categories").first()
    if product is None:
        raise Http404("no such product")
    return render(request, "shop/product.html", {"product": product})
