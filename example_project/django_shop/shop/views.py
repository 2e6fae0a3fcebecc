"""The shop's views: cached whole (@cache_view, or the middleware for the home page) or in
fragments (the sidebar, in ``base.html``), with writes to the models invalidating them, never
by hand."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from cacheplug_django import cache, cache_view
from shop.models import Category, Product, Review


@cache.cached(ttl=600, depends_on=[Product])
def bestsellers() -> list[str]:
    return list(Product.objects.order_by("-price_cents").values_list("name", flat=True)[:3])


def sidebar() -> dict[str, Any]:
    """The sidebar's querysets. They are lazy: they run only when the ``{% cacheplug
    "sidebar" %}`` fragment misses."""
    return {
        "sidebar_categories": Category.objects.annotate(product_count=Count("products")).order_by(
            "name"
        ),
        "top_rated": Product.objects.annotate(average_rating=Avg("reviews__rating"))
        .filter(average_rating__isnull=False)
        .order_by("-average_rating", "name")[:3],
    }


def home(request: HttpRequest) -> HttpResponse:
    # Cached whole by CachePlugMiddleware (settings.CACHEPLUG["PAGES"]).
    return render(request, "shop/home.html", {"bestsellers": bestsellers(), **sidebar()})


VIEW_RUNS = {"catalog": 0}  # how often the catalog view really ran (the demo prints it)
_VIEW_RUNS_LOCK = threading.Lock()  # "+= 1" alone can lose counts between threads


def render_catalog(request: HttpRequest, *, without_cacheplug: bool = False) -> HttpResponse:
    with _VIEW_RUNS_LOCK:
        VIEW_RUNS["catalog"] += 1
    products = Product.objects.order_by("name").prefetch_related("categories")
    context = {"products": products, "without_cacheplug": without_cacheplug, **sidebar()}
    return render(request, "shop/catalog.html", context)


# Given to the edge (Varnish) only when the settings name one (``scripts/demo.sh --edge``):
# asked for without them, the edge is refused with a warning.
EDGE = "EDGE" in settings.CACHEPLUG


# A page cached whole depends on what its fragments show too (the sidebar's reviews).
@cache_view(ttl=300, depends_on=[Product, Category, Review], edge=EDGE)
def catalog(request: HttpRequest) -> HttpResponse:
    return render_catalog(request)


def catalog_uncached(request: HttpRequest) -> HttpResponse:
    """The same page without cacheplug (the sidebar fragment too), for the demo's comparison."""
    return render_catalog(request, without_cacheplug=True)


def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Not cached whole, so a new review shows at once; the sidebar comes from its cached
    fragment."""
    product = Product.objects.filter(pk=pk).prefetch_related("categories", "reviews").first()
    if product is None:
        raise Http404("no such product")
    return render(request, "shop/product.html", {"product": product, **sidebar()})
