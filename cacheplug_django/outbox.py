"""The outbox for Django (see ``cacheplug.integration``'s outbox): the relay's queries on the
table (``cacheplug_django.models.OutboxEntry``) of one database alias, and what the ORM hooks
write to it inside each transaction."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Sequence

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from cacheplug.integration import OUTBOX_TABLE, OutboxRelay, OutboxRow, outbox_write

logger = logging.getLogger("cacheplug_django")


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
    ) -> None:
        self._enabled = enabled
        self._relay_for = relay_for
        self._rows: weakref.WeakKeyDictionary[BaseDatabaseWrapper, OutboxRow] = (
            weakref.WeakKeyDictionary()
        )
        self._tables: dict[str, tuple[bool, float]] = {}  # alias -> (table there, checked at)

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
            cursor.execute(
                f"INSERT INTO {OUTBOX_TABLE} (id, tags, created_at) VALUES (%s, %s, %s)",
                [write.id, write.tags_json, write.created_at],
            )

    def insert_now(self, connection: BaseDatabaseWrapper, tags: list[str]) -> str:
        """A row of its own for an autocommitted write about to run; its id."""
        write = outbox_write(OutboxRow(), tags)
        assert write is not None  # a fresh row: an insert
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {OUTBOX_TABLE} (id, tags, created_at) VALUES (%s, %s, %s)",
                [write.id, write.tags_json, write.created_at],
            )
        return write.id

    def delivered_now(self, connection: BaseDatabaseWrapper, row_id: str, landed: bool) -> None:
        """The autocommitted write ran and its invalidation was sent."""
        if landed:
            relay = self._relay_for(connection.alias)
            if relay is not None:
                relay.delivered(row_id)

    def rolled_back_to_savepoint(self, connection: BaseDatabaseWrapper) -> None:
        """A savepoint was rolled back: the row may have gone with it."""
        row = self._rows.get(connection)
        if row is not None:
            row.stored = False

    def committed(self, connection: BaseDatabaseWrapper, landed: bool) -> None:
        """The transaction committed and its invalidation was sent: the row goes (later, with
        others) if it ``landed``; else it stays for a relayer."""
        row = self._rows.pop(connection, None)
        if row is None or not row.stored or not landed:
            return
        relay = self._relay_for(connection.alias)
        if relay is not None:
            relay.delivered(row.id)
