"""The transactional outbox: invalidations that survive the writer's death.

An ORM hook invalidates what a transaction wrote after it commits. If the process cannot reach
the cache then (a partition, a Redis restart) it keeps the invalidation in memory and retries;
if it then exits or is killed, the invalidation is lost and other processes serve the old
value until its TTL. The outbox closes that gap: the tags a transaction writes are also
inserted into a table *inside the same transaction*, so they commit or roll back with the data.
After the commit they are delivered (the in-memory path) and the row is deleted a moment later,
with others in one statement (:meth:`OutboxRelay.delivered`: a DELETE per transaction would
cost a second commit each); whatever is left (the writer died, or the cache was down) is
delivered by any process of the app, one at a time, about every second (:class:`OutboxRelay`).

One row per transaction, not per statement: the row holds the *tables* the transaction wrote
(``db:t:`` and ``db:a:`` tags, which reach every entry depending on any row of the table; see
``_table_tags``), so it is inserted at the transaction's first write and updated only when a
table not seen yet is written. The exact row tags still go through the after-commit path; the
outbox only has to be right when that path failed, and a coarser invalidation costs misses,
never a stale read.

The adapters own the SQL (Django's ORM, SQLAlchemy Core): this module decides what to write
and when, and relays. :data:`OUTBOX_TABLE` is the table's name in both.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from cacheplug.integration._table_tags import ALL_TABLES, ANY, ROW, TABLE

OUTBOX_TABLE: Final = "cacheplug_outbox"
"""The outbox table's name (Django model ``cacheplug_django.OutboxEntry``, SQLAlchemy
``cacheplug_flask.outbox_table``): ``id`` (32 hex characters), ``tags`` (a JSON list),
``created_at`` (seconds since the epoch)."""

RELAY_EVERY: Final = 1.0
"""Seconds between two relays of one process."""
RELAY_LEASE: Final = 3.0
"""Seconds a relayer's lease lasts: a process that died (or exited) mid-relay holds up the
others no longer than that. A relay outlasting it may deliver rows twice: harmless."""
RELAY_GRACE: Final = 2.0
"""Seconds a row is left to the process that wrote it before any relayer delivers it (the
writer normally delivers and deletes it right after its commit)."""
RELAY_BATCH: Final = 500
"""Rows delivered by one relay."""

logger = logging.getLogger("cacheplug")


def outbox_tags(tags: Iterable[str]) -> list[str]:
    """The tags an outbox row keeps for ``tags`` written by a transaction: each table's
    ``db:t:`` and ``db:a:`` tags instead of its rows, ``db:*`` as is, other tags as they are
    (sorted, without repeats)."""
    kept: set[str] = set()
    for tag in tags:
        if tag.startswith(ROW):
            table = tag[len(ROW) :].split(":", 1)[0]
            kept.update((TABLE + table, ANY + table))
        elif tag.startswith(TABLE):
            table = tag[len(TABLE) :]
            kept.update((tag, ANY + table))
        elif tag.startswith(ANY):
            kept.update((tag, TABLE + tag[len(ANY) :]))
        else:  # ALL_TABLES, or a tag of the application's own
            kept.add(tag)
    return sorted(kept)


def new_row_id() -> str:
    return secrets.token_hex(16)


@dataclass(slots=True)
class OutboxRow:
    """What one open transaction has put in the outbox so far."""

    id: str = field(default_factory=new_row_id)
    tags: set[str] = field(default_factory=set)
    stored: bool = False
    """False until the row is in the transaction (again: a rolled-back savepoint may have
    taken it out)."""


@dataclass(frozen=True, slots=True)
class OutboxWrite:
    """A statement the adapter runs inside the transaction: insert or update row ``id``."""

    insert: bool
    id: str
    tags_json: str
    created_at: float


@functools.lru_cache(maxsize=1024)
def _kept(tags: tuple[str, ...]) -> tuple[frozenset[str], str]:
    # A write's tags and their JSON, worked out once per set of tables written: this runs in
    # every writing transaction (``benchmarks/outbox_cost.py``).
    kept = outbox_tags(tags)
    return frozenset(kept), json.dumps(kept)


def outbox_write(row: OutboxRow, tags: Iterable[str]) -> OutboxWrite | None:
    """What the adapter must write to the outbox, inside the transaction, now that it wrote
    ``tags``: nothing when the row already holds them."""
    wanted, wanted_json = _kept(tuple(tags))
    if row.stored and wanted <= row.tags:
        return None
    insert = not row.stored
    if insert and row.tags:  # taken out by a savepoint rollback: a fresh row, all of it
        row.id = new_row_id()
    if row.tags:
        row.tags |= wanted
        tags_json = json.dumps(sorted(row.tags))
    else:  # the transaction's first write: the row holds just these
        row.tags = set(wanted)
        tags_json = wanted_json
    row.stored = True
    return OutboxWrite(insert, row.id, tags_json, time.time())


def parse_tags(tags_json: str) -> list[str]:
    """A row's tags; a row that is not a JSON list of strings gives every table's tag (an
    outbox row that cannot be read must not be dropped unapplied)."""
    try:
        tags = json.loads(tags_json)
    except ValueError:
        return [ALL_TABLES]
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return [ALL_TABLES]
    return tags


class EdgeQueue(Protocol):
    """What the outbox needs of :class:`~cacheplug.integration.EdgePurges`."""

    def flush(self, timeout: float) -> bool: ...

    def after_purged(self, callback: Callable[[], None]) -> None: ...


NoEdge: Callable[[], EdgeQueue | None] = lambda: None  # noqa: E731 - a default argument
EDGE_WAIT: Final = 5.0
"""Seconds a relay waits for the edge purges of the rows it delivered."""


def landed_invalidation(
    cache: Any, edge: Callable[[], EdgeQueue | None] = NoEdge
) -> Callable[[list[str]], bool]:
    """``invalidate(tags)`` for :class:`OutboxRelay` on ``cache``: True when nothing is left
    pending afterwards (an invalidation the store did not take is queued by the cache, and the
    rows stay for the next relay), and the edge (``edge()``, if any) was purged of them."""

    def invalidate(tags: list[str]) -> bool:
        cache.invalidate_tags(*tags)
        if cache.pending_invalidations():
            return False
        purges = edge()
        return purges is None or purges.flush(EDGE_WAIT)

    return invalidate


def deliver_after_edge(
    relay: OutboxRelay, row_id: str, edge: Callable[[], EdgeQueue | None] = NoEdge
) -> None:
    """``relay.delivered(row_id)`` once the edge (if any) is purged of what the row's
    transaction wrote: until then the row stays, for a relay of any process to deliver (and
    purge) again if this one dies."""
    purges = edge()
    if purges is None:
        relay.delivered(row_id)
    else:
        purges.after_purged(lambda: relay.delivered(row_id))


class OutboxStore(Protocol):
    """The adapter's side of the relay: its queries against :data:`OUTBOX_TABLE`."""

    def due(self, written_before: float, limit: int) -> Sequence[tuple[str, str]]:
        """``(id, tags JSON)`` of the rows written before ``written_before``, oldest first."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove these rows (in a transaction of their own)."""
        ...

    def waiting(self, excluding: Sequence[str]) -> tuple[int, float | None]:
        """How many rows the table holds but ``excluding``, and the oldest one's
        ``created_at`` (None when there is none)."""
        ...


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """What one database's outbox holds that is still to be delivered."""

    rows: int
    oldest_age: float | None
    """Seconds since the oldest of those rows was written; None when there is none."""


