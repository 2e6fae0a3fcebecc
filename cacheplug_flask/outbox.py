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
from collections.abc import Callable, Sequence
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.orm import Session

from cacheplug.integration import (
    OUTBOX_TABLE,
    EdgeQueue,
    NoEdge,
    OutboxRelay,
    OutboxRow,
    cache_relay,
    deliver_after_edge,
    outbox_write,
)

logger = logging.getLogger("cacheplug_flask")


def outbox_table(metadata: MetaData) -> Table:
    """The ``cacheplug_outbox`` table in ``metadata`` (made once; the same one afterwards)."""
    existing = metadata.tables.get(OUTBOX_TABLE)
    if existing is not None:
        return existing
    table = Table(
        OUTBOX_TABLE,
        metadata,
        Column("id", String(32), primary_key=True),
        Column("tags", Text, nullable=False),
        Column("created_at", Float, nullable=False, index=True),
    )
    event.listen(table, "after_create", _table_created)
    return table


_created: list[int] = [0]  # tables made through outbox_table() in this process (create_all)


def _table_created(*_: object, **__: object) -> None:
    # A database that had no table an instant ago may have one now: look again.
    _created[0] += 1


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

    def waiting(self, excluding: Sequence[str]) -> tuple[int, float | None]:
        table = self.table
        query = select(func.count(), func.min(table.c.created_at)).where(
            ~table.c.id.in_(list(excluding))
        )
        with self.engine.connect() as connection:
            rows, oldest = connection.execute(query).one()
        return int(rows), None if oldest is None else float(oldest)


_OUTBOX = outbox_table(MetaData())
_DELETING = "cacheplug_outbox_deleting"  # session.info: delivered rows the transaction deletes


class SessionOutbox:
    """The outbox rows of the hooked sessions (see ``cacheplug_flask.outbox``): written into
    each transaction's bind, if it has the table, and handed to that database's relay (into
    ``cache``, started on first use) once delivered. ``owner``: write rows only for sessions
    used by this app (Flask-SQLAlchemy's ``db.session`` serves whichever app is current;
    without an app context, every session counts)."""

    def __init__(
        self,
        cache: Any,
        owner: object | None = None,
        edge: Callable[[], EdgeQueue | None] = NoEdge,
    ) -> None:
        self._cache = cache
        self._owner = owner
        self._edge = edge  # a row goes once the edge is purged too
        self._relays: dict[int, OutboxRelay] = {}
        self._named: dict[str, OutboxRelay] = {}  # the same relays, by database name
        self._relays_lock = threading.Lock()
        # id(engine) -> (there, checked at, _created then)
        self._tables: dict[int, tuple[bool, float, int]] = {}

    def relay_for(self, engine: Engine) -> OutboxRelay:
        """The relay of ``engine``'s database, started on first use."""
        with self._relays_lock:
            relay = self._relays.get(id(engine))
            if relay is None:
                name = engine.url.render_as_string(hide_password=True)
                # SQLite locks the database for a write: delivered rows go with the next one.
                sqlite = engine.dialect.name == "sqlite"
                relay = cache_relay(
                    SqlAlchemyOutbox(engine),
                    self._cache,
                    name,
                    deletes_delivered=not sqlite,
                    edge=self._edge,
                )
                self._relays[id(engine)] = relay
                self._named[name] = relay
                relay.start()
        return relay

    def relay_left_over(self, engines: Sequence[Engine]) -> threading.Thread:
        """Start the relays of those of ``engines`` whose database has the table, on a
        thread (looking for it is a query), for what a process that died left there. An
        in-memory SQLite database dies with its process: nothing to relay."""

        def start() -> None:
            for engine in engines:
                if engine.url.database in (None, "", ":memory:"):
                    continue
                if self._active(engine):
                    self.relay_for(engine)
                else:
                    logger.warning(
                        "cacheplug: the outbox is on (CACHEPLUG_OUTBOX) but %s has no %s table: "
                        "a write whose invalidation cannot reach the cache is lost if its "
                        "process dies. Add cacheplug_flask.outbox.outbox_table(db.metadata) and "
                        "create it (create_all() or an Alembic migration), or set "
                        "CACHEPLUG_OUTBOX = False to silence this.",
                        engine.url.render_as_string(hide_password=True),
                        OUTBOX_TABLE,
                    )

        thread = threading.Thread(target=start, name="cacheplug-outbox-start", daemon=True)
        thread.start()
        return thread

    def relays(self) -> dict[str, OutboxRelay]:
        """The relays started so far, by database (its URL, password hidden: the name
        :func:`~cacheplug.integration.cache_relay` got)."""
        with self._relays_lock:
            return dict(self._named)

    def stop(self) -> None:
        """Stop every relay (the rows they still hold wait for another process)."""
        with self._relays_lock:
            relays, self._relays, self._named = list(self._relays.values()), {}, {}
        for relay in relays:
            relay.stop()

    def _owns(self) -> bool:
        if self._owner is None or not has_app_context():
            return True
        return current_app._get_current_object() is self._owner  # type: ignore[attr-defined]

    def _active(self, engine: Engine, connection: Connection | None = None) -> bool:
        """Whether ``engine``'s database has the table: looked up once; a missing one again
        after a second, or as soon as this process created one (``create_all()``). Inside a
        transaction, looked up through its ``connection``: another connection of the engine's
        could be the same one (an in-memory SQLite database's static pool), and giving it back
        rolls it back."""
        found = self._tables.get(id(engine))
        if found is not None and (
            found[0] or (time.monotonic() - found[1] < 1.0 and found[2] == _created[0])
        ):
            return found[0]
        try:
            there = inspect(connection if connection is not None else engine).has_table(
                OUTBOX_TABLE
            )
        except Exception:
            logger.warning("cacheplug: cannot look for the outbox table", exc_info=True)
            there = False
        self._tables[id(engine)] = (there, time.monotonic(), _created[0])
        return there

    def write(self, session: Session, tags: list[str]) -> str | None:
        if not self._owns():
            return None
        engine = session.get_bind()
        if not isinstance(engine, Engine) or not self._active(engine, session.connection()):
            return None
        write = outbox_write(OutboxRow(), tags)
        if write is None:
            return None
        session.execute(
            insert(_OUTBOX).values(id=write.id, tags=write.tags_json, created_at=write.created_at)
        )
        relay = self.relay_for(engine)
        if not relay.deletes_delivered:
            # SQLite: the rows delivered since go in this transaction (see
            # cacheplug.integration.OutboxRelay.deletes_delivered), forgotten once it commits.
            done = relay.take_delivered()
            if done:
                session.execute(delete(_OUTBOX).where(_OUTBOX.c.id.in_(done)))
            session.info[_DELETING] = done
        return write.id

    def delivered(self, session: Session, row_id: str, held: bool) -> None:
        """The transaction of row ``row_id`` committed and its invalidation was sent: the row
        goes, unless the invalidation was ``held`` (it raised) or the cache queued it (the
        store did not take it); then it stays for a relayer."""
        engine = session.get_bind()
        if not isinstance(engine, Engine):
            return
        relay = self.relay_for(engine)
        relay.forget(session.info.pop(_DELETING, ()))
        try:
            if held or self._cache.pending_invalidations():
                return
        except Exception:
            return
        deliver_after_edge(relay, row_id, self._edge)
