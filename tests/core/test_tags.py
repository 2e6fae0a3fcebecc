"""Tags: ``invalidate_tags`` turns every entry carrying a tag into a miss at once, and keeps a
load that was under way from storing (or sharing) what it read before the invalidation."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from _loaders import Loader

from cacheplug import Cache, MemoryStore

FIXTURE_SECRET = "test-secret-key-not-for-production"  # the ``cache`` fixture's (conftest)


class BlockedLoader:
    """A loader that signals it started and returns ``value`` only once released."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        self.started.set()
        assert self.release.wait(10), "the test never released the loader"
        return self.value


def _other_cache(cache: Cache) -> Cache:
    """A second Cache object on the same store and namespace (it remembers nothing yet)."""
    secret = FIXTURE_SECRET if cache.store.shared else None
    return Cache(cache.store, namespace="test", secret=secret)


@pytest.fixture
def memory_cache() -> Iterator[Cache]:
    """A cache on the embedded store only, for rules in which the store plays no part."""
    cache = Cache(MemoryStore(), namespace="test")
    yield cache
    cache.close()


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.002)


def test_invalidating_a_tag_makes_every_entry_carrying_it_a_miss_and_leaves_others(
    cache: Cache,
) -> None:
    lamp, chair, user = Loader("lamp"), Loader("chair"), Loader("user")
    assert cache.get_or_load("product:1", lamp, ttl=60, tags=["product:1", "catalog"]) == "lamp1"
    assert cache.get_or_load("product:2", chair, ttl=60, tags=["product:2", "catalog"]) == "chair1"
    assert cache.get_or_load("user:1", user, ttl=60, tags=["user:1"]) == "user1"
    cache.set("untagged", "plain", ttl=60)

    cache.invalidate_tags("catalog")

    assert cache.get("product:1", "miss") == "miss"
    assert cache.get("product:2", "miss") == "miss"
    assert cache.get("user:1") == "user1"
    assert cache.get("untagged") == "plain"
    assert cache.get_or_load("product:1", lamp, ttl=60, tags=["product:1", "catalog"]) == "lamp2"
    assert cache.get_or_load("product:2", chair, ttl=60, tags=["product:2", "catalog"]) == "chair2"
    assert cache.get_or_load("user:1", user, ttl=60, tags=["user:1"]) == "user1"
    assert (lamp.calls, chair.calls, user.calls) == (2, 2, 1)
    # The reloaded entries are cached again.
    assert cache.get_or_load("product:1", lamp, ttl=60, tags=["product:1", "catalog"]) == "lamp2"
    assert lamp.calls == 2


def test_any_one_of_an_entrys_tags_invalidates_it(cache: Cache) -> None:
    tags = ["product:42", "catalog", "brand:7"]
    for tag in tags:
        assert cache.set("p", f"before {tag}", ttl=60, tags=tags) is True
        assert cache.get("p") == f"before {tag}"
        cache.invalidate_tags(tag)
        assert cache.get("p", "miss") == "miss", tag


def test_one_call_can_invalidate_several_tags(cache: Cache) -> None:
    cache.set("a", "A", ttl=60, tags="tag-a")
    cache.set("b", "B", ttl=60, tags="tag-b")
    cache.set("c", "C", ttl=60, tags="tag-c")
    before = cache.stats().invalidations

    cache.invalidate_tags("tag-a", "tag-b")

    assert cache.get_many(["a", "b", "c"]) == {"c": "C"}
    assert cache.stats().invalidations == before + 2


def test_a_single_string_is_one_tag_not_its_characters(memory_cache: Cache) -> None:
    load = Loader("v")
    assert memory_cache.get_or_load("k", load, ttl=60, tags="product:42") == "v1"
    memory_cache.invalidate_tags("p")  # one of the string's characters: not one of its tags
    memory_cache.invalidate_tags("product")
    assert memory_cache.get("k") == "v1"
    assert memory_cache.get_or_load("k", load, ttl=60, tags="product:42") == "v1"

    memory_cache.invalidate_tags("product:42")

    assert memory_cache.get("k", "miss") == "miss"
    assert memory_cache.get_or_load("k", load, ttl=60, tags="product:42") == "v2"
    assert load.calls == 2