class _Lease(Protocol):
    def acquire(self) -> bool: ...

    def release(self) -> Any: ...


class OutboxRelay:
    """Delivers what the outbox holds, from any process of the app.

    ``invalidate(tags)`` must return True only when the invalidation reached the store (the
    rows are deleted then, else kept for the next relay). ``lease()`` gives a lock held by one
    relayer at a time (the cache's :meth:`~cacheplug.Cache.lock`); delivery is idempotent, so a
    lease lost midway costs a repeated invalidation, nothing more.
    """

    def __init__(
        self,
        store: OutboxStore,
        invalidate: Callable[[list[str]], bool],
        lease: Callable[[], _Lease],
        *,
        every: float = RELAY_EVERY,
        grace: float = RELAY_GRACE,
        batch: int = RELAY_BATCH,
        deletes_delivered: bool = True,
    ) -> None:
        self._store = store
        self._invalidate = invalidate
        self._lease = lease
        self.every = every
        self.grace = grace
        self.batch = batch
        self.deletes_delivered = deletes_delivered
        """False: rows delivered by their writer are left to the adapter to delete inside
        the next transaction that writes (:meth:`take_delivered`) instead of by this relay's
        thread. SQLite locks the whole database for a write: a DELETE of the relay's own
        would make another connection's transaction that read and then writes fail with
        "database is locked" (its lock cannot be upgraded)."""
        self.relayed = 0
        """Rows this relay delivered (and deleted) for transactions that could not."""
        self._done: list[str] = []  # rows delivered after their commit, to delete
        self._done_lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def delivered(self, row_id: str) -> None:
        """The transaction that wrote row ``row_id`` delivered its invalidation itself: the
        row goes with the next relay, in one DELETE with the others."""
        with self._done_lock:
            self._done.append(row_id)

    def take_delivered(self) -> list[str]:
        """Up to :attr:`batch` rows delivered by their writers, for the adapter to delete in
        the transaction it is writing; they stay known as delivered (never relayed again)
        until :meth:`forget` says that transaction committed."""
        with self._done_lock:
            return self._done[: self.batch]

    def forget(self, row_ids: Sequence[str]) -> None:
        """Rows :meth:`take_delivered` gave were deleted by a transaction that committed."""
        gone = set(row_ids)
        with self._done_lock:
            self._done = [row_id for row_id in self._done if row_id not in gone]

    def backlog(self) -> OutboxBacklog:
        """The rows waiting in the table, but those this process knows were delivered (up
        to :attr:`batch` of them: on SQLite they wait there for the app's next write, see
        :attr:`deletes_delivered`), and the oldest one's age. A healthy outbox's oldest row
        is younger than about :data:`RELAY_GRACE` + :data:`RELAY_EVERY` (3 s): older means
        writers cannot reach the cache, or no process of the app relays. Raises what the
        store raises (the database is down): the caller decides what that shows."""
        rows, oldest = self._store.waiting(self.take_delivered())
        age = None if oldest is None else max(0.0, time.time() - oldest)
        return OutboxBacklog(rows, age)

    def _delete_delivered(self) -> None:
        with self._done_lock:
            done, self._done = self._done, []
        for start in range(0, len(done), self.batch):
            try:
                self._store.delete(done[start : start + self.batch])
            except Exception:  # left in the table: a relayer delivers it again, harmlessly
                logger.warning("cacheplug: outbox rows not deleted", exc_info=True)

    def relay_once(self, *, grace: float | None = None) -> int:
        """Deliver the rows due now (those older than ``grace`` seconds, default
        :attr:`grace`), if this process holds the lease; how many were delivered. Never
        raises: a database or cache that is down is logged and tried again next time."""
        if self.deletes_delivered:
            self._delete_delivered()
        try:
            lease = self._lease()
            if not lease.acquire():
                return 0
        except Exception:
            logger.warning("cacheplug: outbox relay: no lease (cache unreachable?)", exc_info=True)
            return 0
        try:
            return self._deliver(time.time() - (self.grace if grace is None else grace))
        except Exception:
            logger.warning("cacheplug: outbox relay failed; retrying", exc_info=True)
            return 0
        finally:
            try:
                lease.release()
            except Exception:  # expired or unreachable: it times out by itself
                logger.debug("cacheplug: outbox relay lease not released", exc_info=True)

    def _deliver(self, written_before: float) -> int:
        done = 0
        while not self._stopped.is_set():
            rows = self._store.due(written_before, self.batch)
            with self._done_lock:
                known = set(self._done)  # delivered, waiting for a writer to delete them
            rows = [row for row in rows if row[0] not in known]
            if not rows:
                break
            tags = sorted({tag for _, tags_json in rows for tag in parse_tags(tags_json)})
            if not self._invalidate(tags):
                break  # kept: the next relay tries again
            self._store.delete([row_id for row_id, _ in rows])
            done += len(rows)
            self.relayed += len(rows)
            if len(rows) < self.batch:
                break
        return done

    def start(self) -> None:
        """Relay on a daemon thread: once at once (whatever a dead process left), then every
        :attr:`every` seconds, until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="cacheplug-outbox", daemon=True)
        self._thread.start()
        # A daemon thread dies with the interpreter, mid-relay maybe, its lease still held:
        # stop it first (the relay in hand finishes and lets the lease go).
        atexit.register(self.stop, 1.0)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self.relay_once()
            self._stopped.wait(self.every)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop relaying; rows delivered but not deleted yet are deleted now."""
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        self._delete_delivered()


def cache_relay(
    store: OutboxStore,
    cache: Any,
    database: str,
    *,
    deletes_delivered: bool = True,
    edge: Callable[[], EdgeQueue | None] = NoEdge,
) -> OutboxRelay:
    """The relay of one database's outbox into ``cache``: rows count as delivered once
    nothing is left pending (:func:`landed_invalidation`), and one process of the app at a
    time relays that database (a lease named after it, through :meth:`~cacheplug.Cache.lock`;
    ``database`` must name it alike in every process, and never with a password).
    ``deletes_delivered``: see :attr:`OutboxRelay.deletes_delivered` (False for SQLite).
    ``edge``: the adapter's edge purges, if any: a row is delivered once they are sent."""
    return OutboxRelay(
        store,
        landed_invalidation(cache, edge),
        lambda: cache.lock("outbox-relay:" + database, timeout=RELAY_LEASE, blocking=False),
        deletes_delivered=deletes_delivered,
    )
