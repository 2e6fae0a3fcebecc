"""The core's side of write-behind queues: the in-process queue (the embedded store, with
``durable=False``) and the order of entry ids.

The queue API (:class:`~cacheplug.stores.queues.Queue`, its entries and batches) is declared
with the stores, below the core: a store that keeps durable queues (the Redis stores: a
stream with a consumer group) implements it there, and write-behind drives either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from cacheplug.stores.queues import Batch, Entry, Queue, QueueLimits, new_batch_id


def order(entry_id: str) -> tuple[int, int]:
    """Entry ids in the order they were added (``"<ms>-<seq>"``, as Redis stream ids)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class MemoryQueue(Queue):
    """In-process only (the embedded store): lost with the process."""

    def __init__(self, limits: QueueLimits) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._items: list[tuple[str, str, bytes]] = []
        # id -> key, record, deliveries, taken at, batch
        self._taken: dict[str, tuple[str, bytes, int, float, str]] = {}
        self._recorded: set[str] = set()
        self._dead: list[tuple[str, str]] = []
        self._values: dict[str, tuple[str, bytes]] = {}
        self._next = 0

    def put(self, key: str, record: bytes) -> str | None:
        with self._lock:
            if len(self._items) + len(self._taken) >= self._limits.max_length:
                return None
            self._next += 1
            entry_id = f"{self._next}-0"
            self._items.append((entry_id, key, record))
            self._values[key] = (entry_id, record)
            return entry_id

    def read(self, consumer: str, block: float) -> Batch | None:
        with self._lock:
            now = time.monotonic()
            stale = [
                (entry_id, batch)
                for entry_id, (_, _, _, taken_at, batch) in self._taken.items()
                if now - taken_at >= self._limits.claim_idle
            ]
            if stale:
                batch = stale[0][1]
                entries = []
                for entry_id, (key, record, count, _, of) in list(self._taken.items()):
                    if of == batch:
                        self._taken[entry_id] = (key, record, count + 1, now, batch)
                        entries.append(Entry(entry_id, key, record, count + 1))
                return Batch(batch, entries, recorded=batch in self._recorded)
            taken = self._items[: self._limits.batch_size]
            if not taken:
                return None
            del self._items[: len(taken)]
            batch = new_batch_id()
            for entry_id, key, record in taken:
                self._taken[entry_id] = (key, record, 1, now, batch)
            return Batch(batch, [Entry(i, k, r, 1) for i, k, r in taken], recorded=False)

    def record(self, batch: str, ids: Sequence[str]) -> None:
        with self._lock:
            self._recorded.add(batch)

    def ack(self, batch: str, ids: Sequence[str], settled: Sequence[tuple[str, str]]) -> list[str]:
        with self._lock:
            for entry_id in ids:
                self._taken.pop(entry_id, None)
            self._recorded.discard(batch)
            return self._forget(settled)

    def bury(self, batch: str, entries: Sequence[Entry]) -> list[str]:
        with self._lock:
            for entry in entries:
                self._taken.pop(entry.id, None)
                self._dead.append((entry.id, entry.key))
            self._recorded.discard(batch)
            return self._forget([(entry.key, entry.id) for entry in entries])

    def _forget(self, settled: Sequence[tuple[str, str]]) -> list[str]:
        done = []
        for key, entry_id in settled:
            held = self._values.get(key)
            if held is not None and held[0] == entry_id:
                del self._values[key]
                done.append(key)
        return done

    def pending(self, key: str) -> bytes | None:
        with self._lock:
            held = self._values.get(key)
            return None if held is None else held[1]

    def length(self) -> int:
        with self._lock:
            return len(self._items) + len(self._taken)

    def dead(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._dead)

    def dead_count(self) -> int:
        with self._lock:
            return len(self._dead)