def test_invalidating_an_unknown_tag_is_harmless(cache: Cache) -> None:
    cache.set("tagged", "t", ttl=60, tags="known")
    cache.set("plain", "p", ttl=60)

    cache.invalidate_tags("never-used")
    cache.invalidate_tags("never-used")

    assert cache.get("tagged") == "t"
    assert cache.get("plain") == "p"
    # The tag that was invalidated before any entry carried it works like any other.
    assert cache.set("late", "l", ttl=60, tags="never-used") is True
    assert cache.get("late") == "l"
    cache.invalidate_tags("never-used")
    assert cache.get("late", "miss") == "miss"
    assert cache.get("tagged") == "t"


def test_a_load_under_way_when_its_tag_is_invalidated_does_not_store_its_result(
    cache: Cache,
) -> None:
    old_read = BlockedLoader("read before the write")
    results: list[str] = []

    def load() -> None:
        results.append(cache.get_or_load("product:42", old_read, ttl=60, tags="product:42"))

    thread = threading.Thread(target=load)
    thread.start()
    assert old_read.started.wait(5)
    cache.invalidate_tags("product:42")  # the write committed; its invalidation returns
    old_read.release.set()
    thread.join(10)
    assert not thread.is_alive()

    assert results == ["read before the write"]  # its own caller started before the write
    assert cache.get("product:42", "nothing cached") == "nothing cached"
    fresh = Loader("fresh")
    assert cache.get_or_load("product:42", fresh, ttl=60, tags="product:42") == "fresh1"
    assert cache.get_or_load("product:42", fresh, ttl=60, tags="product:42") == "fresh1"
    assert fresh.calls == 1


def test_a_load_under_way_when_its_tag_already_existed_does_not_store_either(
    cache: Cache,
) -> None:
    cache.set("neighbour", "n", ttl=60, tags="catalog")  # the tag's version exists already
    old_read = BlockedLoader("old")
    thread = threading.Thread(
        target=cache.get_or_load, args=("k", old_read), kwargs={"ttl": 60, "tags": ["catalog"]}
    )
    thread.start()
    assert old_read.started.wait(5)
    cache.invalidate_tags("catalog")
    old_read.release.set()
    thread.join(10)
    assert cache.get("k", "miss") == "miss"
    assert cache.get("neighbour", "miss") == "miss"


def test_a_caller_who_joined_the_load_before_the_invalidation_loads_again(
    cache: Cache,
) -> None:
    old_read = BlockedLoader("old")
    new_read = Loader("new")
    leader_got: list[str] = []
    joiner_got: list[str] = []
    leader = threading.Thread(
        target=lambda: leader_got.append(cache.get_or_load("k", old_read, ttl=60, tags="t"))
    )
    leader.start()
    assert old_read.started.wait(5)
    joiner = threading.Thread(
        target=lambda: joiner_got.append(cache.get_or_load("k", new_read, ttl=60, tags="t"))
    )
    joiner.start()
    _wait_until(lambda: cache.stats().coalesced >= 1)  # it waits for the leader's load

    cache.invalidate_tags("t")
    old_read.release.set()
    leader.join(10)
    joiner.join(10)

    assert leader_got == ["old"]
    assert joiner_got == ["new1"]  # not the result of the load the invalidation refused
    assert new_read.calls == 1
    assert cache.get("k") == "new1"  # and its own load, which began after, was stored


def test_a_caller_arriving_after_the_invalidation_gets_a_fresh_value(cache: Cache) -> None:
    old_read = BlockedLoader("old")
    new_read = Loader("new")
    late_got: list[str] = []
    leader = threading.Thread(
        target=cache.get_or_load, args=("k", old_read), kwargs={"ttl": 60, "tags": ["t"]}
    )
    leader.start()
    assert old_read.started.wait(5)

    cache.invalidate_tags("t")
    late = threading.Thread(
        target=lambda: late_got.append(cache.get_or_load("k", new_read, ttl=60, tags="t"))
    )
    late.start()
    time.sleep(0.05)  # let it reach the store and wait on the old load's lease
    old_read.release.set()
    leader.join(10)
    late.join(10)

    assert late_got == ["new1"]
    assert old_read.calls == 1
    assert cache.get("k") == "new1"


