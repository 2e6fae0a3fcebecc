"""Invalidations that could not reach the store, kept and retried until they do.

A lost invalidation would leave an old value in the cache for its whole TTL, so an
invalidation that fails is queued here and retried with backoff from a daemon thread. Until
it succeeds, reads in this process of the affected keys, and of entries carrying affected
tags or namespaces, bypass the cache (they load, and store nothing).

The queue is bounded. Past the bound it forgets the individual items and remembers instead
that the cache's whole namespace must be bumped (a logical flush, always safe): until then,
every read in this process bypasses the cache.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

logger = logging.getLogger("cacheplug")

DEFAULT_MAX_PENDING: Final = 10_000
_FIRST_BACKOFF: Final = 0.05
_MAX_BACKOFF: Final = 2.0


@dataclass(frozen=True)
class PendingInvalidation:
    """One invalidation waiting for the store: ``kind`` is ``"key"``, ``"tag"`` or
    ``"namespace"`` (tags and namespaces by their version keys), ``store_key`` what it
    removes or bumps."""

    kind: str
    store_key: str


Apply = Callable[[list[tuple[str, str]], list[str]], None]
"""Applies ``(entries, version keys)`` to the store; raises when it cannot."""


class PendingInvalidations:
    """The queue of one cache (shared with its nested namespaces)."""

    def __init__(
        self,
        apply: Apply,
        root_version_key: str,
        *,
        max_items: int = DEFAULT_MAX_PENDING,
        on_applied: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._apply = apply
        self._on_applied = on_applied  # told the version keys an attempt applied
        self._root = root_version_key
        self.max_items = max_items
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        # Each item remembers when it was queued, so that one queued again while an attempt
        # was under way is not taken off by that attempt.
        self._entries: dict[str, tuple[str, int]] = {}  # data key -> (lease key, seq)
        self._versions: dict[str, tuple[str, int]] = {}  # version key -> (kind, seq)
        self._seq = 0
        self._flush_all = False
        self._flush_seq = 0  # bumped by each overflow: an attempt clears only the one it saw
        self._applying = 0  # attempts under way (the retry thread, and close())
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._pid = os.getpid()
        self.active = False
        """True while anything is pending (the read path checks this flag first)."""

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries) + len(self._versions) + self._flush_all

    def items(self) -> list[PendingInvalidation]:
        """What is waiting: keys, then tags and namespaces."""
        with self._lock:
            found = [PendingInvalidation("key", key) for key in self._entries]
            found += [PendingInvalidation(kind, key) for key, (kind, _) in self._versions.items()]
            if self._flush_all:
                found.append(PendingInvalidation("namespace", self._root))
            return found

    # -- queueing ----------------------------------------------------------------------------

    def add(self, entries: Iterable[tuple[str, str]], versions: Iterable[tuple[str, str]]) -> None:
        """Queue entries ``(data key, lease key)`` and ``(version key, kind)`` pairs."""
        with self._lock:
            self._seq += 1
            seq = self._seq
            # A pending namespace bump covers them, unless it may be reaching the store now.
            if not self._flush_all or self._applying:
                self._entries.update((key, (lease, seq)) for key, lease in entries)
                self._versions.update((key, (kind, seq)) for key, kind in versions)
                if len(self._entries) + len(self._versions) > self.max_items:
                    self._overflow()
            self.active = True
            self._ensure_thread()
            self._wakeup.notify()

    def _overflow(self) -> None:
        # Caller holds the lock.
        if not self._flush_all:
            logger.error(
                "cacheplug: more than %d invalidations are waiting for the store; the whole "
                "namespace will be bumped when it is back (every read bypasses the cache "
                "until then)",
                self.max_items,
            )
        self._entries.clear()
        self._versions.clear()
        self._flush_all = True
        self._flush_seq += 1

    def affects(self, data_key: str, version_keys: Iterable[str]) -> bool:
        """True when a read of ``data_key`` recording ``version_keys`` must bypass the cache
        (call only while :attr:`active`)."""
        if self._flush_all or data_key in self._entries:
            return True
        versions = self._versions
        return any(key in versions for key in version_keys)

    # -- retrying ----------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        # Caller holds the lock.
        if self._pid != os.getpid():  # the retry thread stayed in the parent
            self._pid, self._thread = os.getpid(), None
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(
                target=self._retry_forever, name="cacheplug-invalidations", daemon=True
            )
            self._thread.start()

    def _retry_forever(self) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            with self._lock:
                while not self.active and not self._stopping:
                    self._wakeup.wait()
                if self._stopping:
                    return
            if self.try_apply():
                backoff = _FIRST_BACKOFF
                continue
            with self._lock:
                self._wakeup.wait(backoff)  # a new item does not hurry a dead store
            backoff = min(_MAX_BACKOFF, backoff * 2)

    def try_apply(self) -> bool:
        """Apply everything pending now; True when nothing is left."""
        with self._lock:
            entries = dict(self._entries)
            versions = dict(self._versions)
            flush_all = self._flush_all
            flush_seq = self._flush_seq
            if not (entries or versions or flush_all):
                return True
            self._applying += 1
        keys = list(versions)
        if flush_all:
            keys.append(self._root)
        try:
            self._apply([(key, lease) for key, (lease, _) in entries.items()], keys)
        except Exception as exc:
            logger.debug("cacheplug: invalidations still cannot reach the store: %s", exc)
            with self._lock:
                self._applying -= 1
            return False
        with self._lock:
            self._applying -= 1
            for key in entries:
                if self._entries.get(key) == entries[key]:
                    del self._entries[key]
            for key in versions:
                if self._versions.get(key) == versions[key]:
                    del self._versions[key]
            if flush_all and self._flush_seq == flush_seq:  # no overflow since: all covered
                self._flush_all = False
            self.active = bool(self._entries or self._versions or self._flush_all)
            done = not self.active
        if keys and self._on_applied is not None:
            self._on_applied(keys)
        return done

    def flush(self, timeout: float) -> bool:
        """Try for up to ``timeout`` seconds to apply what is pending (a clean shutdown);
        True when nothing is left. What is left is logged as an error."""
        # Real time, even under a test's fake clock: this is how long close() may block.
        deadline = time.monotonic() + timeout
        backoff = _FIRST_BACKOFF
        while not self.try_apply():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                logger.error(
                    "cacheplug: %d invalidation(s) could not reach the store before shutdown; "
                    "other processes may read the old values until they expire: %s",
                    len(self),
                    ", ".join(f"{item.kind} {item.store_key}" for item in self.items()[:20]),
                )
                return False
            time.sleep(min(backoff, remaining))
            backoff = min(_MAX_BACKOFF, backoff * 2)
        return True

    def stop(self) -> None:
        """Stop the retry thread (after :meth:`flush`)."""
        with self._lock:
            self._stopping = True
            self._wakeup.notify_all()
