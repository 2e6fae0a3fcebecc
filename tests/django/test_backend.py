"""``CachePlugCache`` as a Django ``CACHES`` backend: Django's cache API, method by method, with
the semantics Django's own cache tests specify, on the embedded store and on a real Redis;
then Django's own users of the cache (``cache_page``, sessions, ``{% cache %}``)."""

from __future__ import annotations

import asyncio
import pickle
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import redis
from django.contrib.sessions.backends.cache import SessionStore
from django.core.cache import cache as default_cache
from django.core.cache import caches
from django.core.cache.backends.base import CacheKeyWarning
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.template import Context, Template
from django.test import Client
from django.urls import path
from django.views.decorators.cache import cache_page

from cacheplug import CacheUnavailable
from cacheplug.testing import FakeClock, free_port
from cacheplug_django.backends import CachePlugCache, close_shared_cores

BACKEND = "cacheplug_django.backends.CachePlugCache"
L1 = {"L1": {"MAX_ENTRIES": 100}}

Make = Callable[..., CachePlugCache]


@pytest.fixture(autouse=True)
def fresh_cores() -> Iterator[None]:
    """Each test starts as a fresh process: no core (and no embedded entry) left over."""
    close_shared_cores()
    yield
    close_shared_cores()


@pytest.fixture(params=["embedded", "redis"])
def location(request: pytest.FixtureRequest) -> str:
    """``LOCATION`` of each store in turn: empty (embedded) and a real redis-server."""
    if request.param == "embedded":
        return ""
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(location: str, clock: FakeClock) -> Make:
    """Backends built as Django builds them, ``CachePlugCache(LOCATION, params)``, on a fake
    clock (the embedded store's expiry and every entry's freshness follow it)."""

    def make(*, options: dict[str, Any] | None = None, **params: Any) -> CachePlugCache:
        all_options = {"CLOCK": clock, **(options or {})}
        return CachePlugCache(location, {"TIMEOUT": 300, **params, "OPTIONS": all_options})

    return make


@pytest.fixture
def cache(make: Make) -> CachePlugCache:
    return make(KEY_PREFIX="test")


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def bus_live(backend: CachePlugCache) -> bool:
    """The invalidation bus is subscribed (L1 serves nothing before; instant when embedded)."""
    return wait_until(lambda: backend.core.store.fills.live)


@dataclass
class Point:
    x: int
    y: int


class Unpicklable:
    def __getstate__(self) -> Any:
        raise pickle.PickleError("not today")


def _moved() -> None:
    pass


_moved.__qualname__ = "no_longer_here"  # pickle finds no function by that name


FORGED_CALLS: list[str] = []


def _forged() -> None:
    FORGED_CALLS.append("ran")


class Forged:
    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        return _forged, ()


# -- get / set / add -------------------------------------------------------------------------


def test_get_returns_the_default_until_a_value_is_set(cache: CachePlugCache) -> None:
    assert cache.get("answer") is None
    assert cache.get("answer", "default") == "default"
    cache.set("answer", 42)
    assert cache.get("answer") == 42
    cache.set("answer", 43)
    assert cache.get("answer", "default") == 43


def test_a_cached_none_is_a_value_not_a_miss(cache: CachePlugCache) -> None:
    cache.set("null", None)
    assert cache.get("null", "default") is None
    assert cache.has_key("null")
    assert "null" in cache
    assert cache.get_many(["null"]) == {"null": None}
    assert not cache.add("null", "other")


def test_any_picklable_value_comes_back_equal_and_of_its_type(cache: CachePlugCache) -> None:
    values = {
        "point": Point(1, 2),
        "when": datetime(2024, 5, 17, 12, 30, tzinfo=UTC),
        "price": Decimal("9.99"),
        "nested": {"a": [1, (2, 3)], "b": {4, 5}, "c": b"\x00\xff"},
        "text": "héllo",
        "float": 1.5,
    }
    for key, value in values.items():
        cache.set(key, value)
    for key, value in values.items():
        got = cache.get(key)
        assert got == value
        assert type(got) is type(value)


