"""What the bookstore caches: an expensive list, and a page that shows it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from cacheplug_django import cache, cache_view

computed: list[str] = []  # one item per computation, for the tests to count


@cache.cached(ttl=600, key="bestsellers")
def bestsellers() -> list[str]:
    computed.append("bestsellers")
    return ["Dune", "Emma", "Ulysses"]


def price(isbn: str) -> str:
    return cache.get_or_load(f"price:{isbn}", lambda: _price_from_supplier(isbn), ttl=60)


def _price_from_supplier(isbn: str) -> str:
    computed.append(f"price:{isbn}")
    return "12.50"


@cache_view(ttl=60)
def bestsellers_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(", ".join(bestsellers()))