def test_set_set_many_and_add_carry_tags(cache: Cache) -> None:
    assert cache.set("s", "set", ttl=60, tags=["product:1", "catalog"]) is True
    assert cache.set_many({"m1": 1, "m2": 2}, ttl=60, tags="catalog") == []
    assert cache.add("a", "added", ttl=60, tags=("catalog",)) is True
    cache.set("other", "kept", ttl=60, tags="users")
    assert cache.get_many(["s", "m1", "m2", "a", "other"]) == {
        "s": "set",
        "m1": 1,
        "m2": 2,
        "a": "added",
        "other": "kept",
    }

    cache.invalidate_tags("catalog")

    assert cache.get_many(["s", "m1", "m2", "a", "other"]) == {"other": "kept"}
    for key in ("s", "m1", "m2", "a"):
        assert cache.get(key, "miss") == "miss", key


def test_set_with_tags_replaces_an_entry_written_without(cache: Cache) -> None:
    cache.set("k", "untagged", ttl=60)
    cache.set("k", "tagged", ttl=60, tags="t")
    cache.invalidate_tags("t")
    assert cache.get("k", "miss") == "miss"
    cache.set("k", "untagged again", ttl=60)
    cache.invalidate_tags("t")
    assert cache.get("k") == "untagged again"


def test_add_succeeds_over_an_entry_outdated_by_a_tag_invalidation(cache: Cache) -> None:
    assert cache.add("k", "first", ttl=60, tags="t") is True
    assert cache.add("k", "second", ttl=60, tags="t") is False  # still valid
    cache.invalidate_tags("t")
    assert cache.add("k", "third", ttl=60, tags="t") is True
    assert cache.get("k") == "third"
    assert cache.add("k", "fourth", ttl=60, tags="t") is False


def test_add_without_tags_also_sees_the_entry_as_outdated(cache: Cache) -> None:
    cache.set("k", "tagged", ttl=60, tags="t")
    cache.invalidate_tags("t")
    assert _other_cache(cache).add("k", "untagged", ttl=60) is True
    assert cache.get("k") == "untagged"


def test_aadd_without_tags_also_sees_the_entry_as_outdated(cache: Cache) -> None:
    cache.set("k", "tagged", ttl=60, tags="t")
    cache.invalidate_tags("t")
    assert asyncio.run(cache.aadd("k", "untagged", ttl=60)) is True
    assert cache.get("k") == "untagged"


def test_get_without_tags_honours_the_tags_the_entry_was_written_with(cache: Cache) -> None:
    cache.set("k", "v", ttl=60, tags=["a", "b"])
    assert cache.get("k") == "v"
    assert cache.get("k") == "v"  # a second read, once the cache knows the entry's tags
    cache.invalidate_tags("b")
    assert cache.get("k", "miss") == "miss"
    # A cache that never read the entry does not know its tags, and still honours them.
    cache.set("j", "w", ttl=60, tags=["a", "b"])
    other = _other_cache(cache)
    assert other.get("j") == "w"
    cache.invalidate_tags("a")
    assert _other_cache(cache).get("j", "miss") == "miss"
    assert other.get("j", "miss") == "miss"


def test_get_or_load_with_other_tags_than_the_entry_honours_the_entrys_tags(
    memory_cache: Cache,
) -> None:
    # Reads should pass the tags the entry was written with; one that does not must still
    # never get a value outdated by an invalidation of the entry's own tags.
    memory_cache.set("k", "v", ttl=60, tags="written-with")
    memory_cache.invalidate_tags("written-with")
    load = Loader("loaded")
    assert memory_cache.get_or_load("k", load, ttl=60) == "loaded1"
    memory_cache.set("j", "w", ttl=60, tags="written-with")
    memory_cache.invalidate_tags("written-with")
    assert memory_cache.get_or_load("j", load, ttl=60, tags="read-with") == "loaded2"
    assert load.calls == 2