def test_add_stores_only_when_the_key_holds_nothing(
    cache: CachePlugCache, clock: FakeClock
) -> None:
    assert cache.add("k", "first")
    assert not cache.add("k", "second")
    assert cache.get("k") == "first"
    cache.delete("k")
    assert cache.add("k", "third", 10)
    clock.advance(11)
    assert cache.add("k", "after expiry")
    assert cache.get("k") == "after expiry"


@pytest.mark.parametrize("l1", [False, True], ids=["no-l1", "l1"])
def test_every_reader_gets_its_own_copy(make: Make, l1: bool) -> None:
    cache = make(KEY_PREFIX="test", options=L1 if l1 else {})
    assert not l1 or bus_live(cache)
    cache.set("cart", {"items": [1]})
    for _ in range(3):
        cache.get("cart")["items"].append("changed in place")
        cache.get_many(["cart"])["cart"]["items"].append("changed in place")
        loaded = cache.get_or_set("cart", None)
        assert loaded is not None
        loaded["items"].append("changed in place")
    assert cache.get("cart") == {"items": [1]}
    if l1:
        assert cache.core.stats().l1_hits > 0  # the copies were of what L1 holds


def test_backends_with_the_same_settings_share_their_entries(make: Make) -> None:
    # Django builds one backend object per thread: they must see one cache.
    first, second = make(KEY_PREFIX="test"), make(KEY_PREFIX="test")
    first.set("k", "v")
    assert second.get("k") == "v"
    second.delete("k")
    assert first.get("k") is None


# -- timeouts ----------------------------------------------------------------------------------


def test_the_default_timeout_is_the_TIMEOUT_setting(make: Make, clock: FakeClock) -> None:
    cache = make(KEY_PREFIX="test", TIMEOUT=10)
    cache.set("k", "v")
    clock.advance(9)
    assert cache.get("k") == "v"
    clock.advance(2)
    assert cache.get("k") is None
    assert not cache.has_key("k")


def test_a_timeout_argument_overrides_the_default(make: Make, clock: FakeClock) -> None:
    cache = make(KEY_PREFIX="test", TIMEOUT=10)
    cache.set("k", "v", 100)
    clock.advance(50)
    assert cache.get("k") == "v"
    clock.advance(51)
    assert cache.get("k") is None


def test_sub_second_timeouts_are_kept(cache: CachePlugCache, clock: FakeClock) -> None:
    cache.set("k", "v", 0.5)
    clock.advance(0.4)
    assert cache.get("k") == "v"
    clock.advance(0.2)
    assert cache.get("k") is None


def test_timeout_none_caches_forever(make: Make, clock: FakeClock) -> None:
    cache = make(KEY_PREFIX="test")
    forever = make(KEY_PREFIX="test", TIMEOUT=None)
    cache.set("explicit", "v", None)
    forever.set("default", "v")
    clock.advance(10 * 365 * 86400)
    assert cache.get("explicit") == "v"
    assert forever.get("default") == "v"


@pytest.mark.parametrize("timeout", [0, -1, -0.5])
def test_a_non_positive_timeout_caches_nothing_and_removes_the_old_value(
    cache: CachePlugCache, timeout: float
) -> None:
    cache.set("k", "old")
    cache.set("k", "new", timeout)
    assert cache.get("k") is None
    cache.set_many({"a": 1, "b": 2})
    assert cache.set_many({"a": 10, "b": 20}, timeout) == []
    assert cache.get_many(["a", "b"]) == {}


@pytest.mark.parametrize("timeout", [0, -1])
def test_add_with_a_non_positive_timeout(cache: CachePlugCache, timeout: float) -> None:
    assert cache.add("absent", "v", timeout)  # added, and expired at once
    assert cache.get("absent") is None
    cache.set("present", "kept")
    assert not cache.add("present", "v", timeout)
    assert cache.get("present") == "kept"


def test_timeouts_reach_redis_as_key_ttls(redis_url: str, redis_client: redis.Redis) -> None:
    cache = CachePlugCache(redis_url, {"TIMEOUT": 300, "KEY_PREFIX": "test"})

    def pttl(key: str) -> int:
        return int(redis_client.pttl(cache.core.store_key(cache.make_key(key))))

    cache.set("default", "v")
    cache.set("short", "v", 30)
    cache.set("forever", "v", None)
    assert 290_000 < pttl("default") <= 300_000
    assert 20_000 < pttl("short") <= 30_000
    assert pttl("forever") == -1
    cache.set("short", "v", 0)
    assert pttl("short") == -2  # gone from Redis, not just hidden


