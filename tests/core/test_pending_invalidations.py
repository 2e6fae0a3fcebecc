"""Invalidations that cannot reach the store are queued, retried, and honoured meanwhile.

Each test runs its own ``redis-server`` so that it can stop and restart it. ``SAVE`` before a
stop keeps the old entries on disk: the restarted server loads them again, so a read that
failed to bypass the cache while an invalidation is still pending would return the old value.

Some tests hold that window open deterministically: the server is (re)started with a default
user that may not run Lua scripts (``-evalsha -eval``). Reads (``MGET``) work, but every
invalidation (a script) fails with ``NOPERM``, so it stays queued until the test gives the
permission back with ``ACL SETUSER default +@all``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

import pytest
import redis

from cacheplug import Cache, CacheUnavailable, CircuitBreaker, MemoryStore
from cacheplug.testing import RedisServer, free_port

SECRET: Final = "pending-invalidations-test-secret"
NAMESPACE: Final = "pend"
KEY: Final = "product-page"
TAG: Final = "product:42"
DATA_KEY: Final = "pend:0:d:{product-page}"
TAG_KEY: Final = "pend:0:t:{product:42}"
ROOT_NAMESPACE_KEY: Final = "pend:0:n:{*}"
NESTED_NAMESPACE_KEY: Final = "pend/sub:0:n:{*}"
ABSENT: Final = "<absent>"
WAIT: Final = 10.0
"""Seconds any bounded wait may take (the retry backoff is at most 2 s)."""
DENY_SCRIPTS: Final = (
    *("--user", "default", "on", "nopass", "~*", "&*", "+@all"),
    *("-evalsha", "-eval"),
)
"""redis-server arguments: reads work, scripts (every invalidation) fail with NOPERM."""

KINDS: Final = ("key", "tag", "namespace", "nested-namespace")

EXPECTED_PENDING: Final[dict[str, tuple[str, str]]] = {
    "key": ("key", DATA_KEY),
    "tag": ("tag", TAG_KEY),
    "namespace": ("namespace", ROOT_NAMESPACE_KEY),
    "nested-namespace": ("namespace", NESTED_NAMESPACE_KEY),
}

WATCHED_KEY: Final[dict[str, str]] = {
    "key": DATA_KEY,
    "tag": TAG_KEY,
    "namespace": ROOT_NAMESPACE_KEY,
    "nested-namespace": NESTED_NAMESPACE_KEY,
}
"""The store key each kind of invalidation changes (removes or bumps)."""


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A redis-server of this test's own (stopped and removed afterwards)."""
    with RedisServer() as own:
        yield own


def redis_command(server: RedisServer, *command: str) -> Any:
    """Run one command on ``server`` with a fresh plain client (it may have restarted)."""
    client = redis.Redis.from_url(server.url)
    try:
        return client.execute_command(*command)  # type: ignore[no-untyped-call]
    finally:
        client.close()


def save(server: RedisServer) -> None:
    """Write the dataset to dump.rdb: a restart on the same dir loads it back."""
    assert redis_command(server, "SAVE") in (True, b"OK")


def deny_scripts(server: RedisServer) -> None:
    redis_command(server, "ACL", "SETUSER", "default", "-evalsha", "-eval")


def allow_scripts(server: RedisServer) -> None:
    redis_command(server, "ACL", "SETUSER", "default", "+@all")


def make_cache(url: str, **options: Any) -> Cache:
    """A signed cache whose breaker never opens: every read while Redis is up reaches it."""
    options.setdefault("breaker", CircuitBreaker(failure_threshold=10**9, reset_timeout=0.1))
    return Cache(url, namespace=NAMESPACE, secret=SECRET, **options)


def pending(cache: Cache) -> list[tuple[str, str]]:
    return [(item.kind, item.store_key) for item in cache.pending_invalidations()]


def view_of(cache: Cache, kind: str) -> Cache:
    """Where the test entry lives: the nested namespace for that kind, else the cache."""
    if kind == "nested-namespace":
        view: Cache = cache.namespace("sub")
        return view
    return cache


def invalidate(cache: Cache, kind: str) -> None:
    """The invalidation under test; it must never raise (the cache is not strict)."""
    if kind == "key":
        cache.invalidate(KEY)
    elif kind == "tag":
        cache.invalidate_tags(TAG)
    elif kind == "namespace":
        cache.bump()
    else:
        cache.namespace("sub").bump()


