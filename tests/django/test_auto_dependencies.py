"""``depends_on="auto"`` in Django: a cached function, a cached view and a fragment depend on
exactly the tables and rows their loader read through the ORM, a related manager,
``select_related``, ``prefetch_related``, a raw cursor or a nested cached function; a write
to each invalidates them, a write elsewhere does not; after a primary-key read only a write
to that row does; async views too; the audit warns about a table an explicit ``depends_on``
does not name, and only then."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template import Context, Template
from django.test import RequestFactory
from shop.models import Category, Product, Profile, Review

from cacheplug.integration import _capture
from cacheplug_django import cache_view
from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)
loads: Counter[str] = Counter()


@pytest.fixture
def shop() -> dict[str, Any]:
    tools = Category.objects.create(name="tools")
    hammer = Product.objects.create(name="hammer", price=10)
    saw = Product.objects.create(name="saw", price=20)
    hammer.categories.add(tools)
    Review.objects.create(product=hammer, text="sturdy")
    loads.clear()
    return {"hammer": hammer, "saw": saw, "tools": tools}


def counted(name: str, body: Callable[[], Any]) -> Callable[[], Any]:
    def load() -> Any:
        loads[name] += 1
        return body()

    return load


def read(cache: DjangoCache, name: str, body: Callable[[], Any]) -> Any:
    return cache.get_or_load(name, counted(name, body), depends_on="auto")


LOADERS: dict[str, Callable[[dict[str, Any]], Callable[[], Any]]] = {
    "orm": lambda shop: lambda: [p.name for p in Product.objects.filter(price__gt=5)],
    "related manager": lambda shop: lambda: [r.text for r in shop["hammer"].reviews.all()],
    "select_related": lambda shop: (
        lambda: [(r.text, r.product.name) for r in Review.objects.select_related("product")]
    ),
    "prefetch_related": lambda shop: (
        lambda: [
            (p.name, [c.name for c in p.categories.all()])
            for p in Product.objects.prefetch_related("categories")
        ]
    ),
    "raw cursor": lambda shop: lambda: _raw("SELECT name FROM shop_category ORDER BY id"),
}
READS: dict[str, list[str]] = {  # what each loader reads, and a write to each table it read
    "orm": ["product"],
    "related manager": ["review"],
    "select_related": ["review", "product"],
    "prefetch_related": ["product", "category", "product_categories"],
    "raw cursor": ["category"],
}


def _raw(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def write(table: str, shop: dict[str, Any]) -> None:
    """A write to one table through the ORM (its hooks invalidate after the commit)."""
    if table == "product":
        Product.objects.filter(pk=shop["saw"].pk).update(price=21)
    elif table == "review":
        Review.objects.create(product=shop["saw"], text="sharp")
    elif table == "category":
        Category.objects.filter(pk=shop["tools"].pk).update(name="hand tools")
    elif table == "product_categories":
        shop["saw"].categories.add(shop["tools"])
    elif table == "profile":
        Profile.objects.create(handle="someone")


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_a_write_to_each_table_read_invalidates_and_others_do_not(
    cache: DjangoCache, shop: dict[str, Any], loader: str
) -> None:
    body = LOADERS[loader](shop)
    read(cache, loader, body)
    read(cache, loader, body)
    assert loads[loader] == 1
    write("profile", shop)  # a table it did not read
    read(cache, loader, body)
    assert loads[loader] == 1
    for table in READS[loader]:
        write(table, shop)
        read(cache, loader, body)
        assert loads[loader] == 2, f"a write to {table} did not invalidate {loader}"
        loads[loader] = 1
        read(cache, loader, body)
        assert loads[loader] == 1


def test_after_a_primary_key_read_only_that_row_invalidates(
    cache: DjangoCache, shop: dict[str, Any]
) -> None:
    hammer, saw = shop["hammer"], shop["saw"]

    def body() -> str:
        return Product.objects.get(pk=hammer.pk).name

    read(cache, "one", body)
    saw.price = 30
    saw.save()  # another row of the table
    read(cache, "one", body)
    assert loads["one"] == 1
    hammer.price = 11
    hammer.save()
    read(cache, "one", body)
    assert loads["one"] == 2


def test_a_nested_cached_function_s_reads_count_for_the_enclosing_one(
    cache: DjangoCache, shop: dict[str, Any]
) -> None:
    @cache.cached(ttl=300, depends_on="auto")
    def category_names() -> list[str]:
        loads["inner"] += 1
        return [c.name for c in Category.objects.all()]

    def page() -> str:
        return f"{Product.objects.get(pk=shop['hammer'].pk).name}:{category_names()}"

    category_names()  # cached already: the outer load meets a hit
    read(cache, "page", page)
    read(cache, "page", page)
    assert (loads["page"], loads["inner"]) == (1, 1)
    write("category", shop)  # what only the inner function read
    read(cache, "page", page)
    assert (loads["page"], loads["inner"]) == (2, 2)


def test_a_cached_view_and_a_fragment_depend_on_what_they_read(
    cache: DjangoCache, shop: dict[str, Any]
) -> None:
    @cache_view(ttl=300, depends_on="auto")
    def catalog(request: HttpRequest) -> HttpResponse:
        loads["view"] += 1
        return HttpResponse(",".join(p.name for p in Product.objects.order_by("id")))

    template = Template(
        '{% load cacheplug %}{% cacheplug "cats" 300 depends_on="auto" %}'
        "{% for c in categories %}{{ c.name }}{% endfor %}{% endcacheplug %}"
    )

    def fragment() -> str:
        loads["fragment"] += 1  # counts renders of the template, not of the fragment
        return template.render(Context({"categories": Category.objects.all()}))

    request = RequestFactory().get("/catalog/")
    assert catalog(request).content == b"hammer,saw"
    assert catalog(request).content == b"hammer,saw"
    assert loads["view"] == 1
    assert fragment() == fragment() == "tools"
    write("category", shop)  # not what the view read
    catalog(request)
    assert loads["view"] == 1
    assert fragment() == "hand tools"
    write("product", shop)
    catalog(request)
    assert loads["view"] == 2


def test_an_async_view_depends_on_what_it_read(cache: DjangoCache, shop: dict[str, Any]) -> None:
    @cache_view(ttl=300, depends_on="auto")
    async def prices(request: HttpRequest) -> HttpResponse:
        loads["async"] += 1
        names = await sync_to_async(lambda: [p.price for p in Product.objects.order_by("id")])()
        return HttpResponse(",".join(map(str, names)))

    request = RequestFactory().get("/prices/")
    call = async_to_sync(prices)
    assert call(request).content == b"10,20"
    call(request)
    assert loads["async"] == 1
    write("category", shop)
    call(request)
    assert loads["async"] == 1
    write("product", shop)
    assert call(request).content == b"10,21"
    assert loads["async"] == 2


def test_the_audit_warns_about_a_table_depends_on_does_not_name(
    cache: DjangoCache, shop: dict[str, Any], settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CACHEPLUG = {**settings.CACHEPLUG, "AUDIT_DEPENDENCIES": True}
    _capture._warned.clear()  # once per call site and table, per process

    def declared_well() -> list[str]:
        return [p.name for p in Product.objects.all()]

    def declared_badly() -> list[str]:
        return [r.text for r in Review.objects.select_related("product")]

    with caplog.at_level(logging.WARNING, logger="cacheplug.auto"):
        cache.get_or_load("well", declared_well, depends_on=[Product])
        assert not caplog.records
        cache.get_or_load("badly", declared_badly, depends_on=[Product])
    [record] = caplog.records
    assert "'shop_review'" in record.getMessage()
    assert "declared_badly" in record.getMessage()
    assert "test_auto_dependencies.py" in record.getMessage()


def test_with_the_setting_a_read_naming_nothing_is_auto(
    cache: DjangoCache, shop: dict[str, Any], settings: Any
) -> None:
    settings.CACHEPLUG = {**settings.CACHEPLUG, "AUTO_DEPENDENCIES": True}

    def body() -> list[str]:
        loads["plain"] += 1
        return [c.name for c in Category.objects.all()]

    cache.get_or_load("plain", body)
    write("category", shop)
    cache.get_or_load("plain", body)
    assert loads["plain"] == 2


def test_a_transaction_s_own_uncommitted_write_is_read_around_the_cache(
    cache: DjangoCache, shop: dict[str, Any]
) -> None:
    from django.db import transaction

    def body() -> list[int]:
        return [p.price for p in Product.objects.order_by("id")]

    assert read(cache, "prices", body) == [10, 20]
    with transaction.atomic():
        Product.objects.filter(pk=shop["hammer"].pk).update(price=12)
        assert read(cache, "prices", body) == [12, 20]  # its own write, not the cached one
    assert read(cache, "prices", body) == [12, 20]


def test_inspect_shows_what_an_entry_was_found_to_depend_on(
    cache: DjangoCache, shop: dict[str, Any]
) -> None:
    import io

    from django.core.management import call_command

    hammer = shop["hammer"]
    read(
        cache,
        "detail",
        lambda: (Product.objects.get(pk=hammer.pk).name, _raw("SELECT name FROM shop_category")),
    )
    out = io.StringIO()
    call_command("cacheplug_inspect", "detail", stdout=out)
    shown = out.getvalue()
    assert f"db:r:shop_product:{hammer.pk}" in shown
    assert "db:t:shop_category" in shown


def test_with_the_setting_what_a_read_names_is_added_to_what_it_read(
    cache: DjangoCache, shop: dict[str, Any], settings: Any
) -> None:
    settings.CACHEPLUG = {**settings.CACHEPLUG, "AUTO_DEPENDENCIES": True}

    def body() -> list[str]:
        loads["named"] += 1
        return [c.name for c in Category.objects.all()]

    cache.get_or_load("named", body, depends_on=[Profile])
    write("profile", shop)  # named, not read
    cache.get_or_load("named", body, depends_on=[Profile])
    write("category", shop)  # read, not named
    cache.get_or_load("named", body, depends_on=[Profile])
    assert loads["named"] == 3