# -- get_or_set ----------------------------------------------------------------------------------


def test_get_or_set_stores_the_default_once(cache: CachePlugCache) -> None:
    assert cache.get_or_set("projector", 42) == 42
    assert cache.get("projector") == 42
    assert cache.get_or_set("projector", 43) == 42
    assert cache.get_or_set("null", None) is None
    assert cache.get("null", "default") is None  # None was stored


def test_get_or_set_calls_a_callable_default_only_on_a_miss(cache: CachePlugCache) -> None:
    calls: list[int] = []

    def compute() -> str:
        calls.append(1)
        return "value"

    assert cache.get_or_set("k", compute) == "value"
    assert cache.get_or_set("k", compute) == "value"
    assert cache.get_or_set("k", compute()) == "value"
    assert len(calls) == 2  # the first miss, and the explicit call above
    assert cache.get_or_set("none", lambda: None) is None
    assert cache.get("none", "default") is None


def test_get_or_set_with_versions_and_timeouts(cache: CachePlugCache, clock: FakeClock) -> None:
    assert cache.get_or_set("brian", 1979, version=2) == 1979
    assert cache.get("brian") is None
    assert cache.get("brian", version=2) == 1979
    assert cache.get_or_set("brief", "v", 10) == "v"
    clock.advance(11)
    assert cache.get_or_set("brief", "again", 10) == "again"
    assert cache.get_or_set("never", "v", 0) == "v"
    assert cache.get("never") is None


def test_get_or_set_caches_nothing_when_the_default_raises(cache: CachePlugCache) -> None:
    def broken() -> str:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError, match="database down"):
        cache.get_or_set("k", broken)
    assert not cache.has_key("k")
    assert cache.get_or_set("k", lambda: "fine") == "fine"


def test_concurrent_misses_share_one_call_of_the_default(make: Make) -> None:
    release = threading.Event()
    calls: list[int] = []

    def slow() -> str:
        calls.append(1)
        release.wait(10)
        return "value"

    backends = [make(KEY_PREFIX="test") for _ in range(5)]  # one per thread, as in Django
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda b=b: results.append(b.get_or_set("k", slow)))
        for b in backends
    ]
    for thread in threads:
        thread.start()
    joined = wait_until(lambda: backends[0].core.stats().coalesced >= 4)
    release.set()
    for thread in threads:
        thread.join()
    assert joined
    assert calls == [1]
    assert results == ["value"] * 5


# -- touch ----------------------------------------------------------------------------------------


def test_touch_gives_a_key_a_new_timeout(cache: CachePlugCache, clock: FakeClock) -> None:
    assert not cache.touch("missing")
    cache.set("k", "v", 10)
    assert cache.touch("k", 100)
    clock.advance(50)
    assert cache.get("k") == "v"
    clock.advance(51)
    assert cache.get("k") is None
    assert not cache.touch("k")  # expired


def test_touch_with_none_keeps_forever_and_with_zero_expires(make: Make, clock: FakeClock) -> None:
    cache = make(KEY_PREFIX="test", TIMEOUT=10)
    cache.set("forever", "v")
    cache.set("doomed", "v")
    assert cache.touch("forever", None)
    assert cache.touch("doomed", 0)
    assert cache.get("doomed") is None
    clock.advance(10 * 365 * 86400)
    assert cache.get("forever") == "v"


def test_touch_with_the_default_timeout(make: Make, clock: FakeClock) -> None:
    cache = make(KEY_PREFIX="test", TIMEOUT=10)
    cache.set("k", "v", None)
    assert cache.touch("k")
    clock.advance(11)
    assert cache.get("k") is None


# -- delete, the *_many calls, has_key ------------------------------------------------------------


def test_delete_reports_whether_there_was_a_value(cache: CachePlugCache) -> None:
    cache.set("k", "v")
    assert cache.delete("k")
    assert cache.get("k") is None
    assert not cache.delete("k")


