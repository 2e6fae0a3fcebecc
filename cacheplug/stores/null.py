"""``NullStore``: a store that keeps nothing — the off switch.

Every read misses and every write is dropped, so a cache over it runs every loader and
returns what the loader returned; invalidations succeed and have nothing to remove. It is
what Django's ``DummyCache`` and Flask-Caching's ``NullCache`` are to their frameworks:
for tests that must see the code without a cache, and for switching a cache off with one
setting (``"null://"`` as the store URL).

Leases are always granted, so two processes never wait for each other's load (within one
process, concurrent callers of one key still share a load: that happens before the store).
A :meth:`cacheplug.Cache.lock` over it excludes nobody.
"""

from __future__ import annotations

from collections.abc import Sequence

from cacheplug.stores.base import Store, VersionCheck


class NullStore(Store):
    """Holds nothing: ``get`` finds nothing, ``set`` stores nothing."""

    # Nothing leaves the process (there is nothing to sign), and nothing is kept to be
    # shared: entries are encoded as for the embedded store, then dropped.
    shared = False
    bumps_together = True  # nothing moves, so everything moves together

    @classmethod
    def from_url(cls, url: str) -> NullStore:
        """``null://`` (whatever follows the scheme is ignored)."""
        return cls()

    def __repr__(self) -> str:
        return "NullStore()"

    def get(self, key: str) -> bytes | None:
        return None

    def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        return None

    def add(self, key: str, value: bytes, ttl_ms: int | None) -> bool:
        return False  # nothing was stored

    def delete(self, key: str) -> bool:
        return False

    def incr(self, key: str, delta: int, ttl_ms: int | None) -> int:
        return delta  # a counter that is never kept starts from 0 every time

    def compare_and_swap(self, key: str, expected: bytes, new: bytes) -> bool:
        return False

    def ttl_ms(self, key: str) -> int | None:
        return -1

    def acquire_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> int:
        return 0  # taken: nobody can be holding a lease that is never kept

    def fill_with_lease(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        token: bytes,
        versions: Sequence[VersionCheck] = (),
    ) -> bool:
        self.fills.announce(key)  # in-process waiters for this load wake up and load
        return False

    def put(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        versions: Sequence[VersionCheck] = (),
        only_if_absent: bool = False,
    ) -> bool:
        self.fills.announce(key)
        return False

    def ensure_versions(
        self,
        version_keys: Sequence[str],
        fresh: Sequence[int],
        keep_ms: int,
        near: str | None = None,
    ) -> list[bytes | None]:
        return [str(version).encode() for version in fresh]

    def bump_versions(
        self, version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int
    ) -> None:
        for key in version_keys:
            self.fills.invalidated(key)

    def release_lease(self, key: str, lease_key: str, token: bytes) -> bool:
        self.fills.announce(key)
        return True

    def extend_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> bool:
        return True
