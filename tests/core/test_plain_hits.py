"""``TaggedCache.plain_hit`` (``cacheplug/_engine/plain_hits.py``): a read that answers only a
fresh, valid entry and leaves everything else — and its counting — to the general path."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from cacheplug import Cache, LocalTier
from cacheplug._types import NOTHING
from cacheplug.integration import ModelTagging, TaggedCache, plain_request
from cacheplug.stores import RedisStore
from cacheplug.testing import FakeClock

SECRET = "plain-hits-test-secret-0123456789"
TAGS = ("product:1", "catalog")


def tagged(cache: Cache, uncommitted: list[bool] | None = None) -> TaggedCache:
    writes = uncommitted if uncommitted is not None else [False]
    return TaggedCache(
        lambda: cache,
        ModelTagging(
            model_tags=lambda *models: [],
            parents=lambda table: (),
            uncommitted=lambda tags: writes[0],
            anything_uncommitted=lambda: writes[0],
        ),
    )


@pytest.fixture(params=["memory", "redis", "redis+l1"])
def cache(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Cache]:
    if request.param == "memory":
        made = Cache(namespace="plain", clock=clock)
    else:
        store = RedisStore(request.getfixturevalue("redis_url"))
        l1 = LocalTier(max_entries=100) if request.param.endswith("l1") else None
        made = Cache(store, namespace="plain", secret=SECRET, clock=clock, l1=l1)
    yield made
    made.close()


def test_a_fresh_entry_is_answered_and_counted_once(cache: Cache) -> None:
    reads = tagged(cache)
    assert reads.plain_hit("k", TAGS) is NOTHING  # absent: nothing counted
    assert (cache.stats().hits, cache.stats().misses) == (0, 0)
    cache.get_or_load("k", lambda: {"v": 1}, ttl=60, tags=list(TAGS))
    for _ in range(3):
        assert reads.plain_hit("k", TAGS) == {"v": 1}
    assert (cache.stats().hits, cache.stats().misses) == (3, 1)


def test_a_value_the_caller_does_not_want_is_not_counted(cache: Cache) -> None:
    reads = tagged(cache)
    cache.get_or_load("k", lambda: 1, ttl=60, tags=list(TAGS))
    cache.get_or_load("k", lambda: 1, ttl=60, tags=list(TAGS))  # in L1 too, where there is one
    hits = cache.stats().hits
    assert reads.plain_hit("k", TAGS, True, lambda value: False) is NOTHING
    assert reads.plain_hit("k", TAGS, False, lambda value: False) is NOTHING
    assert cache.stats().hits == hits


def test_an_invalidated_tag_or_key_is_never_answered(cache: Cache) -> None:
    reads = tagged(cache)
    cache.get_or_load("k", lambda: 1, ttl=60, tags=list(TAGS))
    assert reads.plain_hit("k", TAGS) == 1
    cache.invalidate_tags("catalog")
    assert reads.plain_hit("k", TAGS) is NOTHING
    cache.get_or_load("k", lambda: 2, ttl=60, tags=list(TAGS))
    cache.invalidate("k")
    assert reads.plain_hit("k", TAGS) is NOTHING
    cache.get_or_load("k", lambda: 3, ttl=60, tags=list(TAGS))
    cache.bump()
    assert reads.plain_hit("k", TAGS) is NOTHING


def test_an_entry_is_checked_against_the_versions_it_records(cache: Cache) -> None:
    reads = tagged(cache)
    cache.get_or_load("k", lambda: 1, ttl=60, tags=["catalog"])
    assert reads.plain_hit("k", ("catalog",)) == 1
    # Read with more tags than it records: valid, as on the general path.
    assert reads.plain_hit("k", ("catalog", "product:9")) == 1
    assert cache.get_or_load("k", lambda: 2, ttl=60, tags=["catalog", "product:9"]) == 1
    # Without tags, the versions the entry was seen to record: none known yet, and it records
    # one not read, so the general path reads again; once it has, the short read answers.
    assert reads.plain_hit("k", None) is NOTHING
    assert cache.get("k") == 1
    assert reads.plain_hit("k", None) == 1
    cache.invalidate_tags("catalog")
    assert reads.plain_hit("k", None) is NOTHING


def test_a_stale_entry_is_left_to_the_general_path(cache: Cache, clock: FakeClock) -> None:
    reads = tagged(cache)
    cache.get_or_load("k", lambda: 1, ttl=10, stale_ttl=60, tags=list(TAGS))
    clock.advance(11)
    assert reads.plain_hit("k", TAGS) is NOTHING
    # ... which serves it stale and refreshes it, as it always did.
    assert cache.get_or_load("k", lambda: 2, ttl=10, stale_ttl=60, tags=list(TAGS)) in (1, 2)


def test_an_uncommitted_write_reads_around_the_cache(cache: Cache) -> None:
    writes = [False]
    reads = tagged(cache, writes)
    cache.get_or_load("k", lambda: 1, ttl=60, tags=list(TAGS))
    writes[0] = True
    assert reads.plain_hit("k", TAGS) is NOTHING
    writes[0] = False
    assert reads.plain_hit("k", TAGS) == 1


def test_l1_only_reads_nothing_from_the_store(cache: Cache) -> None:
    reads = tagged(cache)
    cache.get_or_load("k", lambda: 1, ttl=60, tags=list(TAGS))
    assert reads.plain_hit("k", TAGS, False) is NOTHING  # not in L1 (a load is not kept)
    if cache._engine._local is None:
        return
    # A store read keeps it in L1, once the bus is heard and the write's own announcement
    # (which drops the key from every L1) has arrived: read until it holds.
    deadline = time.monotonic() + 5
    while reads.plain_hit("k", TAGS, False) is NOTHING:
        assert time.monotonic() < deadline, "L1 never kept the entry"
        cache.get_or_load("k", lambda: 1, ttl=60, tags=list(TAGS))
        time.sleep(0.01)
    assert reads.plain_hit("k", TAGS, False) == 1
    cache.invalidate_tags("catalog")
    assert reads.plain_hit("k", TAGS, False) is NOTHING


def test_bad_tags_raise_as_on_the_general_path(cache: Cache) -> None:
    with pytest.raises(TypeError, match="tags must be strings"):
        tagged(cache).plain_hit("k", (1,))  # type: ignore[arg-type]


def test_hit_policies_and_replicas_take_the_general_path_always(redis_url: str) -> None:
    with Cache(RedisStore(redis_url), namespace="plain", secret=SECRET, hot_key_replicas=2) as c:
        c.get_or_load("k", lambda: 1, ttl=60)
        assert tagged(c).plain_hit("k", None) is NOTHING
    with Cache(namespace="plain", refresh_ahead=0.5) as c:
        c.get_or_load("k", lambda: 1, ttl=60)
        assert tagged(c).plain_hit("k", None) is NOTHING


# -- plain_request: which requests the adapters send to the plain hit ---------------------------


@pytest.mark.parametrize(
    ("method", "environ", "plain"),
    [
        ("GET", {}, True),
        ("HEAD", {"QUERY_STRING": "a=1"}, True),
        ("GET", {"HTTP_COOKIE": ""}, True),  # an empty header (Django's test client) is none
        ("POST", {}, False),
        ("get", {}, False),  # methods are upper case in WSGI; anything else is not plain
        (None, {}, False),
        ("GET", {"HTTP_COOKIE": "sessionid=abc"}, False),
        ("GET", {"HTTP_AUTHORIZATION": ""}, False),  # even empty: the general path decides
        ("GET", {"HTTP_IF_NONE_MATCH": '"etag"'}, False),  # the general path answers 304s
    ],
)
def test_plain_request(method: str | None, environ: dict[str, str], plain: bool) -> None:
    assert plain_request(method, environ) is plain
