"""A test suite every store must pass (pytest).

Subclass it in your tests and provide a ``store`` fixture::

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store(self) -> Iterator[Store]:
            store = MyStore(...)
            yield store
            store.close()

The suite treats the store as a black box through the :class:`~cacheplug.Store` protocol,
sync and async. Expiry is checked with real (short) sleeps, because a network store keeps
its own time.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cacheplug.exceptions import NotACounter
from cacheplug.stores.base import Store

_SHORT_TTL_MS = 40
_PAST_SHORT_TTL = 0.12


class StoreConformance:
    """The behaviour the cache relies on, for every store.

    Every key here carries the hash tag ``{conf}``, so a clustered store can run the suite:
    the cache only ever combines keys of one slot in one atomic step, as these tests do.
    """

    # -- get / set / delete ------------------------------------------------------------------

    def test_missing_key_is_none(self, store: Store) -> None:
        assert store.get("{conf}:absent") is None

    def test_set_then_get_returns_the_same_bytes(self, store: Store) -> None:
        store.set("{conf}:a", b"value", None)
        assert store.get("{conf}:a") == b"value"

    def test_values_are_binary_safe(self, store: Store) -> None:
        every_byte = bytes(range(256)) * 4
        store.set("{conf}:bin", every_byte, None)
        store.set("{conf}:empty", b"", None)
        assert store.get("{conf}:bin") == every_byte
        assert store.get("{conf}:empty") == b""

    def test_large_values_round_trip(self, store: Store) -> None:
        big = bytes(range(256)) * 4096  # 1 MiB
        store.set("{conf}:big", big, None)
        assert store.get("{conf}:big") == big

    def test_set_replaces_the_value_and_its_ttl(self, store: Store) -> None:
        store.set("{conf}:r", b"one", 60_000)
        store.set("{conf}:r", b"two", None)
        assert store.get("{conf}:r") == b"two"
        assert store.ttl_ms("{conf}:r") is None

    def test_delete_reports_whether_something_was_removed(self, store: Store) -> None:
        store.set("{conf}:d", b"x", None)
        assert store.delete("{conf}:d") is True
        assert store.delete("{conf}:d") is False
        assert store.get("{conf}:d") is None

    # -- expiry ------------------------------------------------------------------------------

    def test_ttl_ms_reports_absent_unbounded_and_remaining(self, store: Store) -> None:
        store.set("{conf}:forever", b"x", None)
        store.set("{conf}:minute", b"x", 60_000)
        assert store.ttl_ms("{conf}:absent") == -1
        assert store.ttl_ms("{conf}:forever") is None
        remaining = store.ttl_ms("{conf}:minute")
        assert remaining is not None
        assert 0 < remaining <= 60_000

    def test_entries_expire(self, store: Store) -> None:
        store.set("{conf}:short", b"x", _SHORT_TTL_MS)
        store.set("{conf}:long", b"y", 60_000)
        time.sleep(_PAST_SHORT_TTL)
        assert store.get("{conf}:short") is None
        assert store.get("{conf}:long") == b"y"

    # -- add ---------------------------------------------------------------------------------

    def test_add_stores_only_when_absent(self, store: Store) -> None:
        assert store.add("{conf}:add", b"first", None) is True
        assert store.add("{conf}:add", b"second", None) is False
        assert store.get("{conf}:add") == b"first"

    def test_add_treats_an_expired_entry_as_absent(self, store: Store) -> None:
        store.set("{conf}:add-exp", b"old", _SHORT_TTL_MS)
        time.sleep(_PAST_SHORT_TTL)
        assert store.add("{conf}:add-exp", b"new", None) is True
        assert store.get("{conf}:add-exp") == b"new"

    def test_add_applies_the_ttl(self, store: Store) -> None:
        store.add("{conf}:add-ttl", b"x", 60_000)
        remaining = store.ttl_ms("{conf}:add-ttl")
        assert remaining is not None
        assert 0 < remaining <= 60_000

    def test_add_is_atomic_under_contention(self, store: Store) -> None:
        winners: list[int] = []
        barrier = threading.Barrier(8)

        def contend(worker: int) -> None:
            barrier.wait()
            if store.add("{conf}:race", str(worker).encode(), None):
                winners.append(worker)

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1
        assert store.get("{conf}:race") == str(winners[0]).encode()

    # -- counters ----------------------------------------------------------------------------

    def test_incr_creates_a_missing_counter_at_delta(self, store: Store) -> None:
        assert store.incr("{conf}:n", 5, None) == 5
        assert store.incr("{conf}:n", -2, None) == 3
        assert store.get("{conf}:n") == b"3"

    def test_incr_gives_a_new_counter_the_ttl_and_keeps_it_after(self, store: Store) -> None:
        store.incr("{conf}:nt", 1, 60_000)
        store.incr("{conf}:nt", 1, None)
        remaining = store.ttl_ms("{conf}:nt")
        assert remaining is not None
        assert 0 < remaining <= 60_000
        assert store.incr("{conf}:forever-n", 1, None) == 1
        assert store.ttl_ms("{conf}:forever-n") is None

    def test_incr_refuses_a_value_that_is_not_a_counter(self, store: Store) -> None:
        store.set("{conf}:text", b"\x80not a number", None)
        with pytest.raises(NotACounter):
            store.incr("{conf}:text", 1, None)
        assert store.get("{conf}:text") == b"\x80not a number"

    def test_incr_is_atomic_under_contention(self, store: Store) -> None:
        def bump() -> None:
            for _ in range(50):
                store.incr("{conf}:hits", 1, None)

        threads = [threading.Thread(target=bump) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.get("{conf}:hits") == b"400"

    # -- compare and swap --------------------------------------------------------------------

    def test_compare_and_swap_replaces_only_the_expected_value(self, store: Store) -> None:
        store.set("{conf}:cas", b"v1", 60_000)
        assert store.compare_and_swap("{conf}:cas", b"other", b"v2") is False
        assert store.get("{conf}:cas") == b"v1"
        assert store.compare_and_swap("{conf}:cas", b"v1", b"v2") is True
        assert store.get("{conf}:cas") == b"v2"
        remaining = store.ttl_ms("{conf}:cas")
        assert remaining is not None
        assert 0 < remaining <= 60_000

    def test_compare_and_swap_on_a_missing_key_fails(self, store: Store) -> None:
        assert store.compare_and_swap("{conf}:cas-absent", b"", b"v") is False
        assert store.get("{conf}:cas-absent") is None

    # -- leases ------------------------------------------------------------------------------

    def test_a_lease_is_taken_once_and_only_its_holder_fills(self, store: Store) -> None:
        assert store.acquire_lease("{conf}:lease", b"t1", 10_000) == 0
        remaining = store.acquire_lease("{conf}:lease", b"t2", 10_000)
        assert 0 < remaining <= 10_000
        assert store.fill_with_lease("{conf}:data", b"v", None, "{conf}:lease", b"t2") is False
        assert store.get("{conf}:data") is None
        assert store.extend_lease("{conf}:lease", b"t2", 5_000) is False
        assert store.extend_lease("{conf}:lease", b"t1", 20_000) is True
        assert store.fill_with_lease("{conf}:data", b"v", 60_000, "{conf}:lease", b"t1") is True
        assert store.get("{conf}:data") == b"v"
        assert store.get("{conf}:lease") is None  # filling lets the lease go

    def test_release_is_token_checked(self, store: Store) -> None:
        assert store.acquire_lease("{conf}:lease2", b"mine", 10_000) == 0
        assert store.release_lease("{conf}:data2", "{conf}:lease2", b"theirs") is False
        assert store.release_lease("{conf}:data2", "{conf}:lease2", b"mine") is True
        assert store.acquire_lease("{conf}:lease2", b"next", 10_000) == 0

    def test_fills_and_releases_are_announced(self, store: Store) -> None:
        with store.fills.expect("{conf}:data3") as waiter:
            store.acquire_lease("{conf}:lease3", b"t", 10_000)
            store.fill_with_lease("{conf}:data3", b"v", None, "{conf}:lease3", b"t")
            assert waiter.wait(5)
        with store.fills.expect("{conf}:data3") as waiter:
            store.acquire_lease("{conf}:lease3", b"u", 10_000)
            store.release_lease("{conf}:data3", "{conf}:lease3", b"u")
            assert waiter.wait(5)

    def test_invalidate_removes_entries_with_their_leases(self, store: Store) -> None:
        store.set("{conf}:e1", b"1", None)
        store.set("{conf}:e2", b"2", None)
        store.acquire_lease("{conf}:l1", b"loader", 10_000)
        with store.fills.expect("{conf}:e1") as waiter:
            removed = store.invalidate([("{conf}:e1", "{conf}:l1"), ("{conf}:e2", "{conf}:l2")])
            assert waiter.wait(5)
        assert removed == 2
        assert store.get_many(["{conf}:e1", "{conf}:e2", "{conf}:l1"]) == [None, None, None]
        assert store.fill_with_lease("{conf}:e1", b"old", None, "{conf}:l1", b"loader") is False
        assert store.invalidate([]) == 0

    # -- versions (tags and namespaces) ------------------------------------------------------

    def test_ensure_versions_creates_absent_keys_once(self, store: Store) -> None:
        assert store.ensure_versions(["{conf}:v1", "{conf}:v2"], [11, 22], 60_000) == [b"11", b"22"]
        # Whoever comes second gets the first writer's versions, not its own.
        assert store.ensure_versions(["{conf}:v2", "{conf}:v3"], [99, 33], 60_000) == [b"22", b"33"]
        remaining = store.ttl_ms("{conf}:v3")
        assert remaining is not None
        assert 0 < remaining <= 60_000

    def test_a_fill_is_refused_when_a_version_moved_on(self, store: Store) -> None:
        store.ensure_versions(["{conf}:tag"], [5], 60_000)
        store.acquire_lease("{conf}:fl", b"t", 10_000)
        store.bump_versions(["{conf}:tag"], [1234], 60_000)
        with store.fills.expect("{conf}:fd") as waiter:
            refused = store.fill_with_lease(
                "{conf}:fd", b"old", None, "{conf}:fl", b"t", [("{conf}:tag", 5, False)]
            )
            assert waiter.wait(5)  # the lease is let go at once: waiters re-check
        assert refused is False
        assert store.get_many(["{conf}:fd", "{conf}:fl", "{conf}:tag"]) == [None, None, b"6"]
        store.acquire_lease("{conf}:fl", b"u", 10_000)
        assert store.fill_with_lease(
            "{conf}:fd", b"new", 60_000, "{conf}:fl", b"u", [("{conf}:tag", 6, False)]
        )
        assert store.get("{conf}:fd") == b"new"
        remaining = store.ttl_ms("{conf}:tag")  # a version key outlives the entries recording it
        assert remaining is None or remaining >= 59_000

    def test_bump_versions_increments_or_starts_from_the_fresh_version(self, store: Store) -> None:
        store.ensure_versions(["{conf}:b1"], [41], 60_000)
        store.set("{conf}:garbled", b"not a number", None)
        with store.fills.expect("{conf}:b2") as waiter:
            store.bump_versions(["{conf}:b1", "{conf}:b2", "{conf}:garbled"], [7, 8, 9], 60_000)
            assert waiter.wait(5)  # bumps are announced like invalidations
        assert store.get_many(["{conf}:b1", "{conf}:b2", "{conf}:garbled"]) == [b"42", b"8", b"9"]
        store.bump_versions([], [], 60_000)

    def test_put_drops_the_lease_and_checks_versions(self, store: Store) -> None:
        store.ensure_versions(["{conf}:pv"], [3], 60_000)
        store.acquire_lease("{conf}:pl", b"loader", 10_000)
        assert store.put("{conf}:pd", b"written", None, "{conf}:pl", [("{conf}:pv", 3, False)])
        assert store.get_many(["{conf}:pd", "{conf}:pl"]) == [b"written", None]
        # A load under way can no longer overwrite what was written.
        assert store.fill_with_lease("{conf}:pd", b"loaded", None, "{conf}:pl", b"loader") is False
        assert store.put("{conf}:pd", b"x", None, "{conf}:pl", [("{conf}:pv", 2, False)]) is False
        assert store.put("{conf}:pd", b"x", None, "{conf}:pl", (), True) is False  # not absent
        assert store.put("{conf}:pd2", b"y", None, "{conf}:pl2", (), True) is True
        assert store.get_many(["{conf}:pd", "{conf}:pd2"]) == [b"written", b"y"]
        assert store.put_many(
            [("{conf}:pm1", b"1", "{conf}:pml1"), ("{conf}:pm2", b"2", "{conf}:pml2")],
            60_000,
            [("{conf}:pv", 3, False)],
        ) == [True, True]
        assert store.get_many(["{conf}:pm1", "{conf}:pm2"]) == [b"1", b"2"]

    def test_invalidations_reach_the_subscribers(self, store: Store) -> None:
        seen: list[str | None] = []
        arrived = threading.Event()

        def record(key: str | None) -> None:
            seen.append(key)
            if key == "{conf}:iv-tag":
                arrived.set()

        unsubscribe = store.fills.on_invalidation(record)
        try:
            store.acquire_lease("{conf}:iv-lease", b"t", 10_000)
            store.fill_with_lease("{conf}:iv-filled", b"v", None, "{conf}:iv-lease", b"t")
            store.invalidate([("{conf}:iv-key", "{conf}:iv-lease")])
            store.bump_versions(["{conf}:iv-tag"], [1], 60_000)
            assert arrived.wait(5)
        finally:
            unsubscribe()
        assert seen == ["{conf}:iv-key", "{conf}:iv-tag"]  # fills are not invalidations

    # -- batches -----------------------------------------------------------------------------

    def test_get_many_keeps_order_and_reports_absent_keys(self, store: Store) -> None:
        store.set("{conf}:m1", b"1", None)
        store.set("{conf}:m3", b"3", None)
        assert store.get_many(["{conf}:m3", "{conf}:m2", "{conf}:m1", "{conf}:m3"]) == [
            b"3",
            None,
            b"1",
            b"3",
        ]
        assert store.get_many([]) == []

    def test_set_many_and_delete_many(self, store: Store) -> None:
        store.set_many([("{conf}:s1", b"a"), ("{conf}:s2", b"b")], 60_000)
        assert store.get_many(["{conf}:s1", "{conf}:s2"]) == [b"a", b"b"]
        remaining = store.ttl_ms("{conf}:s2")
        assert remaining is not None
        assert 0 < remaining <= 60_000
        assert store.delete_many(["{conf}:s1", "{conf}:s2", "{conf}:s-absent"]) == 2
        assert store.get_many(["{conf}:s1", "{conf}:s2"]) == [None, None]
        store.set_many([], None)
        assert store.delete_many([]) == 0

    # -- async twins -------------------------------------------------------------------------

    def test_async_methods_match_the_sync_ones(self, store: Store) -> None:
        async def scenario() -> None:
            assert await store.aget("{conf}:async") is None
            await store.aset("{conf}:async", b"v", 60_000)
            assert await store.aget("{conf}:async") == b"v"
            assert await store.aadd("{conf}:async", b"w", None) is False
            assert await store.aadd("{conf}:async-2", b"w", None) is True
            assert await store.aincr("{conf}:async-n", 2, None) == 2
            assert await store.acompare_and_swap("{conf}:async", b"v", b"v2") is True
            await store.aset_many([("{conf}:async-a", b"a"), ("{conf}:async-b", b"b")], None)
            assert await store.aget_many(
                ["{conf}:async-a", "{conf}:async-x", "{conf}:async-b"]
            ) == [
                b"a",
                None,
                b"b",
            ]
            assert await store.adelete("{conf}:async") is True
            assert await store.adelete_many(["{conf}:async-a", "{conf}:async-b"]) == 2
            await store.aclose()

        asyncio.run(scenario())
        # The sync side still works after the event loop's connections were closed.
        assert store.get("{conf}:async-2") == b"w"
