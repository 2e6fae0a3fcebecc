"""``@cache.cached`` on sync and async functions and methods."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from cacheplug import Cache


def test_template_key_and_invalidate(cache: Cache) -> None:
    calls: list[int] = []

    @cache.cached(ttl=60, key="product:{product_id}")
    def load_product(product_id: int) -> dict[str, int]:
        calls.append(product_id)
        return {"id": product_id, "stock": len(calls)}

    assert load_product(42) == {"id": 42, "stock": 1}
    assert load_product(product_id=42) == {"id": 42, "stock": 1}
    assert calls == [42]
    assert cache.get("product:42") == {"id": 42, "stock": 1}
    assert load_product.key_for(42) == "product:42"
    assert load_product.invalidate(product_id=42) is True
    assert load_product(42) == {"id": 42, "stock": 2}


def test_default_key_uses_bound_arguments(cache: Cache) -> None:
    calls: list[tuple[int, int]] = []

    @cache.cached()
    def add(a: int, b: int = 3) -> int:
        calls.append((a, b))
        return a + b

    assert add(1) == 4
    assert add(a=1) == 4
    assert add(1, 3) == 4
    assert add(1, b=5) == 6
    assert calls == [(1, 3), (1, 5)]
    assert (
        add.key_for(1) == f"{__name__}.test_default_key_uses_bound_arguments.<locals>.add(a=1,b=3)"
    )


def test_default_keys_of_different_functions_do_not_collide(cache: Cache) -> None:
    @cache.cached()
    def double(x: int) -> int:
        return 2 * x

    @cache.cached()
    def triple(x: int) -> int:
        return 3 * x

    assert (double(5), triple(5)) == (10, 15)


def test_default_key_refuses_arguments_it_cannot_name(cache: Cache) -> None:
    @cache.cached()
    def describe(thing: object) -> str:
        return str(thing)

    with pytest.raises(TypeError, match="key="):
        describe(object())
    assert describe(("a", 1, None, frozenset({2}))) == "('a', 1, None, frozenset({2}))"


def test_template_must_name_parameters() -> None:
    cache = Cache()
    with pytest.raises(ValueError, match="product_pk"):

        @cache.cached(key="product:{product_pk}")
        def load(product_id: int) -> int:
            return product_id


def test_callable_key(cache: Cache) -> None:
    @cache.cached(key=lambda user, page=1: f"feed:{user}:{page}")
    def feed(user: str, page: int = 1) -> list[str]:
        return [user] * page

    assert feed("ann", page=2) == ["ann", "ann"]
    assert cache.get("feed:ann:2") == ["ann", "ann"]


def test_invalid_ttl_is_reported_at_decoration_time() -> None:
    cache = Cache()
    with pytest.raises(ValueError, match="ttl"):
        cache.cached(ttl=-5)


def test_methods_use_the_instance_in_the_key(cache: Cache) -> None:
    class Shop:
        def __init__(self, slug: str) -> None:
            self.slug = slug
            self.loads = 0

        @cache.cached(key="shop:{self.slug}:{page}")
        def listing(self, page: int) -> str:
            self.loads += 1
            return f"{self.slug} page {page}"

    north, south = Shop("north"), Shop("south")
    assert north.listing(1) == "north page 1"
    assert north.listing(1) == "north page 1"
    assert south.listing(1) == "south page 1"
    assert (north.loads, south.loads) == (1, 1)
    assert north.listing.key_for(1) == "shop:north:1"
    assert north.listing.invalidate(1) is True
    assert north.listing(1) == "north page 1"
    assert north.loads == 2


def test_wrapper_keeps_the_function_identity(cache: Cache) -> None:
    @cache.cached(ttl=5)
    def documented(x: int) -> int:
        """Doubles x."""
        return 2 * x

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Doubles x."
    assert documented.__wrapped__(2) == 4  # type: ignore[attr-defined]


def test_async_functions_are_cached(cache: Cache) -> None:
    calls: list[int] = []

    @cache.cached(ttl=60, key="user:{uid}")
    async def load_user(uid: int) -> dict[str, int]:
        calls.append(uid)
        await asyncio.sleep(0)
        return {"uid": uid}

    assert asyncio.iscoroutinefunction(load_user)

    async def scenario() -> None:
        assert await load_user(7) == {"uid": 7}
        assert await load_user(uid=7) == {"uid": 7}
        assert await load_user.ainvalidate(7) is True
        assert await load_user(7) == {"uid": 7}

    asyncio.run(scenario())
    assert calls == [7, 7]
    assert cache.get("user:7") == {"uid": 7}
    assert load_user.invalidate(7) is True
    assert inspect.signature(load_user).parameters.keys() == {"uid"}


def test_tags_are_formatted_from_the_arguments_and_invalidate_the_results(cache: Cache) -> None:
    calls: list[int] = []

    @cache.cached(ttl=60, key="product:{product_id}", tags=["product:{product_id}", "catalog"])
    def load_product(product_id: int) -> str:
        calls.append(product_id)
        return f"product {product_id} v{len(calls)}"

    assert load_product(1) == "product 1 v1"
    assert load_product(2) == "product 2 v2"
    assert load_product(1) == "product 1 v1"
    cache.invalidate_tags("product:1")
    assert load_product(1) == "product 1 v3"
    assert load_product(2) == "product 2 v2"
    cache.invalidate_tags("catalog")
    assert load_product(2) == "product 2 v4"
    assert calls == [1, 2, 1, 2]


def test_tags_can_be_computed_by_a_callable(cache: Cache) -> None:
    @cache.cached(ttl=60, tags=lambda user_id, page: [f"user:{user_id}"])
    def feed(user_id: int, page: int) -> list[int]:
        return [user_id, page]

    assert feed(7, 1) == [7, 1]
    assert cache.get(feed.key_for(7, 1)) == [7, 1]
    cache.invalidate_tags("user:7")
    assert cache.get(feed.key_for(7, 1), "gone") == "gone"


def test_a_tag_template_naming_an_unknown_parameter_fails_at_decoration(cache: Cache) -> None:
    with pytest.raises(ValueError, match="product_id"):

        @cache.cached(tags=["product:{product_id}"])
        def load(pk: int) -> int:
            return pk
