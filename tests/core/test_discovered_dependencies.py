"""Dependencies a load discovers as it runs (``cacheplug.depends_on``, what
``depends_on="auto"`` is built on), on both stores: the entry is invalidated by them; an
invalidation made between the version read and the store keeps the value from being stored; a
reader that never saw the entry (another process) still checks them; the store failing or too
many tags: returned, not stored."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from _loaders import Loader

import cacheplug
from cacheplug import Cache, LocalTier, MemoryStore, RedisStore, depends_on
from cacheplug.testing import RedisServer

FIXTURE_SECRET = "test-secret-key-not-for-production"  # the ``cache`` fixture's (conftest)


class CountingEnsures(RedisStore):
    """A real RedisStore counting its ``ensure_versions`` calls (a round trip each)."""

    ensures = 0

    def ensure_versions(self, *args: Any, **kwargs: Any) -> list[bytes | None]:
        self.ensures += 1
        return super().ensure_versions(*args, **kwargs)


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


def test_a_nested_load_after_a_write_does_not_vouch_for_what_was_read_before_it(
    cache: Cache,
) -> None:
    lamp = Loader("lamp")

    def outer() -> str:
        depends_on(["product:1"])
        value = lamp()  # the row, read before the write
        cache.invalidate_tags("product:1")
        # A nested load reads the row again, after the write: its version is the new one.
        cache.get_or_load("inner", discovering(Loader("inner"), "product:1"))
        return value

    assert cache.get_or_load("lamp", outer) == "lamp1"
    assert cache.get_or_load("lamp", outer) == "lamp2"  # the first was not stored


def test_a_guarded_tag_whose_guard_the_entry_depends_on_is_not_recorded(cache: Cache) -> None:
    # The load read the row, then the whole table: a write to the row invalidates the table
    # tag too, so the row's tag would add nothing (and cost a version read per hit).
    def load() -> str:
        depends_on(["product:1"], guarded_by=["products"])
        depends_on(["products"])
        return "lamp"

    cache.get_or_load("lamp", load)
    info = cache.inspect("lamp")
    assert info is not None
    assert "products" in info.tags
    assert "product:1" not in info.tags
    cache.invalidate_tags("products", "product:1")  # the row's write still reaches it
    assert cache.get("lamp") is None


def test_a_guarded_tag_is_recorded_when_a_guard_is_not_depended_on(cache: Cache) -> None:
    def load() -> str:
        depends_on(["product:1"], guarded_by=["products", "items"])
        depends_on(["products"])  # not "items": a write through it moves only the row
        return "lamp"

    cache.get_or_load("lamp", load)
    info = cache.inspect("lamp")
    assert info is not None
    assert {"products", "product:1"} <= set(info.tags)


class ReadingAhead:
    """A loader naming, before it runs, the tags it will declare (as the adapters' do)."""

    def __init__(self, tags: list[str]) -> None:
        self.tags = tags
        self.calls = 0

    def read_ahead(self) -> list[str]:
        return self.tags

    def __call__(self) -> str:
        self.calls += 1
        depends_on(self.tags)
        return f"value{self.calls}"


def test_tags_named_ahead_are_read_with_the_fill_s_own_versions(redis_url: str) -> None:
    store = CountingEnsures(redis_url)
    cache = Cache(store, namespace="ahead", secret=FIXTURE_SECRET)
    loader = ReadingAhead(["products", "categories"])
    cache.get_or_load("first", loader)  # creates the version keys
    store.ensures = 0
    assert cache.get_or_load("second", loader) == "value2"
    assert store.ensures == 0  # no round trip of its own for the loader's tags
    cache.invalidate_tags("categories")
    assert cache.get_or_load("second", loader) == "value3"  # and it depends on them
    cache.close()


def test_a_tag_named_ahead_and_invalidated_before_the_load_named_it_is_not_stored(
    redis_url: str,
) -> None:
    # The version read ahead predates the data: an invalidation in between refuses the store.
    cache = Cache(redis_url, namespace="ahead", secret=FIXTURE_SECRET)
    lamp = Loader("lamp")

    class Racing(ReadingAhead):
        def __call__(self) -> str:
            cache.invalidate_tags("products")
            depends_on(["products"])
            return lamp()

    racing = Racing(["products"])
    cache.get_or_load("warm", racing)  # the version key exists from now on
    assert cache.get_or_load("lamp", racing) == "lamp2"
    assert cache.get_or_load("lamp", discovering(lamp, "products")) == "lamp3"  # not stored
    cache.close()


def test_depends_on_later_in_process_only() -> None:
    seen: list[bool] = []

    def load() -> str:
        seen.append(cacheplug.depends_on_later())
        return "v"

    assert cacheplug.depends_on_later() is False  # no load running
    memory = Cache(MemoryStore(), namespace="later")
    memory.get_or_load("k", load)
    memory.close()
    with RedisServer() as server:
        shared = Cache(server.url, namespace="later", secret=FIXTURE_SECRET)
        shared.get_or_load("k", load)
        shared.close()
    assert seen == [True, False]


def test_a_tag_declared_late_after_its_invalidation_is_not_stored() -> None:
    # In process, a loader may name its tags as it returns: the store's log of bumps tells
    # that the data read earlier predates an invalidation.
    cache = Cache(MemoryStore(), namespace="later")
    lamp = Loader("lamp")

    def late(invalidate: bool) -> Callable[[], str]:
        def load() -> str:
            value = lamp()
            if invalidate:
                cache.invalidate_tags("products")
            assert cacheplug.depends_on_later()
            depends_on(["products"])
            return value

        return load

    assert cache.get_or_load("lamp", late(True)) == "lamp1"
    assert cache.get_or_load("lamp", late(False)) == "lamp2"  # the first was not stored
    assert cache.get_or_load("lamp", late(False)) == "lamp2"
    cache.close()


def test_tags_read_ahead_are_those_whose_versions_the_fill_read(redis_url: str) -> None:
    cache = Cache(redis_url, namespace="ahead", secret=FIXTURE_SECRET)
    seen: list[frozenset[str]] = []

    class Noting(ReadingAhead):
        def __call__(self) -> str:
            seen.append(cacheplug.tags_read_ahead())
            return super().__call__()

    loader = Noting(["products", "categories", "shop"])
    cache.get_or_load("first", loader)  # the version keys do not exist yet: none read
    cache.get_or_load("second", loader, tags=["shop"])  # the load's own tag counts too
    assert seen == [frozenset(), frozenset({"products", "categories", "shop"})]
    assert cacheplug.tags_read_ahead() == frozenset()  # no load running
    cache.close()
