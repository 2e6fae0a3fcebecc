"""Every ORM write path invalidates the cached views that depend on it: the next request
shows the new data, never the old. Transactions: invalidations wait for the commit, a
rollback (of a savepoint too) invalidates nothing that matters, and the writer's own reads
inside the transaction bypass the cache."""

from __future__ import annotations

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from shop.models import ArchivedOrder, Category, CheapProduct, Place, Product, Restaurant

from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other"])


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def shop(cache: DjangoCache, client: Client) -> dict[str, Product]:
    """Two products and two categories, with the catalog and both detail pages cached."""
    tools = Category.objects.create(name="tools")
    Category.objects.create(name="toys")
    hammer = Product.objects.create(name="hammer", price=10)
    saw = Product.objects.create(name="saw", price=20)
    hammer.categories.add(tools)
    for url in ("/catalog/", f"/products/{hammer.pk}/", f"/products/{saw.pk}/"):
        page(client, url)
    assert cache.stats().hits == 0
    assert page(client, "/catalog/") == "hammer=10[tools]\nsaw=20[]"
    assert cache.stats().hits == 1  # served from the cache: the writes below must reach it
    return {"hammer": hammer, "saw": saw}


def test_save(shop: dict[str, Product], client: Client) -> None:
    hammer = shop["hammer"]
    hammer.price = 11
    hammer.save()
    assert page(client, "/catalog/") == "hammer=11[tools]\nsaw=20[]"
    assert page(client, f"/products/{hammer.pk}/") == "hammer=11[tools]"


def test_save_leaves_other_rows_entries_alone(
    shop: dict[str, Product], client: Client, cache: DjangoCache
) -> None:
    saw = shop["saw"]
    saw.price = 21
    saw.save()
    hits = cache.stats().hits
    assert page(client, f"/products/{shop['hammer'].pk}/") == "hammer=10[tools]"
    assert cache.stats().hits == hits + 1  # the hammer's page did not depend on the saw
    assert page(client, f"/products/{saw.pk}/") == "saw=21[]"


def test_create(shop: dict[str, Product], client: Client) -> None:
    Product.objects.create(name="axe", price=5)
    assert page(client, "/catalog/").startswith("axe=5[]\n")


def test_create_of_a_row_cached_as_missing(shop: dict[str, Product], client: Client) -> None:
    assert page(client, "/products/999/") == "missing"
    Product.objects.create(pk=999, name="drill", price=99)
    assert page(client, "/products/999/") == "drill=99[]"


def test_delete(shop: dict[str, Product], client: Client) -> None:
    hammer_pk = shop["hammer"].pk
    shop["hammer"].delete()
    assert page(client, "/catalog/") == "saw=20[]"
    assert page(client, f"/products/{hammer_pk}/") == "missing"


def test_queryset_update(shop: dict[str, Product], client: Client) -> None:
    Product.objects.filter(price__gte=10).update(price=1)
    assert page(client, "/catalog/") == "hammer=1[tools]\nsaw=1[]"
    assert page(client, f"/products/{shop['hammer'].pk}/") == "hammer=1[tools]"


def test_queryset_update_by_key(shop: dict[str, Product], client: Client) -> None:
    Product.objects.filter(pk=shop["saw"].pk).update(name="jigsaw")
    assert page(client, f"/products/{shop['saw'].pk}/") == "jigsaw=20[]"
    assert page(client, "/catalog/") == "hammer=10[tools]\njigsaw=20[]"


def test_queryset_delete(shop: dict[str, Product], client: Client) -> None:
    Product.objects.filter(name="saw").delete()
    assert page(client, "/catalog/") == "hammer=10[tools]"
    assert page(client, f"/products/{shop['saw'].pk}/") == "missing"


def test_bulk_create(shop: dict[str, Product], client: Client) -> None:
    Product.objects.bulk_create([Product(name="awl", price=1), Product(pk=998, name="vise")])
    assert page(client, "/catalog/") == "awl=1[]\nhammer=10[tools]\nsaw=20[]\nvise=0[]"
    assert page(client, "/products/998/") == "vise=0[]"


def test_bulk_update(shop: dict[str, Product], client: Client) -> None:
    hammer, saw = shop["hammer"], shop["saw"]
    hammer.price, saw.price = 12, 22
    Product.objects.bulk_update([hammer, saw], ["price"])
    assert page(client, "/catalog/") == "hammer=12[tools]\nsaw=22[]"
    assert page(client, f"/products/{saw.pk}/") == "saw=22[]"


