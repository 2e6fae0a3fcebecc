"""The outbox for Django (see ``cacheplug.integration``'s outbox): the relay's queries on the
table (``cacheplug_django.models.OutboxEntry``) of one database alias, and what the ORM hooks
write to it inside each transaction."""

from __future__ import annotations

import logging
import re
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Final

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Min

from cacheplug.integration import (
    OUTBOX_TABLE,
    EdgeQueue,
    NoEdge,
    OutboxRelay,
    OutboxRow,
    deliver_after_edge,
    outbox_write,
)

logger = logging.getLogger("cacheplug_django")

# A statement PostgreSQL takes after a WITH of its own (one that has a WITH already is left).
_FOLDABLE: Final = re.compile(r"\s*(INSERT|UPDATE|DELETE)\s", re.IGNORECASE)
_INSERT: Final = f"INSERT INTO {OUTBOX_TABLE} (id, tags, created_at) VALUES (%s, %s, %s)"
# A later write of a table not seen yet: the row, whether a rolled-back savepoint took it
# or not (an ON CONFLICT costs the first write 2 %: it is kept for this one).
_UPSERT: Final = f"{_INSERT} ON CONFLICT (id) DO UPDATE SET tags = EXCLUDED.tags"


class DjangoOutbox:
    """:class:`cacheplug.integration.OutboxStore` on database ``alias``."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    def due(self, written_before: float, limit: int) -> Sequence[tuple[str, str]]:
        from cacheplug_django.models import OutboxEntry

        rows = (
            OutboxEntry.objects.using(self.alias)
            .filter(created_at__lt=written_before)
            .order_by("created_at")
            .values_list("id", "tags")[:limit]
        )
        return list(rows)

    def delete(self, ids: Sequence[str]) -> None:
        from cacheplug_django.models import OutboxEntry

        OutboxEntry.objects.using(self.alias).filter(id__in=list(ids)).delete()

    def waiting(self, excluding: Sequence[str]) -> tuple[int, float | None]:
        from cacheplug_django.models import OutboxEntry

        connection = connections[self.alias]
        opened_here = connection.connection is None
        try:
            found = (
                OutboxEntry.objects.using(self.alias)
                .exclude(id__in=list(excluding))
                .aggregate(rows=Count("id"), oldest=Min("created_at"))
            )
        finally:
            # Asked from a thread of its own (a Prometheus scrape served by
            # prometheus_client's HTTP server), where nothing else would close it.
            if opened_here and not connection.in_atomic_block:
                connection.close()
        return found["rows"], found["oldest"]

    def exists(self) -> bool:
        """True when the database has the outbox table (``migrate`` created it)."""
        with connections[self.alias].cursor() as cursor:
            return OUTBOX_TABLE in connections[self.alias].introspection.table_names(cursor)


class OutboxWrites:
    """What the ORM hooks put in the outbox, per connection: the open transaction's row
    (inserted at its first write, updated for a table not seen yet), and, after the commit,
    the row handed to the relay to delete once its invalidation landed."""

    def __init__(
        self,
        enabled: Callable[[], bool],
        relay_for: Callable[[str], OutboxRelay | None],
        edge: Callable[[], EdgeQueue | None] = NoEdge,
    ) -> None:
        self._enabled = enabled
        self._relay_for = relay_for
        self._edge = edge  # a row goes once the edge is purged too
        self._rows: weakref.WeakKeyDictionary[BaseDatabaseWrapper, OutboxRow] = (
            weakref.WeakKeyDictionary()
        )
        self._tables: dict[str, tuple[bool, float]] = {}  # alias -> (table there, checked at)
        # Delivered rows the open transaction deletes (SQLite), per connection.
        self._deleting: weakref.WeakKeyDictionary[BaseDatabaseWrapper, list[str]] = (
            weakref.WeakKeyDictionary()
        )

    def active(self, connection: BaseDatabaseWrapper) -> bool:
        """True when writes through ``connection`` go to the outbox: the setting is on and
        its database has the table (looked up once; a missing one again after a second, and
        after every ``migrate``)."""
        if not self._enabled():
            return False
        found = self._tables.get(connection.alias)
        if found is not None and (found[0] or time.monotonic() - found[1] < 1.0):
            return found[0]
        try:
            there = OUTBOX_TABLE in connection.introspection.table_names()
        except Exception:  # a database that cannot say: no outbox, and say why once
            logger.warning("cacheplug: cannot look for the outbox table", exc_info=True)
            there = False
        self._tables[connection.alias] = (there, time.monotonic())
        return there

    def forget_tables(self, **_: object) -> None:
        """Look for the table again (``migrate`` just ran: it may have made it)."""
        self._tables.clear()

    def record(self, connection: BaseDatabaseWrapper, tags: list[str]) -> None:
        """Put ``tags`` in the open transaction's row (inside the transaction)."""
        row = self._rows.get(connection)
        if row is None:
            row = self._rows[connection] = OutboxRow()
        write = outbox_write(row, tags)
        if write is None:
            return
        with connection.cursor() as cursor:
            if not write.insert:
                cursor.execute(
                    f"UPDATE {OUTBOX_TABLE} SET tags = %s WHERE id = %s",
                    [write.tags_json, write.id],
                )
                if cursor.rowcount == 1:
                    return
                # Gone with a rolled-back transaction or savepoint: a fresh row, all of it.
                row.stored = False
                write = outbox_write(row, ())
                assert write is not None  # stored was False: an insert
            cursor.execute(_INSERT, [write.id, write.tags_json, write.created_at])
            self._delete_delivered(connection, cursor)

    def _delete_delivered(self, connection: BaseDatabaseWrapper, cursor: Any) -> None:
        """SQLite: the rows delivered since go in this transaction (see
        :attr:`cacheplug.integration.OutboxRelay.deletes_delivered`); forgotten by the relay
        once it commits."""
        relay = self._relay_for(connection.alias)
        if relay is None or relay.deletes_delivered:
            return
        done = relay.take_delivered()
        if done:
            marks = ", ".join(["%s"] * len(done))
            cursor.execute(f"DELETE FROM {OUTBOX_TABLE} WHERE id IN ({marks})", done)
            # The last DELETE of a transaction covers its earlier ones (what it took is still
            # known, so taken again), and replaces what a rolled-back one left here.
            self._deleting[connection] = done

    def fold(
        self,
        connection: BaseDatabaseWrapper,
        tags: Sequence[str],
        sql: str,
        params: Any,
        many: bool,
        autocommitted: bool,
    ) -> tuple[str, Any, OutboxRow] | None:
        """On PostgreSQL, ``sql`` (an INSERT, UPDATE or DELETE) with the row's write in front
        of it as a data-modifying ``WITH``: the row goes in with the statement, in its
        transaction, with no round trip more (a statement of its own costs a round trip:
        ``benchmarks/outbox_cost.py``). An autocommitted statement gets a row of its own, so
        the two commit together (``autocommitted``: the connection is outside ``atomic()`` and
        in autocommit mode). None where that cannot be done (another database, a statement
        of another shape, ``executemany``): the row is written on its own."""
        if (
            connection.vendor != "postgresql"
            or many
            or not isinstance(params, (list, tuple))
            or not _FOLDABLE.match(sql)
        ):
            return None
        if connection.in_atomic_block:
            row = self._rows.get(connection)
            if row is None:
                row = self._rows[connection] = OutboxRow()
        elif autocommitted:
            row = OutboxRow()
        else:
            return None  # manual transaction management: no commit hook, no outbox
        write = outbox_write(row, tags)
        if write is None:
            return sql, params, row
        return (
            f"WITH cacheplug_outbox_write AS ({_INSERT if write.insert else _UPSERT}) {sql}",
            [write.id, write.tags_json, write.created_at, *params],
            row,
        )

    def fold_failed(self, connection: BaseDatabaseWrapper, row: OutboxRow) -> None:
        """The statement a row was folded into failed: the row is not in the transaction."""
        row.stored = False

    def insert_now(self, connection: BaseDatabaseWrapper, tags: Sequence[str]) -> str:
        """A row of its own for an autocommitted write about to run, committed before it
        runs (with the deletes of delivered rows, on SQLite); its id."""
        write = outbox_write(OutboxRow(), tags)
        assert write is not None  # a fresh row: an insert
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(_INSERT, [write.id, write.tags_json, write.created_at])
            self._delete_delivered(connection, cursor)
        self._forget_deleted(connection)
        return write.id

    def _forget_deleted(self, connection: BaseDatabaseWrapper) -> None:
        done = self._deleting.pop(connection, None)
        relay = self._relay_for(connection.alias) if done else None
        if done and relay is not None:
            relay.forget(done)

    def delivered_now(self, connection: BaseDatabaseWrapper, row_id: str, landed: bool) -> None:
        """The autocommitted write ran and its invalidation was sent."""
        if landed:
            relay = self._relay_for(connection.alias)
            if relay is not None:
                deliver_after_edge(relay, row_id, self._edge)

    def rolled_back_to_savepoint(self, connection: BaseDatabaseWrapper) -> None:
        """A savepoint was rolled back: the row may have gone with it."""
        row = self._rows.get(connection)
        if row is not None:
            row.stored = False

    def committed(self, connection: BaseDatabaseWrapper, landed: bool) -> None:
        """The transaction committed and its invalidation was sent: the row goes (later, with
        others) if it ``landed``; else it stays for a relayer."""
        self._forget_deleted(connection)
        row = self._rows.pop(connection, None)
        if row is None or not row.stored or not landed:
            return
        relay = self._relay_for(connection.alias)
        if relay is not None:
            deliver_after_edge(relay, row.id, self._edge)
