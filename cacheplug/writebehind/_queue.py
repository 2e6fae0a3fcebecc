"""Write-behind: writes queued in the store and drained into a sink in batches.

``put`` appends to a queue and returns at once; workers read batches, coalesce them by key,
call the sink, and acknowledge only after the sink returned. On Redis the queue is a stream
with a consumer group, so the queue survives the process (and, with AOF, the server):

- an entry read by a worker that died is reclaimed by another after ``claim_idle`` seconds,
  so nothing is lost;
- a batch delivered ``max_deliveries`` times without the sink succeeding goes to a
  dead-letter stream (``dead_letters()``) instead of blocking the queue;
- the queue holds at most ``max_length`` entries: ``put`` raises :class:`QueueFull` rather
  than dropping anything.

**Coalescing.** The writes of one batch to one key become one :class:`QueuedWrite`: the last
value (last write wins), or, with ``merge``, the values folded in the order they were put
(``merge=operator.add`` sums counter increments).

**Idempotency.** A batch can be delivered twice (its worker died after the sink wrote part of
it, before acknowledging), so **the sink must be idempotent**. A batch handed out again is
the same batch, entry for entry, whoever reclaims it, so its coalesced writes are the same
and carry the same ids: record the ids applied in the same database transaction as the writes
(or, for last-write-wins values, upsert only when the id is newer: :func:`write_order`).

On the embedded store the queue is an in-process list: nothing survives the process, which
``durable=True`` refuses.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from cacheplug._engine.protocol import CacheState
from cacheplug._types import DEFAULT, MISSING
from cacheplug.encoding._keys import Purpose
from cacheplug.exceptions import ConfigurationError, QueueFull
from cacheplug.stores.queues import Batch, Entry, Queue
from cacheplug.writebehind._memory import MemoryQueue, order

logger = logging.getLogger("cacheplug")


@dataclass(frozen=True)
class QueuedWrite:
    """One coalesced write, as the sink gets it.

    ``id`` is the queue id of the last write folded into it: unique, and the same on every
    delivery of its batch, so an idempotent sink records the ids it applied. ``merged``: how
    many writes were folded into ``value``."""

    id: str
    key: str
    value: Any
    merged: int = 1


Sink = Callable[[list[QueuedWrite]], None]
Merge = Callable[[Any, Any], Any]


def write_order(write_id: str) -> str:
    """A sortable form of a :attr:`QueuedWrite.id` (a 26-character string): later writes sort
    higher. A sink that keeps each key's newest value stores it next to the value and updates
    only when the new one is higher: batches can reach the sink out of order (two workers, or
    a batch retried after its sink failed)."""
    ms, seq = order(write_id)
    return f"{ms:015d}-{seq:010d}"


def coalesce(entries: Sequence[tuple[str, str, Any]], merge: Merge | None) -> list[QueuedWrite]:
    """``(id, key, value)`` writes as one write per key, in the order keys first appear."""
    folded: dict[str, QueuedWrite] = {}
    for entry_id, key, value in sorted(entries, key=lambda entry: order(entry[0])):
        before = folded.get(key)
        if before is None:
            folded[key] = QueuedWrite(entry_id, key, value)
        elif merge is None:
            folded[key] = QueuedWrite(entry_id, key, value, before.merged + 1)
        else:
            folded[key] = QueuedWrite(entry_id, key, merge(before.value, value), before.merged + 1)
    return list(folded.values())


class WriteBehindOptions(TypedDict, total=False):
    """The keyword options of :meth:`cacheplug.Cache.write_behind` (see :class:`WriteBehind`
    for their defaults)."""

    batch_size: int
    flush_every: float
    merge: Merge | None
    max_length: int
    max_deliveries: int
    claim_idle: float
    durable: bool
    update_cache: bool | None
    ttl: Any


class WriteBehind:
    """A named write-behind queue of one cache (see the module docs)."""

    def __init__(
        self,
        cache: CacheState,
        name: str,
        sink: Sink,
        *,
        batch_size: int = 500,
        flush_every: float = 1.0,
        merge: Merge | None = None,
        max_length: int = 100_000,
        max_deliveries: int = 5,
        claim_idle: float = 30.0,
        durable: bool = True,
        update_cache: bool | None = None,
        ttl: Any = DEFAULT,
    ) -> None:
        if batch_size < 1 or flush_every < 0 or max_length < 1 or max_deliveries < 1:
            raise ConfigurationError(
                "write_behind() needs batch_size >= 1, flush_every >= 0, max_length >= 1 "
                "and max_deliveries >= 1"
            )
        if merge is not None and update_cache:
            raise ConfigurationError(
                "update_cache=True needs whole values: a merge queue holds changes to them"
            )
        self.cache = cache
        self.name = name
        self.sink = sink
        self.batch_size = batch_size
        self.flush_every = flush_every
        self.merge = merge
        self.max_length = max_length
        self.max_deliveries = max_deliveries
        self.claim_idle = claim_idle
        self.update_cache = merge is None if update_cache is None else update_cache
        self.ttl = ttl
        self._last_flush = time.monotonic()
        self._retry: Batch | None = None
        self._put_locks = [threading.Lock() for _ in range(64)]
        queue = cache.store.write_queue(cache._engine._keys.build(Purpose.QUEUE, name), self)
        if queue is not None:
            self._queue: Queue = queue
        elif durable and cache.store.shared:
            raise ConfigurationError(f"{cache.store!r} has no durable queue for write-behind")
        elif durable:
            raise ConfigurationError(
                "the embedded store keeps write-behind queues in this process only: nothing "
                "survives it; pass durable=False to accept that"
            )
        else:
            self._queue = MemoryQueue(self)

    def put(self, key: str, value: Any) -> str:
        """Queue a write of ``value`` for ``key``; its queue id. One round trip, plus the
        cache write with ``update_cache`` (the default without ``merge``). Raises
        :class:`QueueFull` when the queue is full, :class:`CacheUnavailable` when the store
        cannot be reached: nothing is dropped silently.

        With ``update_cache`` (the default without ``merge``), ``value`` is also cached under
        ``key``, so reads through the cache see it before the sink has it."""
        record = self.cache._engine._codec.encode(
            f"wb:{self.name}", value, created_at=time.time(), fresh_until=float("inf")
        )
        if record is None:
            raise ValueError(f"the value for {key!r} cannot be queued (too large or unpicklable)")
        if not self.update_cache:
            return self._queued(key, record)
        with self._put_locks[hash(key) % len(self._put_locks)]:
            # Queued and cached in the same order as other puts of this process.
            entry_id = self._queued(key, record)
            if not self.cache.set(key, value, self.ttl):
                self.cache.invalidate(key)
        return entry_id

    def _queued(self, key: str, record: bytes) -> str:
        entry_id = self._queue.put(key, record)
        if entry_id is None:
            raise QueueFull(
                f"write-behind queue {self.name!r} holds {self.max_length} entries: "
                "the write was not queued"
            )
        return entry_id

    def due(self) -> bool:
        """True when a worker should drain now: ``flush_every`` seconds have passed since the
        last batch, or a whole batch is waiting."""
        if time.monotonic() - self._last_flush >= self.flush_every:
            return True
        return self.length() >= self.batch_size

    def drain(self, consumer: str = "worker", block: float = 0.0) -> int:
        """Hand one batch to the sink (a dead worker's batch first, as it was); how many
        queued writes were handled. The sink's exception propagates; its batch comes back
        after ``claim_idle``."""
        batch, self._retry = self._retry, None
        if batch is None:
            batch = self._queue.read(consumer, block)
        self._last_flush = time.monotonic()
        if batch is None:
            return 0
        good: list[tuple[Entry, Any]] = []
        bad: list[Entry] = []
        for entry in batch.entries:
            decoded = self.cache._engine._codec.decode(f"wb:{self.name}", entry.record)
            if decoded is None or entry.deliveries > self.max_deliveries:
                bad.append(entry)
            else:
                good.append((entry, decoded.value))
        if bad and batch.recorded:
            # A batch handed out before is handled whole, as it was, or not at all.
            bad, good = list(batch.entries), []
        if bad:
            self._queue.bury(batch.id, bad)
            if self.update_cache:  # the database never got them
                self.cache.invalidate(*dict.fromkeys(entry.key for entry in bad))
        if not good:
            return len(batch.entries)
        ids = [entry.id for entry, _ in good]
        if not batch.recorded:
            self._queue.record(batch.id, ids)
        try:
            self.sink(coalesce([(e.id, e.key, value) for e, value in good], self.merge))
        except BaseException:
            # This worker retries the batch before reading newer writes, so that one worker
            # hands a key's writes to the sink in order (another may still reclaim it).
            again = [entry._replace(deliveries=entry.deliveries + 1) for entry, _ in good]
            self._retry = batch._replace(entries=again, recorded=True)
            raise
        settled = self._queue.ack(batch.id, ids, [(entry.key, entry.id) for entry, _ in good])
        if self.update_cache and settled:
            # The database has these keys' latest writes: drop what puts cached, in case a
            # put of another process cached an older value last, or the entry expired and a
            # reader cached the database's value from before the sink.
            self.cache.invalidate(*settled)
        return len(batch.entries)

    def run(self, stop: threading.Event, consumer: str | None = None, idle: float = 1.0) -> None:
        """Drain until ``stop`` is set (a worker loop). An error (the sink's, or the store's)
        is logged on the ``cacheplug`` logger and the batch retried after ``idle`` seconds."""
        name = consumer or f"worker-{uuid.uuid4().hex[:8]}"
        while not stop.is_set():
            try:
                if not self.due() or not self.drain(name, block=min(idle, 0.2)):
                    stop.wait(0.02)
            except Exception:
                logger.exception(
                    "write-behind queue %r, worker %s: draining failed; retrying in %gs",
                    self.name,
                    name,
                    idle,
                )
                stop.wait(idle)

    def start(self, consumer: str | None = None) -> threading.Event:
        """Run a worker in a daemon thread (for small apps); set the returned event to stop
        it."""
        stop = threading.Event()
        threading.Thread(target=self.run, args=(stop, consumer), daemon=True).start()
        return stop

    def pending(self, key: str) -> Any:
        """The value last queued for ``key`` that the sink has not taken yet, or
        :data:`~cacheplug.MISSING`: read your own writes before they reach the database. A
        merge queue has no such value (it holds changes): it raises ``TypeError``."""
        if self.merge is not None:
            raise TypeError(f"write-behind queue {self.name!r} merges changes: no pending value")
        record = self._queue.pending(key)
        if record is None:
            return MISSING
        decoded = self.cache._engine._codec.decode(f"wb:{self.name}", record)
        return MISSING if decoded is None else decoded.value

    def get_or_load(self, key: str, loader: Callable[[], Any], ttl: Any = DEFAULT) -> Any:
        """The pending value of ``key`` if it has one, else ``cache.get_or_load``."""
        value = self.pending(key)
        if value is not MISSING:
            return value
        return self.cache.get_or_load(key, loader, ttl)

    def length(self) -> int:
        """Writes queued and not yet acknowledged."""
        return self._queue.length()

    def dead_letters(self) -> list[tuple[str, str]]:
        """``(id, key)`` of the writes given up on."""
        return self._queue.dead()

    def dead_count(self) -> int:
        """How many writes were given up on (shown by the stats commands)."""
        return self._queue.dead_count()
