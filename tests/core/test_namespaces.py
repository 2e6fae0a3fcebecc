"""Nested namespaces: ``cache.namespace(name)`` views, and ``bump()`` as an O(1) logical flush
of a namespace (a cache's bump reaching its nested namespaces too)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from _loaders import Loader

from cacheplug import Cache, ConfigurationError


def test_the_same_key_in_a_namespace_is_another_entry(cache: Cache) -> None:
    catalog: Cache = cache.namespace("catalog")
    cache.set("k", "root", ttl=60)
    assert catalog.get("k", "miss") == "miss"
    catalog.set("k", "catalog", ttl=60)
    assert cache.get("k") == "root"
    assert catalog.get("k") == "catalog"
    assert catalog.store_key("k") != cache.store_key("k")

    assert catalog.delete("k") is True
    assert catalog.get("k", "miss") == "miss"
    assert cache.get("k") == "root"

    root_load, catalog_load = Loader("root"), Loader("catalog")
    assert cache.get_or_load("j", root_load, ttl=60) == "root1"
    assert catalog.get_or_load("j", catalog_load, ttl=60) == "catalog1"
    assert cache.get_or_load("j", root_load, ttl=60) == "root1"
    assert catalog.get_or_load("j", catalog_load, ttl=60) == "catalog1"
    assert (root_load.calls, catalog_load.calls) == (1, 1)
    assert catalog.get_many(["j", "k"]) == {"j": "catalog1"}
    assert cache.get_many(["j", "k"]) == {"j": "root1", "k": "root"}


def test_two_views_of_one_namespace_share_its_entries(cache: Cache) -> None:
    first: Cache = cache.namespace("catalog")
    second: Cache = cache.namespace("catalog")
    first.set("k", "v", ttl=60)
    assert second.get("k") == "v"
    second.bump()
    assert first.get("k", "miss") == "miss"


def test_namespace_bump_orphans_that_namespace_only(cache: Cache) -> None:
    catalog: Cache = cache.namespace("catalog")
    users: Cache = cache.namespace("users")
    cache.set("k", "root", ttl=60)
    users.set("k", "users", ttl=60)
    catalog.set_many({"k": "catalog", "j": "catalog j"}, ttl=60)

    catalog.bump()

    assert catalog.get_many(["k", "j"]) == {}
    assert catalog.get("k", "miss") == "miss"
    assert cache.get("k") == "root"
    assert users.get("k") == "users"


def test_cache_bump_orphans_everything_including_nested_namespaces(cache: Cache) -> None:
    catalog: Cache = cache.namespace("catalog")
    archive: Cache = catalog.namespace("archive")
    cache.set("k", "root", ttl=60)
    catalog.set("k", "catalog", ttl=60)
    archive.set("k", "archive", ttl=60)
    other = Cache(cache.store, namespace="other", secret="o" if cache.store.shared else None)
    other.set("k", "another cache namespace", ttl=60)

    cache.bump()

    assert cache.get("k", "miss") == "miss"
    assert catalog.get("k", "miss") == "miss"
    assert archive.get("k", "miss") == "miss"
    # Views made after the bump do not see the old entries either.
    assert cache.namespace("catalog").get("k", "miss") == "miss"
    assert cache.namespace("catalog").namespace("archive").get("k", "miss") == "miss"
    assert other.get("k") == "another cache namespace"


def test_a_nested_namespace_bump_leaves_its_parent_and_reaches_its_children(
    cache: Cache,
) -> None:
    catalog: Cache = cache.namespace("catalog")
    archive: Cache = catalog.namespace("archive")
    catalog.set("k", "catalog", ttl=60)
    archive.set("k", "archive", ttl=60)
    cache.set("k", "root", ttl=60)

    archive.bump()
    assert archive.get("k", "miss") == "miss"
    assert catalog.get("k") == "catalog"
    assert cache.get("k") == "root"

    archive.set("k", "archive again", ttl=60)
    catalog.bump()
    assert catalog.get("k", "miss") == "miss"
    assert archive.get("k", "miss") == "miss"
    assert cache.get("k") == "root"


def test_entries_written_after_a_bump_are_hits_again(cache: Cache) -> None:
    catalog: Cache = cache.namespace("catalog")
    for namespace in (cache, catalog):
        load = Loader("v")
        assert namespace.get_or_load("k", load, ttl=60) == "v1"
        namespace.bump()
        assert namespace.get_or_load("k", load, ttl=60) == "v2"
        assert namespace.get_or_load("k", load, ttl=60) == "v2"
        assert load.calls == 2
        namespace.set("s", "set after the bump", ttl=60)
        assert namespace.get("s") == "set after the bump"
        assert namespace.add("a", "added after the bump", ttl=60) is True
        assert namespace.get_many(["k", "s", "a"]) == {
            "k": "v2",
            "s": "set after the bump",
            "a": "added after the bump",
        }


def test_add_succeeds_over_an_entry_orphaned_by_a_bump(cache: Cache) -> None:
    catalog: Cache = cache.namespace("catalog")
    assert catalog.add("k", "first", ttl=60) is True
    catalog.bump()
    assert catalog.add("k", "second", ttl=60) is True
    assert catalog.get("k") == "second"


def test_bump_on_a_brand_new_namespace_is_harmless(cache: Cache) -> None:
    cache.bump()  # nothing was ever written
    cache.namespace("never-used").bump()
    assert cache.set("k", "root", ttl=60) is True
    assert cache.get("k") == "root"
    fresh: Cache = cache.namespace("never-used")
    assert fresh.add("k", "nested", ttl=60) is True
    assert fresh.get("k") == "nested"
    assert fresh.get_many(["k"]) == {"k": "nested"}
    cache.namespace("another-never-used").bump()
    assert fresh.get("k") == "nested"
    assert cache.get("k") == "root"


def test_tags_are_shared_between_a_cache_and_its_namespaces(cache: Cache) -> None:
    catalog: Cache = cache.namespace("catalog")
    archive: Cache = catalog.namespace("archive")
    cache.set("root", "r", ttl=60, tags="product:1")
    catalog.set("nested", "n", ttl=60, tags="product:1")
    archive.set("deeper", "d", ttl=60, tags=["product:1", "archive"])
    catalog.set("untagged", "u", ttl=60)

    cache.invalidate_tags("product:1")

    assert cache.get("root", "miss") == "miss"
    assert catalog.get("nested", "miss") == "miss"
    assert archive.get("deeper", "miss") == "miss"
    assert catalog.get("untagged") == "u"

    # And the other way round: a view's tag invalidation reaches the cache's entries.
    cache.set("root", "r2", ttl=60, tags="product:2")
    catalog.invalidate_tags("product:2")
    assert cache.get("root", "miss") == "miss"


def test_a_bump_during_a_load_refuses_its_fill(cache: Cache) -> None:
    catalog: Cache = cache.namespace("catalog")
    started, release = threading.Event(), threading.Event()
    got: list[str] = []

    def old_read() -> str:
        started.set()
        assert release.wait(10)
        return "read before the bump"

    thread = threading.Thread(target=lambda: got.append(catalog.get_or_load("k", old_read, ttl=60)))
    thread.start()
    assert started.wait(5)
    cache.bump()  # the root's bump reaches loads under way in its nested namespaces
    release.set()
    thread.join(10)
    assert got == ["read before the bump"]
    assert catalog.get("k", "miss") == "miss"
    assert catalog.get_or_load("k", lambda: "fresh", ttl=60) == "fresh"
    assert catalog.get("k") == "fresh"


def test_bumps_are_seen_by_another_cache_object_on_the_same_redis(redis_url: str) -> None:
    with (
        Cache(redis_url, namespace="x", secret="s") as first,
        Cache(redis_url, namespace="x", secret="s") as second,
        Cache(redis_url, namespace="y", secret="s") as other,
    ):
        first.set("k", "root", ttl=60)
        first.namespace("catalog").set("k", "catalog", ttl=60)
        first.namespace("users").set("k", "users", ttl=60)
        assert second.get("k") == "root"
        assert second.namespace("catalog").get("k") == "catalog"

        second.namespace("catalog").bump()
        assert first.namespace("catalog").get("k", "miss") == "miss"
        assert first.namespace("users").get("k") == "users"
        assert first.get("k") == "root"

        first.namespace("catalog").set("k", "catalog again", ttl=60)
        assert second.namespace("catalog").get("k") == "catalog again"

        second.bump()
        assert first.get("k", "miss") == "miss"
        assert first.namespace("users").get("k", "miss") == "miss"
        assert first.namespace("catalog").get("k", "miss") == "miss"

        # Another namespace on the same server is unaffected by either bump.
        other.set("k", "y", ttl=60)
        first.bump()
        assert other.get("k") == "y"


def test_async_bump_of_a_cache_and_of_a_namespace(cache: Cache) -> None:
    catalog: Cache = cache.namespace("catalog")

    async def scenario() -> list[object]:
        await cache.aset("k", "root", ttl=60)
        await catalog.aset("k", "catalog", ttl=60)
        await catalog.abump()
        seen: list[object] = [await catalog.aget("k", "miss"), await cache.aget("k")]
        await catalog.aset("k", "catalog again", ttl=60)
        await cache.abump()
        seen += [await catalog.aget("k", "miss"), await cache.aget("k", "miss")]
        seen.append(await catalog.aget_or_load("k", lambda: "loaded", ttl=60))
        seen.append(await catalog.aget("k"))
        return seen

    assert asyncio.run(scenario()) == ["miss", "root", "miss", "miss", "loaded", "loaded"]


def test_namespace_name(cache: Cache) -> None:
    assert cache.namespace_name == "test"
    catalog: Cache = cache.namespace("catalog")
    assert catalog.namespace_name == "test/catalog"
    assert catalog.namespace("v2").namespace_name == "test/catalog/v2"
    assert cache.namespace_name == "test"  # the view did not change its cache
    with Cache(namespace="shop") as shop:
        assert shop.namespace("A-z_09").namespace_name == "shop/A-z_09"


@pytest.mark.parametrize(
    "name",
    ["", "a.b", ".", "a b", "a:b", "a/b", "{a}", "a*", "ä", "tab\t", "x" * 64, None, 7],
    ids=repr,
)
def test_nested_namespace_names_are_checked(cache: Cache, name: object) -> None:
    with pytest.raises(ConfigurationError):
        cache.namespace(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["catalog", "A-Z", "under_score", "0", "v-2_b"])
def test_nested_namespace_names_may_use_letters_digits_dash_and_underscore(
    cache: Cache, name: str
) -> None:
    view: Cache = cache.namespace(name)
    assert view.namespace_name == f"test/{name}"
    view.set("k", name, ttl=60)
    assert view.get("k") == name


def test_a_bump_orphans_signed_counters_too(redis_url: str) -> None:
    cache = Cache(redis_url, namespace="counted", secret="s3cret")
    try:
        assert [cache.incr("visits") for _ in range(3)] == [1, 2, 3]
        nested = cache.namespace("daily")
        assert nested.incr("visits", 5) == 5
        cache.bump()
        assert cache.get("visits", "gone") == "gone"
        assert nested.get("visits", "gone") == "gone"
        assert cache.incr("visits") == 1
        assert nested.incr("visits") == 1
        nested.bump()  # the child's bump leaves the parent's counters alone
        assert cache.get("visits") == 1
        assert nested.get("visits", "gone") == "gone"
    finally:
        cache.close()