@pytest.mark.parametrize(
    "change",
    [
        lambda hammer, saw, tools, toys: saw.categories.add(toys),
        lambda hammer, saw, tools, toys: toys.products.add(saw),
        lambda hammer, saw, tools, toys: hammer.categories.remove(tools),
        lambda hammer, saw, tools, toys: tools.products.remove(hammer),
        lambda hammer, saw, tools, toys: hammer.categories.clear(),
        lambda hammer, saw, tools, toys: tools.products.clear(),
        lambda hammer, saw, tools, toys: hammer.categories.set([toys]),
    ],
    ids=["add", "reverse-add", "remove", "reverse-remove", "clear", "reverse-clear", "set"],
)
def test_many_to_many(shop: dict[str, Product], client: Client, change: object) -> None:
    hammer, saw = shop["hammer"], shop["saw"]
    tools, toys = Category.objects.get(name="tools"), Category.objects.get(name="toys")
    change(hammer, saw, tools, toys)  # type: ignore[operator]
    expected = {
        p.pk: f"{p.name}={p.price}[{','.join(sorted(c.name for c in p.categories.all()))}]"
        for p in Product.objects.all()
    }
    assert page(client, f"/products/{hammer.pk}/") == expected[hammer.pk]
    assert page(client, f"/products/{saw.pk}/") == expected[saw.pk]
    assert page(client, "/catalog/") == "\n".join(expected[p.pk] for p in (hammer, saw))


def test_raw_sql(shop: dict[str, Product], client: Client) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE shop_product SET price = 7 WHERE name = 'saw'")
    assert page(client, f"/products/{shop['saw'].pk}/") == "saw=7[]"
    with connection.cursor() as cursor:
        cursor.execute("UPDATE shop_product SET price = %s WHERE id = %s", [8, shop["hammer"].pk])
    assert page(client, f"/products/{shop['hammer'].pk}/") == "hammer=8[tools]"
    assert page(client, "/catalog/") == "hammer=8[tools]\nsaw=7[]"


def test_proxy_model_writes_reach_the_concrete_models_entries(
    shop: dict[str, Product], client: Client
) -> None:
    cheap = CheapProduct.objects.get(pk=shop["hammer"].pk)
    cheap.price = 3
    cheap.save()
    assert page(client, f"/products/{cheap.pk}/") == "hammer=3[tools]"
    assert page(client, "/catalog/") == "hammer=3[tools]\nsaw=20[]"


def test_multi_table_inheritance(cache: DjangoCache, client: Client) -> None:
    pizzeria = Restaurant.objects.create(name="luigi", serves_pizza=True)
    Place.objects.create(name="park")
    assert page(client, "/places/") == "luigi\npark\nluigi:pizza=True"
    assert page(client, f"/restaurants/{pizzeria.pk}/") == "luigi:pizza=True"
    Place.objects.filter(name="luigi").update(name="mario")  # the parent table, rows unknown
    assert page(client, f"/restaurants/{pizzeria.pk}/") == "mario:pizza=True"
    assert page(client, "/places/") == "mario\npark\nmario:pizza=True"
    Place.objects.filter(pk=pizzeria.pk).update(name="peach")  # the parent table, by key
    assert page(client, f"/restaurants/{pizzeria.pk}/") == "peach:pizza=True"
    Restaurant.objects.filter(pk=pizzeria.pk).update(serves_pizza=False)  # the child table
    assert page(client, f"/restaurants/{pizzeria.pk}/") == "peach:pizza=False"
    assert page(client, "/places/") == "park\npeach\npeach:pizza=False"


def test_another_database(cache: DjangoCache, client: Client) -> None:
    ArchivedOrder.objects.create(reference="A1")
    assert page(client, "/archive/") == "A1"
    ArchivedOrder.objects.create(reference="A2")
    assert page(client, "/archive/") == "A1,A2"
    ArchivedOrder.objects.using("other").filter(reference="A1").delete()
    assert page(client, "/archive/") == "A2"


def test_atomic_commit_invalidates_after_the_commit(
    shop: dict[str, Product], client: Client
) -> None:
    hammer = shop["hammer"]
    with transaction.atomic():
        hammer.price = 13
        hammer.save()
        # Inside, the writer reads its own write (around the cache, and nothing is stored).
        assert page(client, f"/products/{hammer.pk}/") == "hammer=13[tools]"
    assert page(client, f"/products/{hammer.pk}/") == "hammer=13[tools]"
    assert page(client, "/catalog/") == "hammer=13[tools]\nsaw=20[]"


