"""The embedded default: an in-process, thread-safe store with LRU eviction and TTLs."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl, urlsplit

from cacheplug._redact import redact
from cacheplug.exceptions import ConfigurationError, NotACounter
from cacheplug.stores.base import Store, VersionCheck, parse_counter

_NEVER = math.inf
_BUMP_LOG = 4096  # the last version bumps kept for moved_since (a load looks back over its own)


class MemoryStore(Store):
    """A bounded in-process store.

    Bounded by entry count (``max_entries``) and by the bytes of keys and values
    (``max_bytes``); the least recently used entries are evicted first. Expired entries are
    dropped when touched, and swept every ``sweep_interval`` seconds on writes.
    Nothing is shared with other processes, so values need no signing.
    """

    shared = False
    bumps_together = True  # one lock

    def __init__(
        self,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        *,
        sweep_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ConfigurationError("max_entries and max_bytes must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.sweep_interval = sweep_interval
        self._clock = clock
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._next_sweep = clock() + sweep_interval
        self._bumps = 0  # version keys bumped so far
        self._bumped: deque[tuple[int, str]] = deque(maxlen=_BUMP_LOG)
        self._cleared_at = 0  # the count of bumps when clear() last ran

    def __repr__(self) -> str:
        return f"MemoryStore(max_entries={self.max_entries}, max_bytes={self.max_bytes})"

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        """``memory://`` with optional ``?max_entries=...&max_bytes=...``."""
        parts = urlsplit(url)
        if parts.scheme != "memory":
            raise ConfigurationError(f"not a memory:// URL: {redact(url)!r}")
        options = dict(parse_qsl(parts.query))
        unknown = set(options) - {"max_entries", "max_bytes"}
        if unknown:
            raise ConfigurationError(f"unknown memory:// option(s): {', '.join(sorted(unknown))}")
        try:
            sizes = {name: int(value) for name, value in options.items()}
        except ValueError:
            raise ConfigurationError(
                f"memory:// options must be integers: {redact(url)!r}"
            ) from None
        return cls(
            max_entries=sizes.get("max_entries", 10_000),
            max_bytes=sizes.get("max_bytes", 64 * 1024 * 1024),
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    @property
    def used_bytes(self) -> int:
        """Bytes of keys and values currently held."""
        return self._bytes

    def _expiry(self, ttl_ms: int | None) -> float:
        return _NEVER if ttl_ms is None else self._clock() + ttl_ms / 1000.0

    def _live(self, key: str) -> tuple[bytes, float] | None:
        # Caller holds the lock.
        item = self._data.get(key)
        if item is not None and item[1] <= self._clock():
            self._drop(key, item)
            return None
        return item

    def _held_lease(self, lease_key: str, token: bytes) -> tuple[bytes, float] | None:
        # Caller holds the lock.
        lease = self._live(lease_key)
        return lease if lease is not None and lease[0] == token else None

    def _drop(self, key: str, item: tuple[bytes, float]) -> None:
        del self._data[key]
        self._bytes -= len(key) + len(item[0])

    def _put(self, key: str, value: bytes, expires_at: float) -> bool:
        """Store ``value`` (caller holds the lock); False when it is larger than the whole
        store, which then holds no value under ``key`` (the old one must not stay)."""
        old = self._data.pop(key, None)
        if old is not None:
            self._bytes -= len(key) + len(old[0])
        size = len(key) + len(value)
        if size > self.max_bytes:
            return False
        self._data[key] = (value, expires_at)
        self._bytes += size
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
            oldest, item = self._data.popitem(last=False)
            self._bytes -= len(oldest) + len(item[0])
        return True

    def _sweep(self, now: float) -> None:
        expired = [k for k, (_, expires_at) in self._data.items() if expires_at <= now]
        for key in expired:
            self._drop(key, self._data[key])
        self._next_sweep = now + self.sweep_interval

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            if item[1] <= self._clock():
                self._drop(key, item)
                return None
            self._data.move_to_end(key)
            return item[0]

    def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        expires_at = self._expiry(ttl_ms)
        with self._lock:
            self._put(key, value, expires_at)

    def add(self, key: str, value: bytes, ttl_ms: int | None) -> bool:
        expires_at = self._expiry(ttl_ms)
        with self._lock:
            if self._live(key) is not None:
                return False
            return self._put(key, value, expires_at)

    def delete(self, key: str) -> bool:
        with self._lock:
            item = self._live(key)
            if item is None:
                return False
            self._drop(key, item)
            return True

    def incr(self, key: str, delta: int, ttl_ms: int | None) -> int:
        with self._lock:
            item = self._live(key)
            if item is None:
                value, expires_at = delta, self._expiry(ttl_ms)
            else:
                current = parse_counter(item[0])
                if current is None:
                    raise NotACounter(f"the value under {key!r} is not an integer counter")
                value, expires_at = current + delta, item[1]
            self._put(key, str(value).encode("ascii"), expires_at)
            return value

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        # On the hit path of every read but the embedded one of a record seen before (an entry
        # and its version keys): kept tight.
        found: list[bytes | None] = []
        append = found.append
        data = self._data
        with self._lock:
            now = self._clock()
            for key in keys:
                item = data.get(key)
                if item is None:
                    append(None)
                elif item[1] > now:
                    data.move_to_end(key)
                    append(item[0])
                else:
                    self._drop(key, item)
                    append(None)
        return found

    def get_if_version(self, key: str, version: tuple[str, bytes]) -> bytes | None:
        """The entry under ``key`` if the version key ``version[0]`` holds ``version[1]``,
        else ``None``: the engine's in-process hit path, which reads an entry and the version
        it records under one lock acquisition (``get_many([key, version_key])`` and a
        comparison, without the list). Expiry and recency as :meth:`get_many`."""
        version_key, expected = version
        data = self._data
        with self._lock:
            item = data.get(key)
            if item is None:
                return None
            now = self._clock()
            if item[1] <= now:
                self._drop(key, item)
                return None
            current = data.get(version_key)
            if current is None or current[0] != expected:
                return None
            if current[1] <= now:
                self._drop(version_key, current)
                return None
            data.move_to_end(key)
            data.move_to_end(version_key)
            return item[0]

    def compare_and_swap(self, key: str, expected: bytes, new: bytes) -> bool:
        with self._lock:
            item = self._live(key)
            if item is None or item[0] != expected:
                return False
            return self._put(key, new, item[1])

    def ttl_ms(self, key: str) -> int | None:
        with self._lock:
            item = self._live(key)
            if item is None:
                return -1
            if item[1] == _NEVER:
                return None
            return max(0, round((item[1] - self._clock()) * 1000))

    def acquire_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> int:
        with self._lock:
            item = self._live(lease_key)
            if item is None:
                self._put(lease_key, token, self._expiry(ttl_ms))
                return 0
            return max(1, round((item[1] - self._clock()) * 1000))

    def fill_with_lease(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        token: bytes,
        versions: Sequence[VersionCheck] = (),
    ) -> bool:
        with self._lock:
            lease = self._held_lease(lease_key, token)
            if lease is None:
                return False
            stored = self._versions_hold(versions)
            if stored:
                stored = self._write(key, value, ttl_ms, lease_key, versions)
            else:  # invalidated meanwhile: store nothing, let the waiters go
                self._drop(lease_key, lease)
        self.fills.announce(key)
        return stored

    def put(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        versions: Sequence[VersionCheck] = (),
        only_if_absent: bool = False,
    ) -> bool:
        with self._lock:
            if only_if_absent and self._live(key) is not None:
                return False
            if not self._versions_hold(versions):
                return False
            stored = self._write(key, value, ttl_ms, lease_key, versions)
        self.fills.announce(key)
        return stored

    def ensure_versions(
        self,
        version_keys: Sequence[str],
        fresh: Sequence[int],
        keep_ms: int,
        near: str | None = None,
    ) -> list[bytes | None]:
        found: list[bytes | None] = []
        with self._lock:
            for version_key, new in zip(version_keys, fresh, strict=True):
                item = self._live(version_key)
                if item is None:
                    value = str(new).encode()
                    self._put(version_key, value, self._expiry(keep_ms))
                    found.append(value)
                else:
                    found.append(item[0])
        return found

    def bump_versions(
        self, version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int
    ) -> None:
        with self._lock:
            for version_key, new in zip(version_keys, fresh, strict=True):
                item = self._live(version_key)
                current = None if item is None else parse_counter(item[0])
                if item is None or current is None:
                    self._put(version_key, str(new).encode(), self._expiry(keep_ms))
                else:
                    self._put(version_key, str(current + 1).encode(), item[1])
                self._bumps += 1
                self._bumped.append((self._bumps, version_key))
        for version_key in version_keys:
            self.fills.invalidated(version_key)

    def version_mark(self) -> int | None:
        return self._bumps

    def moved_since(self, mark: int, version_keys: Sequence[str]) -> bool | None:
        with self._lock:
            if self._cleared_at > mark:
                return None  # every version went: a load under way read what came before
            if self._bumps == mark:
                return False
            log = self._bumped
            if not log or log[0][0] > mark + 1:
                return None  # the log no longer reaches back to the mark
            wanted = set(version_keys)
            for seq, version_key in reversed(log):
                if seq <= mark:
                    return False
                if version_key in wanted:
                    return True
            return False

    def _versions_hold(self, versions: Sequence[VersionCheck]) -> bool:
        # Caller holds the lock.
        for version_key, version, create in versions:
            item = self._live(version_key)
            if create:
                if item is not None:
                    return False
            elif item is None or item[0] != str(version).encode():
                return False
        return True

    def _write(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        versions: Sequence[VersionCheck],
    ) -> bool:
        # Caller holds the lock and checked the conditions. False when the value is larger
        # than the whole store: nothing is stored under ``key`` then.
        expires_at = self._expiry(ttl_ms)
        for version_key, version, create in versions:
            item = self._live(version_key)
            if create or item is None:
                self._put(version_key, str(version).encode(), expires_at)
            elif item[1] < expires_at:  # a version key outlives the entries recording it
                self._data[version_key] = (item[0], expires_at)
        lease = self._live(lease_key)
        if lease is not None:
            self._drop(lease_key, lease)
        return self._put(key, value, expires_at)

    def release_lease(self, key: str, lease_key: str, token: bytes) -> bool:
        with self._lock:
            lease = self._held_lease(lease_key, token)
            if lease is None:
                return False
            self._drop(lease_key, lease)
        self.fills.announce(key)
        return True

    def extend_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> bool:
        with self._lock:
            if self._held_lease(lease_key, token) is None:
                return False
            self._data[lease_key] = (token, self._expiry(ttl_ms))
            return True

    def clear(self) -> None:
        """Remove everything (the store is this process's own, so this is always safe)."""
        with self._lock:
            self._data.clear()
            self._bytes = 0
            self._bumps += 1
            self._cleared_at = self._bumps
