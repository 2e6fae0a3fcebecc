"""CachePlugMiddleware caches only what CACHEPLUG["PAGES"] allows, by path or URL name, with
the same rules as @cache_view; pages can be invalidated by path, view or URL name."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import Client
from shop import page_views
from shop.models import Product

from cacheplug_django import invalidate_pages
from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pages(cache: DjangoCache, settings: Any) -> Any:
    """Sets the page rules (on whichever store ``cache`` runs)."""
    page_views.renders.clear()

    def configure(*rules: dict[str, Any]) -> None:
        settings.CACHEPLUG = {**settings.CACHEPLUG, "PAGES": list(rules)}

    return configure


def fetch(url: str, client: Client | None = None) -> str:
    response = (client or Client()).get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_only_allow_listed_paths_are_cached(pages: Any) -> None:
    pages({"PATH": r"^/plain/catalog/", "TTL": 60, "DEPENDS_ON": ["shop.Product"]})
    Product.objects.create(name="hammer", price=1)
    assert fetch("/plain/catalog/") == fetch("/plain/catalog/") == "hammer=1"
    assert fetch("/plain/other/") == fetch("/plain/other/") == "hammer=1"
    assert page_views.renders["plain_catalog"] == 3  # /plain/other/ is not on the list
    Product.objects.update(price=2)
    assert fetch("/plain/catalog/") == "hammer=2"


def test_rules_can_name_views(pages: Any) -> None:
    pages({"VIEW": "plain-other", "TTL": 60})
    fetch("/plain/other/")
    fetch("/plain/other/")
    fetch("/plain/catalog/")
    assert page_views.renders["plain_catalog"] == 2


def test_the_middleware_sees_what_later_middleware_adds(pages: Any) -> None:
    pages({"PATH": r"^/plain/form/"})
    fetch("/plain/form/")
    fetch("/plain/form/")  # CsrfViewMiddleware set a cookie: never shared
    assert page_views.renders["plain_form"] == 2


def test_nothing_is_cached_without_rules(pages: Any) -> None:
    fetch("/plain/catalog/")
    fetch("/plain/catalog/")
    assert page_views.renders["plain_catalog"] == 2


def test_invalidate_pages_by_path_view_and_url_name(pages: Any) -> None:
    pages({"PATH": r"^/plain/"})
    for url in ("/plain/catalog/", "/plain/catalog/?page=2", "/plain/other/"):
        fetch(url)
    assert page_views.renders["plain_catalog"] == 3
    invalidate_pages(path="/plain/catalog/")  # both query strings
    for url in ("/plain/catalog/", "/plain/catalog/?page=2", "/plain/other/"):
        fetch(url)
    assert page_views.renders["plain_catalog"] == 5
    invalidate_pages(view="plain-other")
    fetch("/plain/other/")
    assert page_views.renders["plain_catalog"] == 6


def test_invalidate_pages_by_view_function(cache: DjangoCache) -> None:
    page_views.renders.clear()
    Product.objects.create(name="hammer", price=1)
    fetch("/pages/catalog/")
    fetch("/pages/catalog/")
    invalidate_pages(view=page_views.catalog)
    fetch("/pages/catalog/")
    assert page_views.renders["catalog"] == 2
    with pytest.raises(TypeError):
        invalidate_pages()


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("not a list", "must be a list"),
        ([{"TTL": 5}], "needs PATH"),
        ([{"PATH": "("}], "not a regular expression"),
        ([{"PATH": "^/", "TLL": 5}], "is not a cacheplug setting"),
        ([{"PATH": "^/", "TTL": -1}], "ttl must be a positive number"),
    ],
)
def test_bad_rules_fail_the_system_check(settings: Any, rules: Any, message: str) -> None:
    settings.CACHEPLUG = {"PAGES": rules}
    errors = [m for m in run_checks() if m.id == "cacheplug.E012"]
    assert len(errors) == 1
    assert message in errors[0].msg


def test_hits_keep_the_security_headers_of_middleware_below(pages: Any, settings: Any) -> None:
    """Placed above SecurityMiddleware, the page's hits skip it: the headers it added to the
    stored response (HSTS, nosniff, the referrer policy) must come back with them."""
    settings.MIDDLEWARE = [
        "cacheplug_django.middleware.CachePlugMiddleware",
        "django.middleware.security.SecurityMiddleware",
        *[m for m in settings.MIDDLEWARE if "CachePlugMiddleware" not in m],
    ]
    settings.SECURE_HSTS_SECONDS = 3600
    pages({"PATH": r"^/plain/catalog/", "TTL": 60})
    Product.objects.create(name="hammer", price=1)
    responses = [Client().get("/plain/catalog/", secure=True) for _ in range(2)]
    assert page_views.renders["plain_catalog"] == 1
    for response in responses:
        assert response["Strict-Transport-Security"] == "max-age=3600"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"


def test_a_decorated_view_under_a_page_rule_is_cached_once_not_deadlocked(
    pages: Any, cache: DjangoCache
) -> None:
    """The middleware and ``@cache_view`` fetch the same page: the inner one must not wait
    for the outer (it would wait for itself)."""
    pages({"PATH": r"^/pages/catalog/", "TTL": 60})
    Product.objects.create(name="hammer", price=1)
    assert fetch("/pages/catalog/") == "hammer=1"
    # One lookup, by the middleware: the decorator's, inside it, would have found the page
    # being made and waited for it (on Redis, for the lease's whole timeout).
    assert (cache.stats().misses, cache.stats().hits) == (1, 0)
    assert fetch("/pages/catalog/") == "hammer=1"
    assert (cache.stats().misses, cache.stats().hits) == (1, 1)
    assert page_views.renders["catalog"] == 1


def test_a_rule_may_depend_on_what_the_page_read(pages: Any) -> None:
    pages({"PATH": r"^/plain/catalog/", "TTL": 60, "DEPENDS_ON": "auto"})
    hammer = Product.objects.create(name="hammer", price=1)
    assert fetch("/plain/catalog/") == fetch("/plain/catalog/") == "hammer=1"
    assert page_views.renders["plain_catalog"] == 1
    hammer.price = 2
    hammer.save()  # the page read the product table: no model was named
    assert fetch("/plain/catalog/") == "hammer=2"
