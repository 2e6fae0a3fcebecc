"""The store protocol: bytes in, bytes out, no policy.

A store declares a handful of primitives; the composites (``get_many``, ``set_many``,
``delete_many``) and the async twins have default implementations built on them, so an
in-process store only writes the sync primitives. Network stores override the composites
(one round trip) and the async methods (non-blocking I/O).

Every backend failure is raised as :class:`~cacheplug.CacheUnavailable`; the cache decides
what to do with it (fail open, count, trip the breaker). TTLs are whole milliseconds,
``None`` for no expiry.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from cacheplug.stores.fills import FillListener
from cacheplug.stores.queues import Queue, QueueLimits

VersionCheck = tuple[str, int, bool]
"""A condition on a write: ``(version key, version, create)``. With ``create`` False the
version key must hold exactly ``version`` (as ASCII digits); with ``create`` True it must be
absent, and the write creates it holding ``version``."""


class Store(abc.ABC):
    """Byte-level key/value storage with a few atomic primitives."""

    shared: bool = True
    """True when other processes can read and write the same data (entries must be signed)."""

    bumps_together: bool = False
    """True when :meth:`bump_versions` moves all its keys at one instant (one lock, one
    script): no reader sees some moved and others not. A load may then read the versions of
    tags another tag guards after the data they stand for (see ``cacheplug.depends_on``)."""

    # -- primitives --------------------------------------------------------------------------

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or ``None``."""

    @abc.abstractmethod
    def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        """Store ``value`` under ``key``, replacing what was there."""

    @abc.abstractmethod
    def add(self, key: str, value: bytes, ttl_ms: int | None) -> bool:
        """Store ``value`` only if ``key`` holds nothing; True when stored."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; True when something was removed."""

    @abc.abstractmethod
    def incr(self, key: str, delta: int, ttl_ms: int | None) -> int:
        """Add ``delta`` to the integer under ``key`` (a missing key counts as 0, and is
        created with ``ttl_ms``; an existing key keeps its TTL). Raise
        :class:`~cacheplug.NotACounter` if the key holds something else."""

    @abc.abstractmethod
    def compare_and_swap(self, key: str, expected: bytes, new: bytes) -> bool:
        """Replace the value under ``key`` with ``new`` only if it is exactly ``expected``
        (keeping its TTL); True when replaced."""

    @abc.abstractmethod
    def ttl_ms(self, key: str) -> int | None:
        """Milliseconds until ``key`` expires; ``None`` if it has no expiry; -1 if absent."""

    # -- leases (stampede protection and locks) ----------------------------------------------

    @abc.abstractmethod
    def acquire_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> int:
        """Take the lease ``lease_key`` for ``token`` if nobody holds it (one round trip).

        Returns 0 when taken; otherwise the milliseconds (at least 1) until the current
        holder's lease expires.
        """

    @abc.abstractmethod
    def fill_with_lease(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        token: bytes,
        versions: Sequence[VersionCheck] = (),
    ) -> bool:
        """If ``lease_key`` still holds ``token`` and every version check holds: store
        ``value`` under ``key``, drop the lease and announce ``key`` (atomically). Otherwise
        store nothing and return False; when only a version check failed (an invalidation
        came after the versions were read), still drop the lease and announce ``key``.

        Version keys that are checked live at least as long as ``value`` afterwards (created
        with ``ttl_ms``, extended to it, or made permanent for ``None``).
        """

    @abc.abstractmethod
    def put(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        versions: Sequence[VersionCheck] = (),
        only_if_absent: bool = False,
    ) -> bool:
        """:meth:`fill_with_lease` for a write that holds no lease (``set``, ``add``): store
        ``value`` if the version checks hold (and, with ``only_if_absent``, ``key`` holds
        nothing), drop any lease on ``key`` so that a load under way cannot overwrite it, and
        announce ``key``. True when stored."""

    @abc.abstractmethod
    def ensure_versions(
        self,
        version_keys: Sequence[str],
        fresh: Sequence[int],
        keep_ms: int,
        near: str | None = None,
    ) -> list[bytes | None]:
        """Create each absent version key holding the matching ``fresh`` version (kept for
        ``keep_ms``); the version every key holds afterwards (atomically, one round trip).

        ``near``: the key of the entry that will record these versions (a store that keeps
        copies of version keys answers with the copy that entry's reads will see)."""

    def version_mark(self) -> int | None:
        """A mark of the version bumps made so far, for :meth:`moved_since`; None when the
        store keeps no log of them (the default: a shared store cannot, cheaply)."""
        return None

    def moved_since(self, mark: int, version_keys: Sequence[str]) -> bool | None:
        """Whether any of ``version_keys`` was bumped after :meth:`version_mark` gave
        ``mark``; None when the store cannot tell (its log no longer reaches back)."""
        return None

    @abc.abstractmethod
    def bump_versions(
        self, version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int
    ) -> None:
        """Invalidate tags or namespaces: increment each version key; one that is absent (or
        not a number) gets the matching ``fresh`` version instead, kept for ``keep_ms``.
        Announce each key as an invalidation (atomically, one round trip)."""

    @abc.abstractmethod
    def release_lease(self, key: str, lease_key: str, token: bytes) -> bool:
        """Drop the lease if it holds ``token`` and announce ``key``; True if dropped."""

    @abc.abstractmethod
    def extend_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> bool:
        """Give the lease ``ttl_ms`` more from now if it still holds ``token``."""

    def invalidate(self, entries: Sequence[tuple[str, str]]) -> int:
        """Remove each ``(key, lease_key)`` pair — the entry and its lease — and announce the
        key; the number of entries that existed. With the lease gone, a load that started
        before cannot store its result. Network stores must do this atomically."""
        removed = 0
        for key, lease_key in entries:
            removed += self.delete(key)
            self.delete(lease_key)
            self.fills.invalidated(key)
        return removed

    def replica_names(self, key: str, replicas: int) -> list[str]:
        """Names for up to ``replicas`` copies of the entry ``key`` that spread its reads
        over the store's nodes; empty (the default) when the store gains nothing from them."""
        return []

    def write_queue(self, key: str, limits: QueueLimits) -> Queue | None:
        """A durable write-behind queue kept under ``key`` (the store key the cache chose for
        it), reading its settings from ``limits``; or ``None`` (the default) when the store
        keeps none: write-behind then needs ``durable=False`` and queues in the process."""
        return None

    @property
    def fills(self) -> FillListener:
        """Where announcements of fills and released leases arrive."""
        listener: FillListener | None = self.__dict__.get("_fill_listener")
        if listener is None:
            listener = self.__dict__["_fill_listener"] = FillListener()
        return listener

    def close(self) -> None:
        """Release connections and other resources (and wake anybody still waiting)."""
        self.fills.stop()

    # -- composites --------------------------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys``, in order, ``None`` where absent."""
        return [self.get(key) for key in keys]

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        """Store each ``(key, value)`` pair."""
        for key, value in items:
            self.set(key, value, ttl_ms)

    def delete_many(self, keys: Sequence[str]) -> int:
        """Remove ``keys``; the number removed."""
        return sum(self.delete(key) for key in keys)

    def put_many(
        self,
        items: Sequence[tuple[str, bytes, str]],
        ttl_ms: int | None,
        versions: Sequence[VersionCheck] = (),
    ) -> list[bool]:
        """:meth:`put` for each ``(key, value, lease key)``; whether each was stored."""
        return [
            self.put(key, value, ttl_ms, lease_key, versions) for key, value, lease_key in items
        ]

    # -- async twins (in-process stores never block, so these just call the sync ones) -------

    async def aget(self, key: str) -> bytes | None:
        """Async :meth:`get`."""
        return self.get(key)

    async def aset(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        """Async :meth:`set`."""
        self.set(key, value, ttl_ms)

    async def aadd(self, key: str, value: bytes, ttl_ms: int | None) -> bool:
        """Async :meth:`add`."""
        return self.add(key, value, ttl_ms)

    async def adelete(self, key: str) -> bool:
        """Async :meth:`delete`."""
        return self.delete(key)

    async def aincr(self, key: str, delta: int, ttl_ms: int | None) -> int:
        """Async :meth:`incr`."""
        return self.incr(key, delta, ttl_ms)

    async def acompare_and_swap(self, key: str, expected: bytes, new: bytes) -> bool:
        """Async :meth:`compare_and_swap`."""
        return self.compare_and_swap(key, expected, new)

    async def aacquire_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> int:
        """Async :meth:`acquire_lease`."""
        return self.acquire_lease(lease_key, token, ttl_ms)

    async def afill_with_lease(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        token: bytes,
        versions: Sequence[VersionCheck] = (),
    ) -> bool:
        """Async :meth:`fill_with_lease`."""
        return self.fill_with_lease(key, value, ttl_ms, lease_key, token, versions)

    async def aput(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        versions: Sequence[VersionCheck] = (),
        only_if_absent: bool = False,
    ) -> bool:
        """Async :meth:`put`."""
        return self.put(key, value, ttl_ms, lease_key, versions, only_if_absent)

    async def aensure_versions(
        self,
        version_keys: Sequence[str],
        fresh: Sequence[int],
        keep_ms: int,
        near: str | None = None,
    ) -> list[bytes | None]:
        """Async :meth:`ensure_versions`."""
        return self.ensure_versions(version_keys, fresh, keep_ms, near)

    async def abump_versions(
        self, version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int
    ) -> None:
        """Async :meth:`bump_versions`."""
        self.bump_versions(version_keys, fresh, keep_ms)

    async def arelease_lease(self, key: str, lease_key: str, token: bytes) -> bool:
        """Async :meth:`release_lease`."""
        return self.release_lease(key, lease_key, token)

    async def aextend_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> bool:
        """Async :meth:`extend_lease`."""
        return self.extend_lease(lease_key, token, ttl_ms)

    async def ainvalidate(self, entries: Sequence[tuple[str, str]]) -> int:
        """Async :meth:`invalidate`."""
        return self.invalidate(entries)

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Async :meth:`get_many`."""
        return self.get_many(keys)

    async def aset_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        """Async :meth:`set_many`."""
        self.set_many(items, ttl_ms)

    async def adelete_many(self, keys: Sequence[str]) -> int:
        """Async :meth:`delete_many`."""
        return self.delete_many(keys)

    async def aput_many(
        self,
        items: Sequence[tuple[str, bytes, str]],
        ttl_ms: int | None,
        versions: Sequence[VersionCheck] = (),
    ) -> list[bool]:
        """Async :meth:`put_many`."""
        return self.put_many(items, ttl_ms, versions)

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        self.close()


def parse_counter(raw: bytes) -> int | None:
    """The integer a counter record holds, or ``None`` if ``raw`` is not one."""
    if raw[:1].isdigit() or raw[:1] == b"-":
        try:
            return int(raw)
        except ValueError:
            return None
    return None
