"""The outbox table for SQLAlchemy applications (see ``cacheplug.integration``'s outbox).

Add it to your metadata so that ``create_all()`` or an Alembic autogenerate creates it::

    from cacheplug_flask.outbox import outbox_table

    outbox_table(db.metadata)      # Flask-SQLAlchemy; or your own MetaData()

With the table present, each transaction of the hooked sessions inserts the tables it wrote
into it before committing, so a write whose invalidation could not reach the cache is
delivered later by any process of the app.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import (
    Column,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
)
from sqlalchemy.orm import Session

from cacheplug.integration import OUTBOX_TABLE, OutboxRelay, OutboxRow, cache_relay, outbox_write

logger = logging.getLogger("cacheplug_flask")


def outbox_table(metadata: MetaData) -> Table:
    """The ``cacheplug_outbox`` table in ``metadata`` (made once; the same one afterwards)."""
    existing = metadata.tables.get(OUTBOX_TABLE)
    if existing is not None:
        return existing
    return Table(
        OUTBOX_TABLE,
        metadata,
        Column("id", String(32), primary_key=True),
        Column("tags", Text, nullable=False),
        Column("created_at", Float, nullable=False, index=True),
    )


class SqlAlchemyOutbox:
    """The relay's queries (:class:`cacheplug.integration.OutboxStore`) on ``engine``, each
    in a transaction of its own."""

    def __init__(self, engine: Engine, table: Table | None = None) -> None:
        self.engine = engine
        self.table = table if table is not None else outbox_table(MetaData())

    def due(self, written_before: float, limit: int) -> Sequence[tuple[str, str]]:
        table = self.table
        query = (
            select(table.c.id, table.c.tags)
            .where(table.c.created_at < written_before)
            .order_by(table.c.created_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [(row_id, tags) for row_id, tags in connection.execute(query)]

    def delete(self, ids: Sequence[str]) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(self.table).where(self.table.c.id.in_(list(ids))))


_OUTBOX = outbox_table(MetaData())


class SessionOutbox:
    """The outbox rows of the hooked sessions (see ``cacheplug_flask.outbox``): written into
    each transaction's bind, if it has the table, and handed to that database's relay (into
    ``cache``, started on first use) once delivered. ``owner``: write rows only for sessions
    used by this app (Flask-SQLAlchemy's ``db.session`` serves whichever app is current;
    without an app context, every session counts)."""

    def __init__(self, cache: Any, owner: object | None = None) -> None:
        self._cache = cache
        self._owner = owner
        self._relays: dict[int, OutboxRelay] = {}
        self._relays_lock = threading.Lock()
        self._tables: dict[int, tuple[bool, float]] = {}  # id(engine) -> (there, checked at)

    def relay_for(self, engine: Engine) -> OutboxRelay:
        """The relay of ``engine``'s database, started on first use."""
        with self._relays_lock:
            relay = self._relays.get(id(engine))
            if relay is None:
                name = engine.url.render_as_string(hide_password=True)
                relay = cache_relay(SqlAlchemyOutbox(engine), self._cache, name)
                self._relays[id(engine)] = relay
                relay.start()
        return relay

    def relay_left_over(self, engines: Sequence[Engine]) -> None:
        """Start the relays of those of ``engines`` whose database has the table, on a
        thread (looking for it is a query), for what a process that died left there. An
        in-memory SQLite database dies with its process: nothing to relay."""

        def start() -> None:
            for engine in engines:
                if engine.url.database not in (None, "", ":memory:") and self._active(engine):
                    self.relay_for(engine)

        threading.Thread(target=start, name="cacheplug-outbox-start", daemon=True).start()

    def stop(self) -> None:
        """Stop every relay (the rows they still hold wait for another process)."""
        with self._relays_lock:
            relays, self._relays = list(self._relays.values()), {}
        for relay in relays:
            relay.stop()

    def _owns(self) -> bool:
        if self._owner is None or not has_app_context():
            return True
        return current_app._get_current_object() is self._owner  # type: ignore[attr-defined]

    def _active(self, engine: Engine) -> bool:
        found = self._tables.get(id(engine))
        if found is not None and (found[0] or time.monotonic() - found[1] < 1.0):
            return found[0]
        try:
            there = inspect(engine).has_table(OUTBOX_TABLE)
        except Exception:
            logger.warning("cacheplug: cannot look for the outbox table", exc_info=True)
            there = False
        self._tables[id(engine)] = (there, time.monotonic())
        return there

    def write(self, session: Session, tags: list[str]) -> str | None:
        if not self._owns():
            return None
        engine = session.get_bind()
        if not isinstance(engine, Engine) or not self._active(engine):
            return None
        write = outbox_write(OutboxRow(), tags)
        if write is None:
            return None
        session.execute(
            insert(_OUTBOX).values(id=write.id, tags=write.tags_json, created_at=write.created_at)
        )
        return write.id

    def delivered(self, session: Session, row_id: str, held: bool) -> None:
        """The transaction of row ``row_id`` committed and its invalidation was sent: the row
        goes, unless the invalidation was ``held`` (it raised) or the cache queued it (the
        store did not take it); then it stays for a relayer."""
        try:
            if held or self._cache.pending_invalidations():
                return
        except Exception:
            return
        engine = session.get_bind()
        if isinstance(engine, Engine):
            self.relay_for(engine).delivered(row_id)
