"""``Cache.on_landed`` tells what this process's invalidations changed in the store, once they
are in it (what an edge purge must wait for), and ``Cache.version_keys`` names the same keys
for an entry's tags.

The queued case uses a ``redis-server`` whose default user may not run scripts: reads work,
every invalidation (a script) fails with ``NOPERM`` and stays queued until the test gives the
permission back (as in ``test_pending_invalidations.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Final

import pytest
import redis

from cacheplug import Cache, MemoryStore
from cacheplug.testing import RedisServer

WAIT: Final = 10.0
DENY_SCRIPTS: Final = (
    *("--user", "default", "on", "nopass", "~*", "&*", "+@all"),
    *("-evalsha", "-eval"),
)


class Landed:
    """What ``on_landed`` reported, in order, from any thread."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, ...]] = []
        self._changed = threading.Condition()

    def __call__(self, version_keys: Sequence[str]) -> None:
        with self._changed:
            self.reports.append(tuple(version_keys))
            self._changed.notify_all()

    def seen(self) -> set[str]:
        with self._changed:
            return {key for report in self.reports for key in report}

    def wait_for(self, key: str, timeout: float = WAIT) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while key not in {k for report in self.reports for k in report}:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True


@pytest.fixture
def memory_cache() -> Iterator[Cache]:
    cache = Cache(MemoryStore(), namespace="landed")
    yield cache
    cache.close()


def test_a_tag_invalidation_reports_the_version_keys_an_entry_of_that_tag_is_checked_against(
    memory_cache: Cache,
) -> None:
    landed = Landed()
    memory_cache.on_landed(landed)
    memory_cache.invalidate_tags("product:1")
    entry_keys = memory_cache.version_keys("product:1", "catalog")
    assert landed.reports, "nothing reported"
    (report,) = landed.reports
    assert set(report) <= set(entry_keys)
    assert len(report) == 1  # the tag's own version, not the namespace's
    other = memory_cache.version_keys("catalog")
    assert not set(report) & set(other)


def test_every_entry_is_checked_against_its_namespace_and_a_bump_reports_it(
    memory_cache: Cache,
) -> None:
    landed = Landed()
    memory_cache.on_landed(landed)
    namespace_keys = memory_cache.version_keys()
    assert namespace_keys
    assert set(namespace_keys) <= set(memory_cache.version_keys("anything"))
    memory_cache.bump()
    assert landed.seen() & set(namespace_keys)


def test_unsubscribed_callbacks_hear_nothing_and_a_failing_one_never_breaks_the_invalidation(
    memory_cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    landed = Landed()
    unsubscribe = memory_cache.on_landed(landed)

    def broken(_: Sequence[str]) -> None:
        raise RuntimeError("subscriber bug")

    memory_cache.on_landed(broken)
    after_broken = Landed()
    memory_cache.on_landed(after_broken)
    memory_cache.invalidate_tags("a")  # must not raise
    assert len(landed.reports) == 1
    assert len(after_broken.reports) == 1  # the failure did not stop the next subscriber
    assert "on_landed subscriber failed" in caplog.text
    unsubscribe()
    unsubscribe()  # twice is harmless
    memory_cache.invalidate_tags("b")
    assert len(landed.reports) == 1
    assert len(after_broken.reports) == 2


def test_async_invalidations_report_too(memory_cache: Cache) -> None:
    import asyncio

    landed = Landed()
    memory_cache.on_landed(landed)
    asyncio.run(memory_cache.ainvalidate_tags("async-tag"))
    assert landed.seen() == set(memory_cache.version_keys("async-tag")) - set(
        memory_cache.version_keys()
    )


def test_a_queued_invalidation_is_reported_when_it_is_applied_not_before() -> None:
    with RedisServer(extra_args=DENY_SCRIPTS) as server:
        cache = Cache(server.url, namespace="landed-queued", secret="landed-test-secret")
        try:
            landed = Landed()
            cache.on_landed(landed)
            cache.get_or_load("page", lambda: "old", tags=["product:7"])
            cache.invalidate_tags("product:7")  # NOPERM: queued
            (tag_key,) = set(cache.version_keys("product:7")) - set(cache.version_keys())
            assert cache.pending_invalidations(), "the invalidation should be queued"
            time.sleep(0.3)  # the retry thread has tried at least once meanwhile
            assert tag_key not in landed.seen(), "reported before it reached the store"
            admin = redis.Redis.from_url(server.url)
            admin.execute_command("ACL", "SETUSER", "default", "+@all")
            admin.close()
            assert landed.wait_for(tag_key), "never reported once applied"
            assert not cache.pending_invalidations()
        finally:
            cache.close()


def test_a_store_invalidation_is_reported_once_it_is_in_redis(redis_url: str) -> None:
    cache = Cache(redis_url, namespace="landed-redis", secret="landed-test-secret")
    try:
        landed = Landed()
        cache.on_landed(landed)
        seen_in_redis: list[bool] = []
        client = redis.Redis.from_url(redis_url)

        (tag_key,) = set(cache.version_keys("row:1")) - set(cache.version_keys())

        def check(version_keys: Sequence[str]) -> None:
            seen_in_redis.append(client.exists(tag_key) == 1)

        cache.on_landed(check)
        cache.invalidate_tags("row:1")
        client.close()
        assert landed.seen() == {tag_key}
        assert seen_in_redis == [True]  # the new version was in Redis when we were told
    finally:
        cache.close()
