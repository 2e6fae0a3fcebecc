"""Dependencies a load discovers as it runs (``cacheplug.depends_on``, what
``depends_on="auto"`` is built on), on both stores: the entry is invalidated by them; an
invalidation made between the version read and the store keeps the value from being stored; a
reader that never saw the entry (another process) still checks them; the store failing or too
many tags: returned, not stored."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from _loaders import Loader

from cacheplug import Cache, LocalTier, MemoryStore, depends_on
from cacheplug.testing import RedisServer

FIXTURE_SECRET = "test-secret-key-not-for-production"  # the ``cache`` fixture's (conftest)


def discovering(
    loader: Loader, *tags: str, before: Callable[[], None] = lambda: None
) -> Callable[[], str]:
    """``loader`` that declares ``tags`` as it runs, then runs ``before`` (a concurrent write,
    say), then reads."""

    def load() -> str:
        assert depends_on(tags)
        before()
        return loader()

    return load


def test_a_discovered_tag_invalidates_the_entry(cache: Cache) -> None:
    lamp = Loader("lamp")
    assert cache.get_or_load("lamp", discovering(lamp, "product:1")) == "lamp1"
    assert cache.get_or_load("lamp", discovering(lamp, "product:1")) == "lamp1"
    cache.invalidate_tags("product:2")  # another tag: still a hit
    assert cache.get_or_load("lamp", discovering(lamp, "product:1")) == "lamp1"
    cache.invalidate_tags("product:1")
    assert cache.get_or_load("lamp", discovering(lamp, "product:1")) == "lamp2"


def test_an_invalidation_after_the_version_read_keeps_the_value_from_being_stored(
    cache: Cache,
) -> None:
    lamp = Loader("lamp")
    # The load read the tag's version, then a writer committed and invalidated it, then the
    # load read the (old) row: what it read must not be stored.
    racing = discovering(lamp, "product:1", before=lambda: cache.invalidate_tags("product:1"))
    assert cache.get_or_load("lamp", racing) == "lamp1"
    assert cache.get_or_load("lamp", discovering(lamp, "product:1")) == "lamp2"  # not stored
    assert cache.get_or_load("lamp", discovering(lamp, "product:1")) == "lamp2"


def test_a_reader_that_never_saw_the_entry_checks_its_discovered_tags(cache: Cache) -> None:
    lamp = Loader("lamp")
    cache.get_or_load("lamp", discovering(lamp, "product:1"))
    cache.invalidate_tags("product:1")
    secret = FIXTURE_SECRET if cache.store.shared else None
    other = Cache(cache.store, namespace="test", secret=secret)  # as another process
    assert other.get("lamp") is None  # the entry is outdated
    fresh = Loader("fresh lamp")
    assert other.get_or_load("lamp", fresh) == "fresh lamp1"
    other.close()


def test_depends_on_outside_a_load_does_nothing() -> None:
    assert depends_on(["product:1"]) is False


def test_too_many_discovered_tags_are_returned_not_stored(cache: Cache) -> None:
    lamp = Loader("lamp")
    many = [f"product:{n}" for n in range(60)]
    assert cache.get_or_load("lamp", discovering(lamp, *many)) == "lamp1"
    assert cache.get_or_load("lamp", discovering(lamp, *many)) == "lamp2"  # not stored


def test_a_store_that_fails_during_the_load_returns_the_value_unstored() -> None:
    with RedisServer() as server:
        cache = Cache(server.url, namespace="test")
        lamp = Loader("lamp")
        assert cache.get_or_load("lamp", discovering(lamp, "a", before=server.stop)) == "lamp1"
        server.start()
        assert cache.get_or_load("lamp", discovering(lamp, "b")) == "lamp2"  # not stored
        cache.close()


def test_an_async_load_discovers_its_tags_too() -> None:
    cache = Cache(MemoryStore(), namespace="test")
    lamp = Loader("lamp")

    async def load() -> str:
        assert depends_on(["product:1"])
        return lamp()

    async def run() -> list[str]:
        first = await cache.aget_or_load("lamp", load)
        second = await cache.aget_or_load("lamp", load)
        cache.invalidate_tags("product:1")
        third = await cache.aget_or_load("lamp", load)
        return [first, second, third]

    assert asyncio.run(run()) == ["lamp1", "lamp1", "lamp2"]
    cache.close()


def test_a_nested_load_passes_what_it_discovered_to_the_enclosing_one(cache: Cache) -> None:
    price, page = Loader("price"), Loader("page")

    def render() -> str:
        inner = cache.get_or_load("price", discovering(price, "product:1"))
        return f"{page()}:{inner}"

    assert cache.get_or_load("page", render) == "page1:price1"  # both missed
    assert cache.get_or_load("page", render) == "page1:price1"
    cache.invalidate_tags("product:1")  # what the inner load read
    assert cache.get_or_load("page", render) == "page2:price2"


def test_a_hit_inside_a_load_passes_its_entry_s_tags_to_the_load(cache: Cache) -> None:
    price, page = Loader("price"), Loader("page")
    assert cache.get_or_load("price", discovering(price, "product:1")) == "price1"

    def render() -> str:
        return f"{page()}:{cache.get_or_load('price', discovering(price, 'product:1'))}"

    assert cache.get_or_load("page", render) == "page1:price1"  # the inner one a hit
    assert cache.get_or_load("page", render) == "page1:price1"
    cache.invalidate_tags("product:1")
    assert cache.get_or_load("page", render) == "page2:price2"


def test_a_hit_inside_a_load_skips_the_in_process_tier(redis_url: str) -> None:
    cache = Cache(redis_url, namespace="test", secret=FIXTURE_SECRET, l1=LocalTier())
    price, page = Loader("price"), Loader("page")
    for _ in range(20):  # until it is in L1 (once the fill notices are live)
        cache.get_or_load("price", discovering(price, "product:1"))
    assert cache.stats().l1_hits > 0

    def render() -> str:
        return f"{page()}:{cache.get_or_load('price', discovering(price, 'product:1'))}"

    assert cache.get_or_load("page", render) == "page1:price1"
    cache.invalidate_tags("product:1")
    assert cache.get_or_load("page", render) == "page2:price2"
    cache.close()