def test_get_many_honours_tag_invalidation(cache: Cache) -> None:
    cache.set_many({"a": 1, "b": 2}, ttl=60, tags="t")
    cache.set("c", 3, ttl=60, tags="u")
    cache.set("d", 4, ttl=60)
    assert cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": 3, "d": 4}

    cache.invalidate_tags("t")

    assert cache.get_many(["a", "b", "c", "d"]) == {"c": 3, "d": 4}
    assert _other_cache(cache).get_many(["a", "b", "c", "d"]) == {"c": 3, "d": 4}
    cache.invalidate_tags("u")
    assert _other_cache(cache).get_many(["a", "b", "c", "d"]) == {"d": 4}
    assert cache.get_many(["a", "b", "c", "d"]) == {"d": 4}


def test_async_get_or_load_with_tags_and_ainvalidate_tags(cache: Cache) -> None:
    calls: list[int] = []

    async def fetch() -> str:
        calls.append(1)
        await asyncio.sleep(0)
        return f"v{len(calls)}"

    async def scenario() -> list[object]:
        seen: list[object] = [
            await cache.aget_or_load("p", fetch, ttl=60, tags=["product:1", "catalog"]),
            await cache.aget_or_load("p", fetch, ttl=60, tags=["product:1", "catalog"]),
        ]
        await cache.aset("q", "other", ttl=60, tags="users")
        await cache.ainvalidate_tags("catalog")
        seen.append(await cache.aget("p", "miss"))
        seen.append(await cache.aget("q"))
        seen.append(await cache.aget_or_load("p", fetch, ttl=60, tags=["product:1", "catalog"]))
        seen.append(await cache.aget_many(["p", "q"]))
        return seen

    assert asyncio.run(scenario()) == ["v1", "v1", "miss", "other", "v2", {"p": "v2", "q": "other"}]
    assert calls == [1, 1]
    # What the async API invalidated, the sync API sees, and the other way round.
    cache.invalidate_tags("users")
    assert asyncio.run(cache.aget("q", "miss")) == "miss"


def test_async_load_under_way_when_its_tag_is_invalidated_does_not_store(cache: Cache) -> None:
    async def scenario() -> tuple[str, str, object, str]:
        started, release = asyncio.Event(), asyncio.Event()

        async def old_read() -> str:
            started.set()
            await release.wait()
            return "old"

        async def new_read() -> str:
            return "new"

        leader = asyncio.create_task(cache.aget_or_load("k", old_read, ttl=60, tags="t"))
        await started.wait()
        joiner = asyncio.create_task(cache.aget_or_load("k", new_read, ttl=60, tags="t"))
        for _ in range(1000):  # until the joiner waits for the leader's load
            if cache.stats().coalesced:
                break
            await asyncio.sleep(0.001)
        await cache.ainvalidate_tags("t")
        release.set()
        old, joined = await leader, await joiner
        return (
            old,
            joined,
            await cache.aget("k", "miss"),
            await cache.aget_or_load("k", new_read, ttl=60, tags="t"),
        )

    old, joined, cached, after = asyncio.run(scenario())
    assert old == "old"
    assert joined == "new"  # not the refused load's result
    assert cached == "new"  # the joiner's own load began after the invalidation
    assert after == "new"


def test_async_set_and_set_many_carry_tags(cache: Cache) -> None:
    async def scenario() -> tuple[list[str], dict[str, object], dict[str, object]]:
        assert await cache.aset("s", "set", ttl=60, tags="fresh-tag") is True
        failed = await cache.aset_many({"m1": 1, "m2": 2}, ttl=60, tags="another-fresh-tag")
        before = await cache.aget_many(["s", "m1", "m2"])
        await cache.ainvalidate_tags("fresh-tag", "another-fresh-tag")
        after = await cache.aget_many(["s", "m1", "m2"])
        return failed, before, after

    failed, before, after = asyncio.run(scenario())
    assert failed == []
    assert before == {"s": "set", "m1": 1, "m2": 2}
    assert after == {}


