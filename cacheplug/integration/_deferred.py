"""Invalidations held back until a database transaction commits.

An invalidation issued inside a transaction must not run before the commit: a reader could
reload the old row in between and cache it again. Nor may it run at all if the transaction
rolls back. The framework adapters therefore collect the tags a transaction wrote here, and
flush them from their commit hook (Django ``on_commit``, SQLAlchemy ``after_commit``).

Meanwhile the writer itself already sees its uncommitted rows. A read of an entry it has
invalidated must not be answered from the cache, and must not store what it loads, since
nobody else can see that data yet. :meth:`DeferredInvalidations.covers` tells the adapter to
bypass the cache for such reads.
"""

from __future__ import annotations

from collections.abc import Iterable


class DeferredInvalidations:
    """The tags written by one transaction that has not committed yet."""

    __slots__ = ("_tags",)

    def __init__(self) -> None:
        self._tags: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self._tags)

    def add(self, tags: Iterable[str]) -> None:
        """Tags written by the transaction."""
        self._tags.update(tags)

    def covers(self, tags: Iterable[str]) -> bool:
        """True if a read carrying ``tags`` depends on something the transaction wrote."""
        return not self._tags.isdisjoint(tags)

    def peek(self) -> list[str]:
        """The tags collected so far, kept (for the outbox row written just before the
        commit)."""
        return sorted(self._tags)

    def drain(self) -> list[str]:
        """The tags to invalidate now that the transaction has committed (and forget them)."""
        tags = sorted(self._tags)
        self._tags.clear()
        return tags

    def discard(self) -> None:
        """The transaction ended without committing: forget its tags."""
        self._tags.clear()