def test_get_many_returns_only_the_keys_that_hold_values(cache: CachePlugCache) -> None:
    cache.set("a", "A")
    cache.set("b", None)
    cache.set(5, "five")  # Django keys need not be strings
    cache.set("c", "C", version=2)
    assert cache.get_many(["a", "b", "c", "d", 5]) == {"a": "A", "b": None, 5: "five"}
    assert cache.get_many(iter(["a", "c"]), version=2) == {"c": "C"}
    assert cache.get_many([]) == {}


def test_set_many_and_delete_many(cache: CachePlugCache, clock: FakeClock) -> None:
    assert cache.set_many({"a": 1, "b": 2, "c": 3}, 10) == []
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}
    assert cache.set_many({}) == []
    cache.delete_many(["a", "b", "missing"])
    assert cache.get_many(["a", "b", "c"]) == {"c": 3}
    cache.delete_many([])
    clock.advance(11)
    assert cache.get("c") is None


def test_set_many_returns_the_keys_it_could_not_store(make: Make) -> None:
    cache = make(KEY_PREFIX="test", options={"MAX_VALUE_BYTES": 2000})
    cache.set("big", "old")
    failed = cache.set_many({"small": "s", "big": "x" * 10_000})
    assert failed == ["big"]
    assert cache.get_many(["small", "big"]) == {"small": "s"}  # no stale "old" either


def test_has_key_and_in(cache: CachePlugCache, clock: FakeClock) -> None:
    assert not cache.has_key("k")
    assert "k" not in cache
    cache.set("k", "v", 10)
    assert cache.has_key("k")
    assert "k" in cache
    assert not cache.has_key("k", version=2)
    clock.advance(11)
    assert not cache.has_key("k")


# -- incr / decr ---------------------------------------------------------------------------------


def test_incr_and_decr(cache: CachePlugCache) -> None:
    cache.set("answer", 42)
    assert cache.incr("answer") == 43
    assert cache.get("answer") == 43
    assert cache.incr("answer", 10) == 53
    assert cache.incr("answer", -10) == 43
    assert cache.decr("answer") == 42
    assert cache.decr("answer", 10) == 32
    assert cache.decr("answer", -10) == 42
    assert cache.get("answer") == 42


@pytest.mark.parametrize("call", ["incr", "decr"])
def test_incr_and_decr_of_a_missing_key_raise_value_error(cache: CachePlugCache, call: str) -> None:
    with pytest.raises(ValueError, match="not found"):
        getattr(cache, call)("does_not_exist")
    with pytest.raises(ValueError, match="not found"):
        getattr(cache, call)("does_not_exist", -1)
    assert not cache.has_key("does_not_exist")


@pytest.mark.parametrize("value", [None, "text"])
def test_incr_of_a_non_number_raises_type_error(cache: CachePlugCache, value: Any) -> None:
    cache.set("k", value)
    with pytest.raises(TypeError):
        cache.incr("k")
    assert cache.get("k", "default") == value


def test_incr_keeps_the_expiry(cache: CachePlugCache, clock: FakeClock) -> None:
    cache.set("brief", 1, 10)
    cache.set("forever", 1, None)
    assert cache.incr("brief") == 2
    assert cache.incr("forever") == 2
    clock.advance(11)
    assert cache.get("brief") is None
    assert cache.get("forever") == 2
    with pytest.raises(ValueError, match="not found"):
        cache.incr("brief")


def test_incr_with_versions(cache: CachePlugCache) -> None:
    cache.set("answer", 1, version=1)
    cache.set("answer", 100, version=2)
    assert cache.incr("answer", version=2) == 101
    assert cache.get("answer") == 1
    assert cache.decr("answer") == 0
    assert cache.get("answer", version=2) == 101


def test_concurrent_increments_are_all_counted(make: Make) -> None:
    make(KEY_PREFIX="test").set("hits", 0)

    def work() -> None:
        backend = make(KEY_PREFIX="test")  # each thread its own object, as in Django
        for _ in range(20):
            backend.incr("hits")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert make(KEY_PREFIX="test").get("hits") == 160


# -- versions, prefixes, key functions ------------------------------------------------------------