def test_nothing_uncommitted_is_stored_for_others(
    shop: dict[str, Product], client: Client, cache: DjangoCache
) -> None:
    hammer = shop["hammer"]
    with transaction.atomic():
        hammer.price = 14
        hammer.save()
        assert page(client, "/catalog/") == "hammer=14[tools]\nsaw=20[]"  # bypassed
        transaction.set_rollback(True)
    # The rolled-back price was never stored: the cache and the database agree again.
    assert page(client, "/catalog/") == "hammer=10[tools]\nsaw=20[]"
    assert page(client, f"/products/{hammer.pk}/") == "hammer=10[tools]"


def test_savepoint_rollback_keeps_the_outer_writes_invalidation(
    shop: dict[str, Product], client: Client
) -> None:
    hammer, saw = shop["hammer"], shop["saw"]
    with transaction.atomic():
        saw.price = 30
        saw.save()
        try:
            with transaction.atomic():
                Product.objects.filter(pk=hammer.pk).update(price=99)
                raise RuntimeError("roll back the savepoint")
        except RuntimeError:
            pass
    assert page(client, "/catalog/") == "hammer=10[tools]\nsaw=30[]"
    assert page(client, f"/products/{saw.pk}/") == "saw=30[]"
    assert page(client, f"/products/{hammer.pk}/") == "hammer=10[tools]"


def test_writes_only_inside_a_rolled_back_savepoint_invalidate_nothing_after_it(
    shop: dict[str, Product], client: Client, cache: DjangoCache
) -> None:
    hammer = shop["hammer"]
    with transaction.atomic():
        try:
            with transaction.atomic():
                Product.objects.filter(pk=hammer.pk).update(price=99)
                raise RuntimeError("roll back the savepoint")
        except RuntimeError:
            pass
    assert page(client, f"/products/{hammer.pk}/") == "hammer=10[tools]"
    assert page(client, "/catalog/") == "hammer=10[tools]\nsaw=20[]"


def test_every_connection_is_hooked() -> None:
    from cacheplug_django._state import hooks

    for alias in ("default", "other"):
        assert hooks._wrapper in connections[alias].execute_wrappers


def test_a_reader_during_the_transaction_cannot_cache_the_old_rows_past_the_commit(
    shop: dict[str, Product], client: Client, cache: DjangoCache
) -> None:
    """Invalidating before the commit would let a concurrent reader, who still sees the old
    rows, cache them again; the invalidation must come after the commit."""
    import threading

    old_catalog = "hammer=10[tools]\nsaw=20[]"

    def concurrent_reader() -> None:
        # Another request, on another connection: it still sees the committed (old) rows.
        cache.get_or_load("catalog", lambda: old_catalog, depends_on=[Product])

    with transaction.atomic():
        Product.objects.filter(pk=shop["hammer"].pk).update(price=15)
        reader = threading.Thread(target=concurrent_reader)
        reader.start()
        reader.join()
    assert page(client, "/catalog/") == "hammer=15[tools]\nsaw=20[]"


def test_row_tags_of_keys_holding_colons_still_follow_bulk_writes(cache: DjangoCache) -> None:
    from cacheplug_django import instance_tag

    Category.objects.create(name="a")
    tag = instance_tag(Category, "1:2")  # an odd key, as a CharField primary key could be
    cache.get_or_load("odd", lambda: "old", tags=[tag])
    Category.objects.update(name="b")  # rows unknown: every row tag of the table
    assert cache.get_or_load("odd", lambda: "new", tags=[tag]) == "new"


def test_write_around_inside_a_transaction_invalidates_after_the_commit(
    shop: dict[str, Product], cache: DjangoCache
) -> None:
    import threading

    cache.set("report", "old")
    with transaction.atomic():
        cache.write_around("report", lambda: Product.objects.update(price=5))
        # A reader on another connection still sees the old rows and caches what it built.
        reader = threading.Thread(target=lambda: cache.set("report", "old again"))
        reader.start()
        reader.join()
    assert cache.get("report") is None  # invalidated once more when the write committed


def test_a_bulk_created_row_replaces_a_cached_miss_for_its_key(
    shop: dict[str, Product], client: Client
) -> None:
    next_key = Product.objects.order_by("-pk").first().pk + 1  # type: ignore[union-attr]
    assert page(client, f"/products/{next_key}/") == "missing"
    Product.objects.bulk_create([Product(name="drill", price=3)])  # one row, key by the database
    assert page(client, f"/products/{next_key}/") == "drill=3[]"


def test_raw_sql_naming_the_table_in_capitals(shop: dict[str, Product], client: Client) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE SHOP_PRODUCT SET price = 4")
    assert page(client, f"/products/{shop['hammer'].pk}/") == "hammer=4[tools]"
    assert page(client, "/catalog/") == "hammer=4[tools]\nsaw=4[]"
