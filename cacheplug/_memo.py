"""A bounded memo: a dict that forgets everything once it is full.

Hot paths memoize small derivations (a store key from a user key, the version keys of a tag
set, the version keys an entry recorded). Such a memo refills as keys are used again, so
forgetting it wholesale when full is enough: no recency bookkeeping on the hit path, where it
is read as a plain dict (``memo.get(key)``, ``memo[key]``).
"""

from __future__ import annotations

from typing import Final, TypeVar

K = TypeVar("K")
V = TypeVar("V")

MEMO_ENTRIES: Final = 4096
"""The usual bound: plenty for the distinct keys a process keeps using, small in memory."""


class BoundedMemo(dict[K, V]):
    """A dict of at most ``max_entries`` entries, filled through :meth:`remember`."""

    __slots__ = ("max_entries",)

    def __init__(self, max_entries: int = MEMO_ENTRIES) -> None:
        super().__init__()
        self.max_entries = max_entries

    def remember(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` (clearing the memo first if it is full); returns
        ``value``."""
        if len(self) >= self.max_entries:
            self.clear()
        self[key] = value
        return value