def test_versions_keep_values_apart(make: Make) -> None:
    v1 = make(KEY_PREFIX="test", VERSION=1)
    v2 = make(KEY_PREFIX="test", VERSION=2)
    v1.set("k", "one")
    v2.set("k", "two")
    assert v1.get("k") == "one"
    assert v2.get("k") == "two"
    assert v1.get("k", version=2) == "two"
    assert v2.get("k", version=1) == "one"
    assert v1.get("k", version=3) is None
    v1.delete("k", version=2)
    assert v2.get("k") is None
    assert v1.get("k") == "one"


def test_incr_version_and_decr_version(cache: CachePlugCache) -> None:
    cache.set("answer", 42, version=2)
    assert cache.get("answer") is None
    assert cache.incr_version("answer", version=2) == 3
    assert cache.get("answer", version=2) is None
    assert cache.get("answer", version=3) == 42
    assert cache.decr_version("answer", version=3) == 2
    assert cache.get("answer", version=2) == 42
    assert cache.get("answer", version=3) is None
    cache.set("null", None)
    assert cache.incr_version("null") == 2
    assert cache.get("null", "default", version=2) is None
    with pytest.raises(ValueError, match="not found"):
        cache.incr_version("does_not_exist")
    with pytest.raises(ValueError, match="not found"):
        cache.decr_version("does_not_exist")


def test_key_prefixes_keep_caches_apart(make: Make) -> None:
    first, second = make(KEY_PREFIX="first"), make(KEY_PREFIX="second")
    first.set("k", "first's")
    assert second.get("k") is None
    second.set("k", "second's")
    assert first.get("k") == "first's"


def test_a_key_function_makes_the_keys(make: Make) -> None:
    def versionless(key: Any, key_prefix: str, version: Any) -> str:
        return f"{key_prefix}|{key}"

    cache = make(KEY_PREFIX="test", KEY_FUNCTION=versionless)
    cache.set("k", "v", version=1)
    assert cache.get("k", version=7) == "v"
    assert cache.make_key("k") == "test|k"


# -- clear ----------------------------------------------------------------------------------------


def test_clear_forgets_every_value_version_and_counter(make: Make) -> None:
    cache = make(KEY_PREFIX="test")
    other_version = make(KEY_PREFIX="test", VERSION=2)
    cache.set_many({"a": 1, "b": None})
    other_version.set("c", 3)
    cache.set("counter", 1)
    cache.incr("counter")
    cache.clear()
    assert cache.get_many(["a", "b", "counter"]) == {}
    assert other_version.get("c") is None
    assert not cache.has_key("b")
    cache.set("a", "again")
    assert cache.get("a") == "again"


def test_clear_leaves_other_prefixes_and_namespaces_alone(make: Make) -> None:
    cache = make(KEY_PREFIX="test")
    other_prefix = make(KEY_PREFIX="other")
    other_namespace = make(KEY_PREFIX="test", options={"NAMESPACE": "elsewhere"})
    for backend in (cache, other_prefix, other_namespace):
        backend.set("k", "v")
        backend.set("n", 1)
        backend.incr("n")
    cache.clear()
    assert cache.get("k") is None
    assert other_prefix.get_many(["k", "n"]) == {"k": "v", "n": 2}
    assert other_namespace.get_many(["k", "n"]) == {"k": "v", "n": 2}


