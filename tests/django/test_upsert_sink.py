"""``upsert_sink``: write-behind into a Django model. Values land in their rows, created or
updated; a batch delivered twice changes nothing; with ``order_field`` an older write never
replaces a newer one; what depends on the model is invalidated after the sink's commit."""

from __future__ import annotations

import pytest
from shop.models import Profile

from cacheplug import QueuedWrite
from cacheplug_django import upsert_sink
from cacheplug_django._cache import DjangoCache

pytestmark = pytest.mark.django_db(transaction=True)


def rows() -> dict[str, tuple[str, int]]:
    return {p.handle: (p.name, p.visits) for p in Profile.objects.order_by("handle")}


@pytest.mark.parametrize("order_field", [None, "write_order"])
def test_queued_values_are_upserted_into_their_rows(
    cache: DjangoCache, order_field: str | None
) -> None:
    Profile.objects.create(handle="ada", name="Ada", visits=3)
    sink = upsert_sink(Profile, field="handle", order_field=order_field)
    queue = cache.write_behind("profiles", sink, durable=cache.core.store.shared)
    queue.put("profile:ada", {"name": "Ada Lovelace"})
    queue.put("profile:bob", {"name": "Bob", "visits": 1})
    queue.put("profile:ada", {"name": "Countess"})  # the same batch: the last one wins
    queue.drain()
    assert rows() == {"ada": ("Countess", 3), "bob": ("Bob", 1)}


@pytest.mark.parametrize("order_field", [None, "write_order"])
def test_a_batch_delivered_twice_changes_nothing(
    cache: DjangoCache, order_field: str | None
) -> None:
    sink = upsert_sink(Profile, field="handle", order_field=order_field)
    batch = [QueuedWrite("1700000000000-0", "profile:ada", {"name": "Ada", "visits": 1})]
    sink(batch)
    sink(batch)
    assert rows() == {"ada": ("Ada", 1)}


def test_with_an_order_field_an_older_write_never_replaces_a_newer_one(cache: DjangoCache) -> None:
    sink = upsert_sink(Profile, field="handle", order_field="write_order")
    sink([QueuedWrite("1700000000005-0", "profile:ada", {"name": "newer"})])
    sink([QueuedWrite("1700000000001-0", "profile:ada", {"name": "older"})])  # late
    assert rows() == {"ada": ("newer", 0)}
    sink([QueuedWrite("1700000000009-0", "profile:ada", {"name": "newest"})])
    assert rows() == {"ada": ("newest", 0)}


def test_what_depends_on_the_model_sees_the_drained_writes(cache: DjangoCache) -> None:
    Profile.objects.create(handle="ada", name="Ada")

    def names() -> list[str]:
        return cache.get_or_load(
            "profile-names",
            lambda: list(Profile.objects.order_by("handle").values_list("name", flat=True)),
            depends_on=[Profile],
        )

    assert names() == ["Ada"]
    queue = cache.write_behind(
        "profiles", upsert_sink(Profile, field="handle"), durable=cache.core.store.shared
    )
    queue.put("profile:bob", {"name": "Bob"})
    assert names() == ["Ada"]  # not in the database yet
    queue.drain()
    assert names() == ["Ada", "Bob"]


def test_values_that_are_not_dicts_are_refused(cache: DjangoCache) -> None:
    sink = upsert_sink(Profile, field="handle")
    with pytest.raises(TypeError, match="needs dict values"):
        sink([QueuedWrite("1-0", "profile:ada", "Ada")])
    assert rows() == {}