def test_aset_many_with_a_new_tag_keeps_and_stores_values(cache: Cache) -> None:
    cache.set("m1", "old value", ttl=60)
    failed = asyncio.run(cache.aset_many({"m1": "new value"}, ttl=60, tags="brand-new-tag"))
    assert cache.get("m1", "miss") == "new value"
    assert failed == []


@pytest.mark.parametrize(
    "tags",
    [[1], 42, ["ok", None], ("ok", b"bytes"), [["nested"]], b"raw-bytes"],
    ids=["int-in-list", "int", "none-in-list", "bytes-in-tuple", "list-in-list", "bytes"],
)
def test_tags_must_be_strings(cache: Cache, tags: object) -> None:
    load = Loader("v")
    with pytest.raises(TypeError, match="tags"):
        cache.get_or_load("k", load, tags=tags)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tags"):
        cache.set("k", "v", tags=tags)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tags"):
        cache.add("k", "v", tags=tags)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tags"):
        cache.set_many({"k": "v"}, tags=tags)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tags"):
        asyncio.run(cache.aget_or_load("k", load, tags=tags))  # type: ignore[arg-type]
    assert load.calls == 0
    assert cache.get("k", "nothing") == "nothing"


def test_invalidate_tags_refuses_non_strings(cache: Cache) -> None:
    cache.set("k", "v", ttl=60, tags="1")
    with pytest.raises(TypeError, match="tags"):
        cache.invalidate_tags(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tags"):
        asyncio.run(cache.ainvalidate_tags(None))  # type: ignore[arg-type]
    assert cache.get("k") == "v"


def test_an_entry_carries_at_most_64_tags(cache: Cache) -> None:
    tags = [f"tag-{n}" for n in range(64)]
    assert cache.set("k", "v", ttl=60, tags=tags) is True
    assert cache.get("k") == "v"
    cache.invalidate_tags("tag-63")
    assert cache.get("k", "miss") == "miss"
    with pytest.raises(ValueError, match="64"):
        cache.set("k", "v", ttl=60, tags=[*tags, "tag-64"])
    with pytest.raises(ValueError, match="64"):
        cache.get_or_load("k", Loader("v"), ttl=60, tags=[*tags, "tag-64"])


def test_invalidating_a_tag_of_1000_entries_makes_every_one_a_miss(cache: Cache) -> None:
    tagged = {f"item:{n}": n for n in range(1000)}
    others = {f"other:{n}": n for n in range(20)}
    assert cache.set_many(tagged, ttl=600, tags=["bulk", "shared"]) == []
    assert cache.set_many(others, ttl=600, tags="shared-not") == []
    keys = [*tagged, *others]
    assert cache.get_many(keys) == {**tagged, **others}
    before = cache.stats().invalidations

    cache.invalidate_tags("bulk")

    assert cache.stats().invalidations == before + 1  # one tag, however many entries
    assert cache.get_many(keys) == others
    assert _other_cache(cache).get_many(keys) == others
    load = Loader("reloaded")
    for key in ("item:0", "item:499", "item:999"):
        assert cache.get(key, "miss") == "miss"
        assert cache.get_or_load(key, load, ttl=600, tags=["bulk", "shared"]).startswith("re")
    assert load.calls == 3


def test_again_after_invalidates_the_tag_once_more(memory_cache: Cache) -> None:
    # The second invalidation is scheduled in this process: the store plays no part.
    memory_cache.invalidate_tags("t", again_after=0.3)
    # A lagging replica could refill the entry right after the first invalidation ...
    memory_cache.set("k", "refilled from a lagging replica", ttl=60, tags="t")
    assert memory_cache.get("k") == "refilled from a lagging replica"
    # ... the second one, a moment later, removes it.
    _wait_until(lambda: memory_cache.get("k", "miss") == "miss")


def test_tag_invalidations_reach_another_cache_object_on_the_same_redis(redis_url: str) -> None:
    with (
        Cache(redis_url, namespace="x", secret="s") as writer,
        Cache(redis_url, namespace="x", secret="s") as reader,
    ):
        load = Loader("v")
        assert reader.get_or_load("p", load, ttl=60, tags="product:1") == "v1"
        assert writer.get("p") == "v1"
        writer.invalidate_tags("product:1")
        assert reader.get("p", "miss") == "miss"
        assert reader.get_or_load("p", load, ttl=60, tags="product:1") == "v2"
        assert writer.get("p") == "v2"


def test_a_tag_invalidated_by_another_process_refuses_the_fill(redis_url: str) -> None:
    with (
        Cache(redis_url, namespace="x", secret="s") as loading,
        Cache(redis_url, namespace="x", secret="s") as writer,
    ):
        old_read = BlockedLoader("old")
        got: list[str] = []
        thread = threading.Thread(
            target=lambda: got.append(loading.get_or_load("k", old_read, ttl=60, tags="t"))
        )
        thread.start()
        assert old_read.started.wait(5)
        writer.invalidate_tags("t")
        old_read.release.set()
        thread.join(10)
        assert got == ["old"]
        assert loading.get("k", "miss") == "miss"
        assert writer.get("k", "miss") == "miss"


def _pttls(client: redis.Redis, pattern: str) -> dict[bytes, int]:
    return {key: client.pttl(key) for key in client.keys(pattern)}


@pytest.fixture
def redis_cache(redis_url: str) -> Iterator[Cache]:
    """A cache of its own on the test's Redis database."""
    with Cache(redis_url, namespace="x", secret="s") as cache:
        yield cache


def test_on_redis_tag_version_keys_live_at_least_as_long_as_their_entries(
    redis_cache: Cache, redis_client: redis.Redis
) -> None:
    cache = redis_cache
    long_ttl = 3 * 86_400  # longer than a version key is kept by default
    cache.set("set", "v", ttl=long_ttl, tags=["a", "b"])
    tag_pttls = _pttls(redis_client, "*:t:*")  # read first: they may only be longer
    entry_pttl = redis_client.pttl(cache.store_key("set"))
    assert len(tag_pttls) == 2
    assert entry_pttl > (long_ttl - 60) * 1000
    assert all(pttl >= entry_pttl for pttl in tag_pttls.values()), (tag_pttls, entry_pttl)

    # A shorter entry carrying the same tag does not shorten it.
    cache.set("short", "v", ttl=5, tags="a")
    tag_pttls = _pttls(redis_client, "*:t:*")
    entry_pttl = redis_client.pttl(cache.store_key("set"))
    assert all(pttl >= entry_pttl for pttl in tag_pttls.values()), (tag_pttls, entry_pttl)

    # A load's fill extends them too.
    longer = 4 * 86_400
    cache.get_or_load("loaded", lambda: "v", ttl=longer, tags="a")
    (tag_a,) = _pttls(redis_client, "*:t:{a}").values()
    entry_pttl = redis_client.pttl(cache.store_key("loaded"))
    assert entry_pttl > (longer - 60) * 1000
    assert tag_a >= entry_pttl

    # An entry that never expires keeps its tag's version key for good.
    cache.set_many({"forever": "v"}, ttl=None, tags="c")
    (tag_c,) = _pttls(redis_client, "*:t:{c}").values()
    assert redis_client.pttl(cache.store_key("forever")) == -1
    assert tag_c == -1


def test_on_redis_a_tag_invalidation_keeps_the_version_keys_lifetime(
    redis_cache: Cache, redis_client: redis.Redis
) -> None:
    redis_cache.set("k", "v", ttl=3 * 86_400, tags="t")
    redis_cache.invalidate_tags("t")
    (pttl,) = _pttls(redis_client, "*:t:*").values()
    assert pttl > (3 * 86_400 - 60) * 1000
    redis_cache.set("k", "w", ttl=3 * 86_400, tags="t")
    assert redis_cache.get("k") == "w"
