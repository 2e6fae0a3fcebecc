"""The queue a store keeps for write-behind (see :class:`~cacheplug.WriteBehind`).

A store that can keep a durable queue returns one from :meth:`Store.write_queue
<cacheplug.stores.Store.write_queue>` (the Redis stores: a stream with a consumer group);
write-behind itself lives in the core and only drives this API. The core's in-process queue
(for the embedded store, ``durable=False``) implements it too.

Entries are handed out in batches, and a batch is remembered (its *manifest*: the entry ids in
it) before the sink sees it. A batch given up by a dead worker is handed out again exactly as
it was, whoever reclaims it and whatever their batch size, so the coalesced writes built from
it are the same, with the same ids: an idempotent sink can tell them apart from new ones.

Entry ids are ``"<milliseconds>-<sequence>"``, ordered as the entries were added (Redis
stream ids have that form).
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Sequence
from typing import NamedTuple, Protocol


class Entry(NamedTuple):
    """One queued write: its id, key, encoded record, and how often it was handed out."""

    id: str
    key: str
    record: bytes
    deliveries: int


class Batch(NamedTuple):
    """Entries handed out together."""

    id: str
    entries: list[Entry]
    recorded: bool
    """True when the batch was handed out before (its manifest exists): it must be handled
    whole, as it was."""


class QueueLimits(Protocol):
    """The settings a queue reads at each call (the write-behind queue that owns it: changing
    them takes effect at once)."""

    @property
    def max_length(self) -> int:
        """Entries the queue holds at most."""

    @property
    def batch_size(self) -> int:
        """Entries handed out at most per batch."""

    @property
    def claim_idle(self) -> float:
        """Seconds after which a batch handed out and not acknowledged is handed out again."""


def new_batch_id() -> str:
    """A fresh batch id."""
    return uuid.uuid4().hex


class Queue(abc.ABC):
    """A write-behind queue: what a worker reads, records, acknowledges and buries."""

    @abc.abstractmethod
    def put(self, key: str, record: bytes) -> str | None:
        """Append a write; its entry id, or ``None`` (nothing queued) when the queue already
        holds ``max_length`` entries (see :class:`QueueLimits`)."""

    @abc.abstractmethod
    def read(self, consumer: str, block: float) -> Batch | None:
        """The next batch for ``consumer``: a batch some consumer took at least ``claim_idle``
        seconds ago and never acknowledged (whole, as it was), else up to ``batch_size`` new
        entries, waiting up to ``block`` seconds for one; ``None`` if there is none."""

    @abc.abstractmethod
    def record(self, batch: str, ids: Sequence[str]) -> None:
        """Remember the manifest of ``batch`` before the sink sees it."""

    @abc.abstractmethod
    def ack(self, batch: str, ids: Sequence[str], settled: Sequence[tuple[str, str]]) -> list[str]:
        """Acknowledge the batch; of its ``(key, entry id)`` pairs, the keys whose latest
        write it held (their pending values are forgotten)."""

    @abc.abstractmethod
    def bury(self, batch: str, entries: Sequence[Entry]) -> list[str]:
        """Move ``entries`` to the dead letters and acknowledge the batch; as :meth:`ack`."""

    @abc.abstractmethod
    def pending(self, key: str) -> bytes | None:
        """The record last queued for ``key`` and not yet settled, if any."""

    @abc.abstractmethod
    def length(self) -> int:
        """Entries queued and not yet acknowledged."""

    @abc.abstractmethod
    def dead(self) -> list[tuple[str, str]]:
        """``(entry id, key)`` of the dead letters."""

    @abc.abstractmethod
    def dead_count(self) -> int:
        """How many dead letters there are."""
