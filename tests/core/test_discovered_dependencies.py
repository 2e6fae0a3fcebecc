"""Dependencies a load discovers as it runs (``cacheplug.depends_on``, what
``depends_on="auto"`` is built on), on both stores: the entry is invalidated by them; an
invalidation made between the version read and the store keeps the value from being stored; a
reader that never saw the entry (another process) still checks them; the store failing or too
many tags: returned, not stored."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from _loaders import Loader

from cacheplug import Cache, LocalTier, MemoryStore, RedisStore, depends_on
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


def guarded(loader: Loader, before: Callable[[], None] = lambda: None) -> Callable[[], str]:
    """``loader`` depending on the row ``product:1``, guarded by its table ``products`` (as
    the ORM adapters declare a row read: a write to the row moves both tags at once)."""

    def load() -> str:
        assert depends_on(["product:1"], guarded_by=["products"])
        before()
        return loader()

    return load


def test_a_guarded_tag_is_depended_on_and_its_guard_is_not(cache: Cache) -> None:
    lamp = Loader("lamp")
    assert cache.get_or_load("lamp", guarded(lamp)) == "lamp1"
    cache.invalidate_tags("products")  # another row's write: the entry holds
    assert cache.get_or_load("lamp", guarded(lamp)) == "lamp1"
    cache.invalidate_tags("products", "product:1")  # its row's
    assert cache.get_or_load("lamp", guarded(lamp)) == "lamp2"


def test_a_row_written_while_its_load_ran_is_not_stored(cache: Cache) -> None:
    # The row's version is read when the loader returns, after the write: only the guard
    # (Redis) or the store's log of bumps (in process) can tell the data is older than it.
    lamp = Loader("lamp")
    write = guarded(lamp, before=lambda: cache.invalidate_tags("products", "product:1"))
    assert cache.get_or_load("lamp", write) == "lamp1"
    assert cache.get_or_load("lamp", guarded(lamp)) == "lamp2"  # not stored
    assert cache.get_or_load("lamp", guarded(lamp)) == "lamp2"


def test_on_redis_a_write_to_the_guard_while_the_load_ran_refuses_the_store(
    redis_url: str,
) -> None:
    cache = Cache(redis_url, namespace="guards", secret=FIXTURE_SECRET)
    lamp = Loader("lamp")
    other_row = guarded(lamp, before=lambda: cache.invalidate_tags("products", "product:2"))
    assert cache.get_or_load("lamp", other_row) == "lamp1"
    assert cache.get_or_load("lamp", guarded(lamp)) == "lamp2"  # refused: stored now
    assert cache.get_or_load("lamp", guarded(lamp)) == "lamp2"
    cache.close()


def test_in_process_another_tag_s_invalidation_while_the_load_ran_still_stores() -> None:
    # The in-process store's log names what was bumped: only the load's own tags refuse it.
    cache = Cache(MemoryStore(), namespace="log")
    lamp = Loader("lamp")
    other_row = guarded(lamp, before=lambda: cache.invalidate_tags("products", "product:2"))
    assert cache.get_or_load("lamp", other_row) == "lamp1"
    assert cache.get_or_load("lamp", guarded(lamp)) == "lamp1"  # stored
    cache.close()


def test_in_process_a_load_longer_than_the_log_of_bumps_is_not_stored() -> None:
    cache = Cache(MemoryStore(), namespace="log")
    lamp = Loader("lamp")

    def many_writes() -> None:
        for n in range(5000):  # more than the store logs: it can no longer tell
            cache.invalidate_tags(f"other:{n}")

    assert cache.get_or_load("lamp", guarded(lamp, before=many_writes)) == "lamp1"
    assert cache.get_or_load("lamp", guarded(lamp)) == "lamp2"  # not stored
    cache.close()


def test_the_memory_store_s_log_of_bumps() -> None:
    store = MemoryStore()
    mark = store.version_mark()
    assert mark is not None
    assert store.moved_since(mark, ["a"]) is False
    store.bump_versions(["a", "b"], [1, 1], 60_000)
    assert store.moved_since(mark, ["a"]) is True
    assert store.moved_since(mark, ["c"]) is False
    later = store.version_mark()
    assert later is not None
    assert store.moved_since(later, ["a", "b"]) is False
    store.clear()  # every version is gone: a load under way cannot tell what it read
    assert store.moved_since(later, ["c"]) is None
    assert store.moved_since(store.version_mark() or 0, ["c"]) is False


def test_a_store_whose_bumps_are_not_atomic_reads_guarded_tags_at_once(redis_url: str) -> None:
    class OneKeyAtATime(RedisStore):
        bumps_together = False

    cache = Cache(OneKeyAtATime(redis_url), namespace="serial", secret=FIXTURE_SECRET)
    lamp = Loader("lamp")
    # The row alone moves (on such a store a reader may see it before its table): read at
    # once, its version predates the write, and the store is refused.
    write = guarded(lamp, before=lambda: cache.invalidate_tags("product:1"))
    assert cache.get_or_load("lamp", write) == "lamp1"
    assert cache.get_or_load("lamp", guarded(lamp)) == "lamp2"
    assert cache.get_or_load("lamp", guarded(lamp)) == "lamp2"
    cache.close()
