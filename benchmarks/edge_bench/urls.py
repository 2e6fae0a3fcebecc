"""One page: the catalog, cached by cacheplug and given to the edge."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from shop.models import Product

from cacheplug_django import cache_view


@cache_view(ttl=300, depends_on=[Product], edge=True)
def catalog(request: HttpRequest) -> HttpResponse:
    rows = "".join(
        f"<li>{name}: {price}</li>"
        for name, price in Product.objects.order_by("name").values_list("name", "price")
    )
    return HttpResponse(f"<!doctype html><title>Catalog</title><ul>{rows}</ul>")


urlpatterns = [path("catalog/", catalog)]