class Source:
    """The database behind the cache: its current value, and every loader call."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.loads = 0

    def load(self) -> str:
        self.loads += 1
        return self.value


class Reader:
    """Reads one key through every read path and keeps every value any of them returned."""

    def __init__(
        self, cache: Cache, source: Source, *, get_many: bool = True, key: str = KEY
    ) -> None:
        self.cache = cache
        self.source = source
        self.get_many = get_many
        self.key = key
        self.seen: list[Any] = []

    def read(self) -> None:
        cache = self.cache
        self.seen.append(cache.get_or_load(self.key, self.source.load, tags=[TAG]))
        self.seen.append(cache.get(self.key, ABSENT))
        if self.get_many:
            self.seen.append(cache.get_many([self.key]).get(self.key, ABSENT))

    def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.read()
            time.sleep(0.01)

    def read_until_applied(self) -> None:
        """Keep reading until nothing is pending any more (bounded)."""
        deadline = time.monotonic() + WAIT
        while self.cache.pending_invalidations():
            assert time.monotonic() < deadline, (
                f"still pending after {WAIT} s: {self.cache.pending_invalidations()}"
            )
            self.read()
            time.sleep(0.01)

    def stale(self) -> list[Any]:
        return [value for value in self.seen if value == "old"]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up after {WAIT} s waiting for {what}"
        time.sleep(0.01)


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "cacheplug" and r.levelno >= logging.ERROR]


# -- the acceptance criterion: stopped, invalidated, restarted -----------------------------------


@pytest.mark.parametrize("kind", ["tag", "key"])
def test_invalidation_queued_while_redis_is_down_is_applied_after_restart_without_stale_reads(
    server: RedisServer, kind: str
) -> None:
    source = Source("old")
    cache = make_cache(server.url)
    try:
        assert cache.store_key(KEY) == DATA_KEY
        assert cache.get_or_load(KEY, source.load, tags=[TAG]) == "old"
        assert cache.get(KEY) == "old"
        watched_before = redis_command(server, "GET", WATCHED_KEY[kind])
        assert watched_before is not None
        save(server)  # the old entry survives the restart
        server.stop()

        source.value = "new"  # the write commits, then the invalidation follows
        invalidate(cache, kind)  # must not raise
        assert pending(cache) == [EXPECTED_PENDING[kind]]
        stats = cache.stats()
        assert (stats.invalidations, stats.queued_invalidations) == (1, 1)

        reader = Reader(cache, source)
        reader.read_for(0.3)  # long enough for several failed retries
        assert reader.stale() == []
        assert set(reader.seen) == {"new", ABSENT}
        assert pending(cache) == [EXPECTED_PENDING[kind]]

        server.start()  # same port, same dir: the old entry is loaded back from dump.rdb
        reader.read_until_applied()
        reader.read()
        assert reader.stale() == [], "a read returned the invalidated value"

        assert cache.get_or_load(KEY, source.load, tags=[TAG]) == "new"
        assert cache.get(KEY) == "new"
        assert redis_command(server, "GET", WATCHED_KEY[kind]) != watched_before
        assert cache.stats().bypassed > 0
    finally:
        cache.close(flush_timeout=1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_restarted_redis_holding_the_old_entry_is_bypassed_until_the_invalidation_lands(
    server: RedisServer, kind: str
) -> None:
    source = Source("old")
    cache = make_cache(server.url)
    view = view_of(cache, kind)
    other: Cache | None = None
    try:
        assert view.get_or_load(KEY, source.load, tags=[TAG]) == "old"
        data_key = view.store_key(KEY)
        old_record = redis_command(server, "GET", data_key)
        watched_before = redis_command(server, "GET", WATCHED_KEY[kind])
        assert old_record is not None
        assert watched_before is not None
        save(server)
        server.stop()

        source.value = "new"
        invalidate(cache, kind)
        assert pending(cache) == [EXPECTED_PENDING[kind]]
        reader = Reader(view, source, get_many=False)  # get_many: see the test below
        reader.read_for(0.1)

        # Back up with the old entry, but the invalidation cannot land yet.
        server.extra_args = DENY_SCRIPTS
        server.start()
        assert redis_command(server, "GET", data_key) == old_record
        assert redis_command(server, "GET", WATCHED_KEY[kind]) == watched_before
        # Another process (which queued nothing) still reads the old entry: this is exactly
        # what this process would return if it did not bypass the cache.
        other = Cache(server.url, namespace=NAMESPACE, secret=SECRET)
        assert view_of(other, kind).get(KEY) == "old"

        bypassed = cache.stats().bypassed
        for _ in range(10):
            reader.read()
        assert reader.stale() == []
        assert cache.stats().bypassed >= bypassed + 20  # each get_or_load and get bypassed
        assert pending(cache) == [EXPECTED_PENDING[kind]]

        allow_scripts(server)
        reader.read_until_applied()
        reader.read()
        assert reader.stale() == [], "a read returned the invalidated value"
        assert redis_command(server, "GET", WATCHED_KEY[kind]) != watched_before
        assert view.get_or_load(KEY, source.load, tags=[TAG]) == "new"
        assert view_of(other, kind).get(KEY) == "new"  # the invalidation reached the store
    finally:
        if other is not None:
            other.close()
        cache.close(flush_timeout=1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_get_many_bypasses_entries_affected_by_a_pending_invalidation(
    server: RedisServer, kind: str
) -> None:
    # Redis stays up; only the invalidation scripts are refused, so the old entry is readable.
    # The entry carries a tag only where the invalidation is by tag: a plain entry is what
    # most applications cache.
    source = Source("old")
    cache = make_cache(server.url)
    view = view_of(cache, kind)
    tags = [TAG] if kind == "tag" else None
    try:
        assert view.get_or_load(KEY, source.load, tags=tags) == "old"
        assert view.get_many([KEY]) == {KEY: "old"}
        deny_scripts(server)
        source.value = "new"
        invalidate(cache, kind)
        assert pending(cache) == [EXPECTED_PENDING[kind]]
        assert view.get(KEY, ABSENT) == ABSENT  # get bypasses...
        assert view.get_or_load(KEY, source.load, tags=tags) == "new"  # ...so does this
        assert view.get_many([KEY]) == {}, "get_many returned the invalidated value"
    finally:
        allow_scripts(server)
        cache.close(flush_timeout=2.0)


def test_only_reads_affected_by_a_pending_invalidation_bypass(server: RedisServer) -> None:
    cache = make_cache(server.url)
    sub = cache.namespace("sub")
    try:
        assert cache.set("a", "old-a") is True
        assert cache.set("b", "old-b") is True
        assert cache.set("tagged", "old-tagged", tags=[TAG]) is True
        assert cache.set("other-tag", "old-other", tags=["product:43"]) is True
        assert sub.set("s", "old-s") is True
        deny_scripts(server)

        cache.invalidate("a")
        cache.invalidate_tags(TAG)
        assert pending(cache) == [("key", "pend:0:d:{a}"), ("tag", TAG_KEY)]
        assert sub.pending_invalidations() == cache.pending_invalidations()  # one queue
        cache.reset_stats()

        assert cache.get("a", ABSENT) == ABSENT
        assert cache.get("tagged", ABSENT) == ABSENT
        assert cache.get_or_load("tagged", lambda: "loaded", tags=[TAG]) == "loaded"
        assert cache.stats().bypassed == 3
        # Unaffected entries are still served from the cache.
        assert cache.get("b") == "old-b"
        assert cache.get("other-tag") == "old-other"
        assert cache.get_or_load("other-tag", lambda: "loaded", tags=["product:43"]) == "old-other"
        assert sub.get("s") == "old-s"
        assert cache.get_many(["a", "b", "tagged", "other-tag"]) == {
            "b": "old-b",
            "other-tag": "old-other",
        }
        stats = cache.stats()
        assert (stats.bypassed, stats.hits) == (5, 6)

        allow_scripts(server)
        wait_until(lambda: not cache.pending_invalidations(), "the invalidations to land")
        assert redis_command(server, "GET", "pend:0:d:{a}") is None
        assert cache.get("tagged", ABSENT) == ABSENT  # orphaned by the tag bump
        assert cache.get("b") == "old-b"
    finally:
        allow_scripts(server)
        cache.close(flush_timeout=1.0)


def test_every_kind_of_invalidation_is_queued_with_its_store_key(server: RedisServer) -> None:
    cache = make_cache(server.url)
    try:
        server.stop()
        assert cache.delete("d") is False
        assert cache.delete_many(["m1", "m2"]) == 0
        cache.invalidate("k")
        cache.invalidate_tags("product:42", "color:red")
        cache.bump()
        cache.namespace("sub").bump()
        cache.namespace("sub").invalidate("k")
        assert pending(cache) == [
            ("key", "pend:0:d:{d}"),
            ("key", "pend:0:d:{m1}"),
            ("key", "pend:0:d:{m2}"),
            ("key", "pend:0:d:{k}"),
            ("key", "pend/sub:0:d:{k}"),
            ("tag", "pend:0:t:{product:42}"),
            ("tag", "pend:0:t:{color:red}"),
            ("namespace", ROOT_NAMESPACE_KEY),
            ("namespace", NESTED_NAMESPACE_KEY),
        ]
        stats = cache.stats()
        assert (stats.invalidations, stats.queued_invalidations) == (9, 9)
        server.start()
        wait_until(lambda: not cache.pending_invalidations(), "the invalidations to land")
        for version_key in ("pend:0:t:{product:42}", "pend:0:t:{color:red}"):
            assert redis_command(server, "GET", version_key) is not None
        assert redis_command(server, "GET", ROOT_NAMESPACE_KEY) is not None
        assert redis_command(server, "GET", NESTED_NAMESPACE_KEY) is not None
    finally:
        cache.close(flush_timeout=1.0)


# -- close() ------------------------------------------------------------------------------------


def test_close_applies_a_queued_invalidation_once_the_store_is_back(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(server.url)
    assert cache.set("k", "old") is True
    save(server)
    server.stop()
    cache.invalidate("k")
    assert pending(cache) == [("key", "pend:0:d:{k}")]

    # Back with the old entry; scripts are refused until a timer allows them, so close() must
    # still be trying when the store accepts the invalidation.
    server.extra_args = DENY_SCRIPTS
    server.start()
    assert redis_command(server, "EXISTS", "pend:0:d:{k}") == 1
    allowed = threading.Event()

    def allow() -> None:
        allow_scripts(server)
        allowed.set()

    timer = threading.Timer(0.3, allow)
    timer.start()
    try:
        with caplog.at_level(logging.ERROR, logger="cacheplug"):
            cache.close(flush_timeout=WAIT)
    finally:
        timer.join()
    assert allowed.is_set()
    assert cache.pending_invalidations() == []
    assert redis_command(server, "EXISTS", "pend:0:d:{k}") == 0
    assert error_records(caplog) == []


def test_close_logs_what_it_could_not_apply(caplog: pytest.LogCaptureFixture) -> None:
    cache = make_cache(f"redis://127.0.0.1:{free_port()}/0")
    cache.invalidate("k")
    cache.invalidate_tags(TAG)
    with caplog.at_level(logging.ERROR, logger="cacheplug"):
        cache.close(flush_timeout=0.2)
    assert pending(cache) == [("key", "pend:0:d:{k}"), ("tag", TAG_KEY)]
    [record] = error_records(caplog)
    message = record.getMessage()
    assert "2 invalidation(s) could not reach the store before shutdown" in message
    assert "key pend:0:d:{k}" in message
    assert f"tag {TAG_KEY}" in message


# -- the bound ----------------------------------------------------------------------------------


def test_past_the_bound_the_queue_becomes_one_namespace_bump(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(server.url, max_pending_invalidations=3)
    sub = cache.namespace("sub")
    other: Cache | None = None
    keys = [f"k{i}" for i in range(5)]
    try:
        for key in keys:
            assert cache.set(key, f"old-{key}") is True
        assert cache.set("untouched", "old-untouched", tags=[TAG]) is True
        assert sub.set("s", "old-s") is True
        namespace_before = redis_command(server, "GET", ROOT_NAMESPACE_KEY)
        save(server)
        server.stop()

        with caplog.at_level(logging.ERROR, logger="cacheplug"):
            for key in keys[:3]:
                cache.invalidate(key)
            assert pending(cache) == [("key", f"pend:0:d:{{{key}}}") for key in keys[:3]]
            cache.invalidate(keys[3])
            assert pending(cache) == [("namespace", ROOT_NAMESPACE_KEY)]
            cache.invalidate(keys[4])  # (what it leaves queued: see the next test)
        assert cache.stats().queued_invalidations == 5
        [record] = error_records(caplog)
        assert "more than 3 invalidations are waiting" in record.getMessage()

        # Back with every old entry; until the bump lands, every read in this process bypasses.
        server.extra_args = DENY_SCRIPTS
        server.start()
        other = Cache(server.url, namespace=NAMESPACE, secret=SECRET)
        assert other.get("untouched") == "old-untouched"  # really there
        assert other.namespace("sub").get("s") == "old-s"
        cache.reset_stats()
        assert cache.get("untouched", ABSENT) == ABSENT
        assert cache.get("k0", ABSENT) == ABSENT
        assert sub.get("s", ABSENT) == ABSENT
        assert cache.get_many(["untouched", "k4"]) == {}
        assert cache.get_or_load("untouched", lambda: "loaded", tags=[TAG]) == "loaded"
        assert cache.stats().bypassed == 6
        assert cache.stats().hits == 0

        allow_scripts(server)
        wait_until(lambda: not cache.pending_invalidations(), "the namespace bump to land")
        assert redis_command(server, "GET", ROOT_NAMESPACE_KEY) != namespace_before
        # Every entry written before is a miss now, here and in the other process.
        for reader in (cache, other):
            for key in [*keys, "untouched"]:
                assert reader.get(key, ABSENT) == ABSENT
            assert reader.namespace("sub").get("s", ABSENT) == ABSENT
        assert cache.get_or_load("k0", lambda: "fresh") == "fresh"
    finally:
        if other is not None:
            other.close()
        cache.close(flush_timeout=1.0)


def test_invalidations_past_the_bound_are_covered_by_the_namespace_bump(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Once the queue has overflowed into a bump of the whole namespace, which covers every
    # entry of the cache, the items before it are gone. Later ones are dropped too, except
    # while a retry is under way (the bump may be landing right then, so they are kept to be
    # safe): the retry thread runs concurrently here, so those may or may not be listed.
    cache = make_cache(f"redis://127.0.0.1:{free_port()}/0", max_pending_invalidations=3)
    try:
        for i in range(4):
            cache.invalidate(f"k{i}")
        assert pending(cache) == [("namespace", ROOT_NAMESPACE_KEY)]
        cache.invalidate("k4")
        cache.invalidate_tags(TAG)
        cache.namespace("sub").bump()
        items = pending(cache)
        assert ("namespace", ROOT_NAMESPACE_KEY) in items
        assert not [item for item in items if item[1].endswith(("{k0}", "{k1}", "{k2}", "{k3}"))]
        assert len(items) <= 4
        assert cache.stats().queued_invalidations == 7
    finally:
        with caplog.at_level(logging.CRITICAL, logger="cacheplug"):
            cache.close(flush_timeout=0.1)


# -- strict mode and in-process stores ----------------------------------------------------------


def test_strict_invalidations_raise_but_are_still_queued_and_applied(server: RedisServer) -> None:
    cache = make_cache(server.url, strict=True)
    try:
        for key in ("k1", "k2", "k3"):
            assert cache.set(key, "old") is True
        save(server)
        server.stop()

        operations: list[Callable[[], object]] = [
            lambda: cache.invalidate("k1"),
            lambda: cache.delete("k2"),
            lambda: cache.delete_many(["k3"]),
            lambda: cache.invalidate_tags(TAG),
            lambda: cache.bump(),
        ]
        for operation in operations:
            with pytest.raises(CacheUnavailable, match="queued"):
                operation()
        assert pending(cache) == [
            ("key", "pend:0:d:{k1}"),
            ("key", "pend:0:d:{k2}"),
            ("key", "pend:0:d:{k3}"),
            ("tag", TAG_KEY),
            ("namespace", ROOT_NAMESPACE_KEY),
        ]
        assert cache.stats().queued_invalidations == 5
        assert cache.get_or_load("k1", lambda: "loaded") == "loaded"  # still fails open
        assert cache.stats().bypassed == 1

        server.start()
        wait_until(lambda: not cache.pending_invalidations(), "the invalidations to land")
        for key in ("k1", "k2", "k3"):
            assert redis_command(server, "EXISTS", f"pend:0:d:{{{key}}}") == 0
        assert cache.get("k1") is None
    finally:
        cache.close(flush_timeout=1.0)


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_memory_store_never_queues(strict: bool) -> None:
    cache = Cache(MemoryStore(), namespace=NAMESPACE, strict=strict)
    sub = cache.namespace("sub")
    try:
        for key in ("a", "b", "c", "d"):
            assert cache.set(key, "old", tags=[TAG] if key == "d" else None) is True
        assert sub.set("s", "old") is True
        cache.invalidate("a")
        assert cache.delete("b") is True
        assert cache.delete_many(["c"]) == 1
        cache.invalidate_tags(TAG)
        sub.bump()
        cache.bump()
        assert cache.pending_invalidations() == []
        stats = cache.stats()
        assert (stats.invalidations, stats.queued_invalidations) == (6, 0)
        for key in ("a", "b", "c", "d"):
            assert cache.get(key) is None
        assert sub.get("s") is None
        assert cache.stats().bypassed == 0
    finally:
        cache.close()