def test_clear_never_touches_other_keys_on_the_redis_server(
    redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.set("someone:else", b"theirs")
    redis_client.set(":1:k", b"same name as a Django key")
    cache = CachePlugCache(redis_url, {})
    cache.set("k", "v")
    cache.clear()
    assert cache.get("k") is None
    assert redis_client.get("someone:else") == b"theirs"
    assert redis_client.get(":1:k") == b"same name as a Django key"


# -- keys Django warns about ----------------------------------------------------------------------

OPERATIONS: dict[str, Callable[[CachePlugCache, str], object]] = {
    "get": lambda c, k: c.get(k),
    "set": lambda c, k: c.set(k, 1),
    "add": lambda c, k: c.add(k, 1),
    "get_or_set": lambda c, k: c.get_or_set(k, 1),
    "touch": lambda c, k: c.touch(k),
    "delete": lambda c, k: c.delete(k),
    "get_many": lambda c, k: c.get_many([k]),
    "set_many": lambda c, k: c.set_many({k: 1}),
    "delete_many": lambda c, k: c.delete_many([k]),
    "has_key": lambda c, k: c.has_key(k),
    "incr": lambda c, k: c.incr(k),
    "decr": lambda c, k: c.decr(k),
    "incr_version": lambda c, k: c.incr_version(k),
    "aget": lambda c, k: asyncio.run(c.aget(k)),
    "aset": lambda c, k: asyncio.run(c.aset(k, 1)),
    "adelete": lambda c, k: asyncio.run(c.adelete(k)),
}


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize(
    ("key", "message"),
    [("k" * 251, "longer than 250"), ("key with spaces", "characters"), ("tab\tkey", "characters")],
    ids=["too-long", "space", "control"],
)
def test_keys_memcached_would_refuse_warn(
    cache: CachePlugCache, operation: str, key: str, message: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheKeyWarning)
        cache.set(key, 1)
    with pytest.warns(CacheKeyWarning, match=message):
        OPERATIONS[operation](cache, key)


def test_keys_that_warn_still_work_and_stay_distinct(cache: CachePlugCache) -> None:
    long_one, long_two = "a" * 300 + "1", "a" * 300 + "2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheKeyWarning)
        cache.set(long_one, "one")
        cache.set(long_two, "two")
        cache.set("with space", "spaced")
        assert cache.get(long_one) == "one"
        assert cache.get(long_two) == "two"
        assert cache.get("with space") == "spaced"
        assert cache.get("with_space") is None


def test_ordinary_keys_do_not_warn(cache: CachePlugCache) -> None:
    with warnings.catch_warnings():
        # Only the key warning: "error" for every category also turned a ResourceWarning that
        # the garbage collector happened to emit here, for an earlier test's event-loop
        # connections, into a failure of this test.
        warnings.simplefilter("error", CacheKeyWarning)
        cache.set("user:42:profile", "v")
        assert cache.get("user:42:profile") == "v"


# -- values pickle cannot handle ------------------------------------------------------------------


def pickling_error(value: object) -> type[Exception]:
    """What ``pickle.dumps(value)`` raises (what Django's RedisCache raises for it)."""
    try:
        pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        return type(exc)
    raise AssertionError(f"{value!r} can be pickled")


UNPICKLABLE: dict[str, Callable[[], object]] = {
    "pickle-error": Unpicklable,  # its __getstate__ raises pickle.PickleError
    "moved-function": lambda: _moved,  # pickle.PicklingError
    "local-function": lambda: lambda: None,  # AttributeError
    "lock": threading.Lock,  # TypeError
}


@pytest.mark.parametrize("unpicklable", UNPICKLABLE)
def test_an_unpicklable_value_raises_what_pickle_raises(
    cache: CachePlugCache, unpicklable: str
) -> None:
    value = UNPICKLABLE[unpicklable]()
    expected = pickling_error(value)
    cache.set("k", "old")
    writes: list[Callable[[], object]] = [
        lambda: cache.set("k", value),
        lambda: cache.add("new", value),
        lambda: cache.set_many({"k": value}),
        lambda: asyncio.run(cache.aset("k", value)),
        lambda: asyncio.run(cache.aadd("new", value)),
    ]
    for write in writes:
        with pytest.raises(expected) as raised:
            write()
        assert type(raised.value) is expected
    assert cache.get("k") == "old"
    assert cache.get("new") is None


def test_a_pickle_written_behind_the_caches_back_is_never_loaded(
    redis_url: str, redis_client: redis.Redis
) -> None:
    cache = CachePlugCache(redis_url, {})
    cache.set("k", "genuine")
    redis_client.set(cache.core.store_key(cache.make_key("k")), pickle.dumps(Forged()))
    assert cache.get("k") is None
    assert FORGED_CALLS == []


def test_entries_signed_with_another_secret_are_misses(redis_url: str) -> None:
    writer = CachePlugCache(redis_url, {"OPTIONS": {"SECRET": "one"}})
    reader = CachePlugCache(redis_url, {"OPTIONS": {"SECRET": "two"}})
    writer.set("k", {"a": 1})
    assert reader.get("k") is None
    assert writer.get("k") == {"a": 1}


# -- async ----------------------------------------------------------------------------------------


def test_the_async_api(cache: CachePlugCache) -> None:
    async def scenario() -> None:
        assert await cache.aget("k", "default") == "default"
        await cache.aset("k", {"v": 1})
        assert await cache.aget("k") == {"v": 1}
        assert not await cache.aadd("k", "other")
        assert await cache.aadd("new", None)
        assert await cache.ahas_key("new")
        assert await cache.aset_many({"a": 1, "b": 2}) == []
        assert await cache.aget_many(["a", "b", "missing"]) == {"a": 1, "b": 2}
        await cache.adelete_many(["a"])
        assert await cache.aget_many(["a", "b"]) == {"b": 2}
        assert await cache.adelete("b")
        assert not await cache.adelete("b")
        await cache.aset("n", 10)
        assert await cache.aincr("n") == 11
        assert await cache.adecr("n", 5) == 6
        with pytest.raises(ValueError, match="not found"):
            await cache.aincr("missing")
        assert await cache.atouch("n", None)
        assert not await cache.atouch("missing")
        assert await cache.aincr_version("n") == 2
        assert await cache.aget("n", version=2) == 6
        await cache.aset("gone", "v", 0)
        assert not await cache.ahas_key("gone")
        await cache.aclose()
        assert await cache.aget("k") == {"v": 1}

    asyncio.run(scenario())
    assert cache.get("k") == {"v": 1}  # and the sync API sees the same entries
    asyncio.run(cache.aclear())
    assert cache.get("k") is None


def test_async_get_or_set(cache: CachePlugCache) -> None:
    calls: list[int] = []

    async def compute() -> str:
        calls.append(1)
        return "computed"

    async def scenario() -> None:
        assert await cache.aget_or_set("k", compute) == "computed"
        assert await cache.aget_or_set("k", compute) == "computed"
        assert await cache.aget_or_set("plain", 7) == 7
        assert await cache.aget_or_set("never", "v", 0) == "v"
        assert not await cache.ahas_key("never")

    asyncio.run(scenario())
    asyncio.run(scenario())  # a second event loop works too
    assert calls == [1]
    assert cache.get("k") == "computed"


# -- close, laziness, configuration, failures -----------------------------------------------------


def test_close_keeps_the_cache_usable(cache: CachePlugCache) -> None:
    cache.set("k", "v")
    cache.close()
    assert cache.get("k") == "v"
    cache.set("k", "w")
    assert cache.get("k") == "w"


def test_nothing_is_connected_or_read_before_first_use(settings: Any) -> None:
    settings.SECRET_KEY = ""  # read only when the core is built
    url = f"redis://127.0.0.1:{free_port()}/0"
    cache = CachePlugCache(url, {})
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        cache.get("k")


def test_an_unreachable_redis_fails_open_except_for_counters() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    cache = CachePlugCache(url, {"OPTIONS": {"SECRET": "s"}})
    assert cache.get("k", "default") == "default"
    cache.set("k", "v")
    assert not cache.add("k", "v")
    assert not cache.delete("k")
    assert cache.get_many(["k"]) == {}
    assert cache.set_many({"k": "v"}) == ["k"]
    assert cache.get_or_set("k", lambda: "computed") == "computed"
    assert not cache.touch("k")
    with pytest.raises(CacheUnavailable):
        cache.incr("k")


def test_strict_mode_raises_when_redis_is_unreachable() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    cache = CachePlugCache(url, {"OPTIONS": {"SECRET": "s", "STRICT": True}})
    with pytest.raises(CacheUnavailable):
        cache.get("k")
    with pytest.raises(CacheUnavailable):
        cache.set("k", "v")


@pytest.mark.parametrize(
    ("location", "params", "message"),
    [
        ("", {"OPTIONS": {"NAMESPCE": "typo"}}, "unknown keys"),
        ("", {"OPTIONS": {"L1": 1000}}, "must be a dict"),
        ("", {"OPTIONS": {"L1": {"SIZE": 1}}}, "unknown keys"),
        ("", {"OPTIONS": {"L1": {"MAX_ENTRIES": 0}}}, "not valid"),
        (["redis://a:6379", "redis://b:6379"], {}, "one LOCATION"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(
    location: Any, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        CachePlugCache(location, params)


@pytest.mark.parametrize(
    ("location", "options", "message"),
    [
        ("memcached://127.0.0.1:11211", {}, "unknown store URL scheme"),
        ("", {"NAMESPACE": "not a namespace!"}, "namespace"),
        ("", {"MAX_ENTRIES": 0}, "max_entries"),
    ],
)
def test_settings_only_the_core_can_check_are_refused_on_first_use(
    location: str, options: dict[str, Any], message: str
) -> None:
    cache = CachePlugCache(location, {"OPTIONS": options})
    with pytest.raises(ImproperlyConfigured, match=message):
        cache.get("k")


def test_l1_hears_writes_made_by_other_processes(redis_url: str) -> None:
    with_l1 = CachePlugCache(redis_url, {"OPTIONS": L1})
    elsewhere = CachePlugCache(redis_url, {})  # another core: another process, as far as L1 knows
    elsewhere.set("k", "old")
    assert bus_live(with_l1)
    for _ in range(3):
        assert with_l1.get("k") == "old"
    assert with_l1.core.stats().l1_hits > 0
    elsewhere.set("k", "new")
    assert wait_until(lambda: with_l1.get("k") == "new")


# -- Django's own users of the cache --------------------------------------------------------------

RENDERS: list[str] = []


@cache_page(60)
def cached_view(request: HttpRequest) -> HttpResponse:
    RENDERS.append(request.path)
    return HttpResponse(f"rendered {len(RENDERS)} time(s)")


urlpatterns = [path("cached/", cached_view)]


@pytest.fixture
def configured(location: str, settings: Any) -> CachePlugCache:
    """The backend as the project's default cache, through ``CACHES``."""
    settings.CACHES = {
        "default": {
            "BACKEND": BACKEND,
            "LOCATION": location,
            "TIMEOUT": 300,
            "KEY_PREFIX": "site",
            "OPTIONS": L1,
        }
    }
    backend = caches["default"]
    assert isinstance(backend, CachePlugCache)
    return backend


@pytest.mark.urls(__name__)
def test_cache_page_renders_once_then_serves_from_the_cache(configured: CachePlugCache) -> None:
    RENDERS.clear()
    first = Client().get("/cached/")
    second = Client().get("/cached/")
    assert first.content == second.content == b"rendered 1 time(s)"
    assert RENDERS == ["/cached/"]
    assert "max-age=60" in second["Cache-Control"]
    configured.clear()
    assert Client().get("/cached/").content == b"rendered 2 time(s)"


def test_sessions_on_the_cache_backend(configured: CachePlugCache, settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    assert bus_live(configured)
    session = SessionStore()
    session["cart"] = [1]
    session.save()
    key = session.session_key
    assert key is not None
    reader = SessionStore(key)
    reader["cart"].append(2)  # changed, never saved: nobody else may see it
    for _ in range(3):
        assert SessionStore(key)["cart"] == [1]
    assert SessionStore(key).exists(key)
    session.delete()
    assert not SessionStore(key).exists(key)
    assert SessionStore(key).get("cart") is None


def test_the_cache_template_tag(configured: CachePlugCache) -> None:
    template = Template("{% load cache %}{% cache 60 sidebar %}{{ n }}{% endcache %}")
    assert template.render(Context({"n": 1})) == "1"
    assert template.render(Context({"n": 2})) == "1"
    default_cache.clear()
    assert template.render(Context({"n": 3})) == "3"


@pytest.mark.parametrize("compression", ["zlib", "zstd"])
def test_options_compression_stores_a_page_compressed(make: Make, compression: str) -> None:
    page = "<tr><td>lamp</td><td>12.50</td></tr>\n" * 1000  # 37 KB, very repetitive
    plain = make(KEY_PREFIX="plain")
    packed = make(KEY_PREFIX="packed", options={"COMPRESSION": compression})
    for backend in (plain, packed):
        backend.set("page", page)
        assert backend.get("page") == page
    plain_info = plain.core.inspect(plain.make_key("page"))
    packed_info = packed.core.inspect(packed.make_key("page"))
    assert plain_info is not None
    assert packed_info is not None
    assert packed_info.size < plain_info.size / 10


def test_options_compression_must_be_known(make: Make) -> None:
    backend = make(options={"COMPRESSION": "gzip"})
    with pytest.raises(ImproperlyConfigured, match="zstd"):
        backend.get("k")
