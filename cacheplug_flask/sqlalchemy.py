"""SQLAlchemy writes -> invalidations, after the transaction commits.

Hooks on a ``Session`` class, a ``sessionmaker``, a ``scoped_session`` or Flask-SQLAlchemy's
``db.session``:

- ``after_flush``: the instances added, changed and deleted give their rows' tags and their
  tables' tags;
- ``do_orm_execute``: ``insert``/``update``/``delete`` statements run through the session (ORM
  bulk ``update(Model)``, Core statements on mapped tables, ``text()`` SQL) give their tables'
  tags, and the "rows unknown" tag for an update or delete;
- ``after_commit`` invalidates what the transaction collected; ``after_rollback`` forgets it.

And on the engines (those of Flask-SQLAlchemy's ``db``, a ``sessionmaker``'s bind, an
``Engine`` given directly, and any a session is seen using), ``before_cursor_execute`` reads
every statement's target tables with the core's SQL parser. That reaches what the session
events do not: Core writes on a connection of one's own (``engine.begin()``) and the session's
``bulk_*_mappings``. A session's own flush is left to the instance tags above. A connection
outside any session has no "after commit" event: its writes are invalidated at its commit, and
again two seconds later, for a reader that reloaded the old rows in between.

A statement that cannot be classified as a read (``CALL``, ``DO``, ``EXECUTE``, ...) may have
written anything: it invalidates every table (``db:*``), unless ``CACHEPLUG_UNKNOWN_SQL`` is
``"ignore"``.

A savepoint collects on its own: released, its writes join its parent's; rolled back, they
are forgotten (the rows are as they were). Until the commit, reads through the extension that
depend on what the session wrote bypass the cache (:func:`pending_covers`).

The invalidation after a commit never raises into the committing code: a store that is
down, or any other cache failure, is logged and counted, and the invalidation is kept until
it can be applied (:class:`cacheplug.integration.AfterCommit`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, Engine, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

from cacheplug.integration import (
    AGAIN_AFTER,
    OUTBOX_TABLE,
    AfterCommit,
    DeferredInvalidations,
    WriteParser,
    any_row_tag,
    capturing,
    table_tag,
)
from cacheplug_flask.model_tags import instance_tags, read_recorder, statement_tags
from cacheplug_flask.outbox import SessionOutbox

logger = logging.getLogger("cacheplug_flask")
_INFO_KEY = "cacheplug_pending"
_parser = WriteParser(lambda table: None)  # text() SQL: tables only, rows unknown


Invalidate = Callable[[list[str], "float | None"], None]


class SessionHooks:
    """Collects tags per session and hands them to ``invalidate`` after each commit. Each
    hooks object keeps its own collection in ``session.info``: several apps (or caches) may
    listen to one session factory. ``every_table``: whether a statement that cannot be
    classified as a read invalidates every table (``CACHEPLUG_UNKNOWN_SQL``)."""

    def __init__(
        self,
        invalidate: Invalidate,
        every_table: bool = True,
        outbox: SessionOutbox | None = None,
    ) -> None:
        self._invalidate = invalidate
        self.outbox = outbox
        self._unknown_sql: Callable[[], bool] = lambda: every_table
        self.committed = AfterCommit()
        """The after-commit invalidations: failures counted, what could not be applied held."""
        self._info_key = (_INFO_KEY, id(self))
        self._lock = threading.Lock()
        self._engines: weakref.WeakSet[Engine] = weakref.WeakSet()
        self._targets: list[Any] = []  # what install() listens on
        self._session_of: weakref.WeakKeyDictionary[Connection, Session] = (
            weakref.WeakKeyDictionary()
        )
        self._own: weakref.WeakKeyDictionary[Connection, DeferredInvalidations] = (
            weakref.WeakKeyDictionary()
        )

    def install(self, target: Any) -> None:
        """Listen on ``target``: a Session class, sessionmaker, scoped_session, or
        Flask-SQLAlchemy's ``db`` (its ``session``), or an ``Engine`` (its writes alone)."""
        if isinstance(target, Engine):
            self.watch(target)
            return
        target = getattr(target, "session", target)
        for name, listener in self._session_listeners():
            event.listen(target, name, listener)
        self._targets.append(target)
        factory = getattr(target, "session_factory", target)  # a scoped_session's
        bind = getattr(factory, "kw", {}).get("bind")
        if isinstance(bind, Engine):
            self.watch(bind)

    def _session_listeners(self) -> list[tuple[str, Callable[..., None]]]:
        return [
            ("after_begin", self._after_begin),
            ("before_flush", self._before_flush),
            ("after_flush", self._after_flush),
            ("after_flush_postexec", self._after_flush_postexec),
            ("do_orm_execute", self._do_orm_execute),
            ("before_commit", self._before_commit),
            ("after_commit", self._after_commit),
            ("after_rollback", self._after_rollback),
            ("after_transaction_end", self._after_transaction_end),
            ("after_soft_rollback", self._after_soft_rollback),
        ]

    def _engine_listeners(self) -> list[tuple[str, Callable[..., None]]]:
        return [
            ("before_cursor_execute", self._before_cursor_execute),
            ("commit", self._connection_commit),
            ("rollback", self._connection_rollback),
        ]

    def uninstall(self) -> None:
        """Stop listening (the app closed: a module-level session outlives it), and stop the
        outbox relays."""
        for target in self._targets:
            for name, listener in self._session_listeners():
                if event.contains(target, name, listener):
                    event.remove(target, name, listener)
        self._targets.clear()
        with self._lock:
            engines, self._engines = list(self._engines), weakref.WeakSet()
        for engine in engines:
            for name, listener in self._engine_listeners():
                if event.contains(engine, name, listener):
                    event.remove(engine, name, listener)
        if self.outbox is not None:
            self.outbox.stop()

    def engines(self) -> list[Engine]:
        """The engines watched so far."""
        with self._lock:
            return list(self._engines)

    def watch(self, engine: Engine) -> None:
        """Read the writes of every statement ``engine`` runs (once per engine)."""
        with self._lock:
            if engine in self._engines:
                return
            self._engines.add(engine)
        for name, listener in self._engine_listeners():
            event.listen(engine, name, listener)

    # -- engines -----------------------------------------------------------------------------

    def _after_begin(
        self, session: Session, transaction: SessionTransaction, connection: Connection
    ) -> None:
        self.watch(connection.engine)
        with self._lock:
            self._session_of[connection] = session
        session.info.setdefault((self._info_key, "connections"), []).append(connection)

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:
            layer = session.info.get((self._info_key, "savepoints"), {}).pop(transaction, None)
            if layer:
                session.info.setdefault((self._info_key, "ended"), {})[transaction] = layer
            return
        if transaction.parent is not None:
            return
        connections = session.info.pop((self._info_key, "connections"), ())
        with self._lock:
            for connection in connections:
                if self._session_of.get(connection) is session:
                    del self._session_of[connection]

    def _before_cursor_execute(
        self,
        connection: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if not executemany and capturing():  # a loader's reads (depends_on="auto")
            read_recorder.seen(statement, parameters)
        try:
            writes = _parser.writes(statement, None, False, self._unknown_sql)
        except Exception:  # a statement the parser cannot read must never break a query
            logger.exception("cacheplug: could not read a statement's writes")
            return
        tags = statement_tags(writes)
        if not tags:
            return
        session = self._session_of.get(connection)
        if session is not None:
            if not session.info.get((self._info_key, "flushing")):
                self._pending(session).add(tags)  # bulk_*_mappings, say
            return
        with self._lock:
            pending = self._own.get(connection)
            if pending is None:
                pending = self._own[connection] = DeferredInvalidations()
        pending.add(tags)

    def _connection_commit(self, connection: Connection) -> None:
        with self._lock:
            pending = self._own.pop(connection, None)
        if pending:
            # Called before the database commits: again later for a reader in between.
            self.committed.run(lambda: self._invalidate, pending.drain(), AGAIN_AFTER)

    def _connection_rollback(self, connection: Connection) -> None:
        with self._lock:
            self._own.pop(connection, None)

    # -- sessions ----------------------------------------------------------------------------

    def _before_flush(
        self, session: Session, flush_context: UOWTransaction, instances: Any
    ) -> None:
        session.info[(self._info_key, "flushing")] = True

    def _pending(self, session: Session) -> DeferredInvalidations:
        """Where the writes of ``session``'s innermost transaction are collected: a savepoint
        has a collection of its own, merged into its parent's when it is released and
        forgotten when it is rolled back."""
        self._settle(session)
        nested = session.get_nested_transaction()
        if nested is not None:
            layers = session.info.setdefault((self._info_key, "savepoints"), {})
            layer: DeferredInvalidations | None = layers.get(nested)
            if layer is None:
                layer = layers[nested] = DeferredInvalidations()
            return layer
        pending = session.info.get(self._info_key)
        if pending is None:
            pending = session.info[self._info_key] = DeferredInvalidations()
        return pending

    def _settle(self, session: Session) -> None:
        """Merge the collections of savepoints released since into their parents'. (Ended
        savepoints wait here: SQLAlchemy tells a rollback only after the end.)"""
        ended = session.info.get((self._info_key, "ended"))
        if not ended:
            return
        layers = session.info.setdefault((self._info_key, "savepoints"), {})
        for transaction, layer in list(ended.items()):
            del ended[transaction]
            parent = transaction.parent
            if parent is not None and parent.nested:
                target = ended.get(parent) or layers.get(parent)
                if target is None:
                    target = layers[parent] = DeferredInvalidations()
            else:
                target = session.info.get(self._info_key)
                if target is None:
                    target = session.info[self._info_key] = DeferredInvalidations()
            target.add(layer.drain())

    def _after_soft_rollback(self, session: Session, previous: SessionTransaction) -> None:
        if previous.nested:
            # A savepoint rolled back: its writes are undone, nothing to invalidate for them.
            session.info.get((self._info_key, "ended"), {}).pop(previous, None)

    def _after_flush(self, session: Session, flush_context: UOWTransaction) -> None:
        session.info.pop((self._info_key, "flushing"), None)
        tags: list[str] = []
        session.info[(self._info_key, "new")] = list(session.new)
        try:
            for instance in [*session.new, *session.dirty, *session.deleted]:
                tags += instance_tags(instance)
        except Exception:  # a mapping the hooks cannot read must never break a flush
            logger.exception("cacheplug: no tags for a flush")
        self._pending(session).add(tags)

    def _after_flush_postexec(self, session: Session, flush_context: UOWTransaction) -> None:
        # Objects just inserted have their keys only now: a cached miss for one is stale.
        created = session.info.pop((self._info_key, "new"), ())
        tags: list[str] = []
        try:
            for instance in created:
                tags += instance_tags(instance)
        except Exception:
            logger.exception("cacheplug: no tags for new rows")
        if tags:
            self._pending(session).add(tags)

    def _do_orm_execute(self, state: ORMExecuteState) -> None:
        statement = state.statement
        if not (state.is_insert or state.is_update or state.is_delete):
            if state.is_select:
                return
            tags = statement_tags(_parser.writes(str(statement), None, False, self._unknown_sql))
            if tags:
                self._pending(state.session).add(tags)
            return
        table = getattr(statement, "table", None)
        name = getattr(table, "name", None)
        if name is None or name == OUTBOX_TABLE:  # the hooks' own row
            return
        tags = [table_tag(name)]
        # Updates and deletes touch rows unknown here; so do inserts: an upsert changes
        # existing rows, and new rows may take keys a cached miss stands for.
        tags.append(any_row_tag(name))
        self._pending(state.session).add(tags)

    def _before_commit(self, session: Session) -> None:
        """The transaction's outbox row, written last inside it: exactly one per
        transaction, with every table it wrote."""
        outbox = self.outbox
        if outbox is None or session.in_nested_transaction():
            return
        session.flush()  # what commit() would flush next: its writes' tags are wanted now
        self._settle(session)
        tags = [
            tag
            for layer in session.info.get((self._info_key, "savepoints"), {}).values()
            for tag in layer.peek()
        ]
        pending = session.info.get(self._info_key)
        if pending:
            tags += pending.peek()
        if tags:
            row_id = outbox.write(session, tags)
            if row_id is not None:
                session.info[(self._info_key, "outbox")] = row_id

    def _after_commit(self, session: Session) -> None:
        row_id = session.info.pop((self._info_key, "outbox"), None)
        self._deliver(session)
        if row_id is not None and self.outbox is not None:
            self.outbox.delivered(session, row_id, bool(self.committed.held()))

    def _deliver(self, session: Session) -> None:
        self._settle(session)
        tags: list[str] = []
        for layer in session.info.pop((self._info_key, "savepoints"), {}).values():
            tags += layer.drain()  # none left open at a commit, unless events were missed
        pending = session.info.get(self._info_key)
        if pending:
            tags += pending.drain()
        if tags:
            self.committed.run(lambda: self._invalidate, list(dict.fromkeys(tags)))

    def _after_rollback(self, session: Session) -> None:
        session.info.pop((self._info_key, "flushing"), None)  # a flush that failed
        if not session.in_transaction():
            session.info.pop((self._info_key, "outbox"), None)  # gone with the transaction
        if session.in_transaction():
            return  # a savepoint rolled back: see _after_soft_rollback
        session.info.pop((self._info_key, "savepoints"), None)
        session.info.pop((self._info_key, "ended"), None)
        pending = session.info.get(self._info_key)
        if pending:
            pending.discard()

    def _collected(self, session: Session) -> list[DeferredInvalidations]:
        """What ``session``'s open transaction (and savepoints) wrote, not committed yet."""
        self._settle(session)
        layers = session.info.get((self._info_key, "savepoints"), {})
        return [found for found in [session.info.get(self._info_key), *layers.values()] if found]

    def wrote(self, session: Session | None) -> bool:
        """True when ``session`` wrote (or holds unflushed changes) and has not committed."""
        if session is None:
            return False
        return bool(self._collected(session) or session.new or session.dirty or session.deleted)

    def covers(self, session: Session | None, tags: Iterable[str]) -> bool:
        """True when ``session`` wrote (or holds unflushed changes to) something ``tags``
        depend on and has not committed."""
        if session is None:
            return False
        tags = list(tags)
        if any(pending.covers(tags) for pending in self._collected(session)):
            return True
        changed = [*session.new, *session.dirty, *session.deleted]
        if not changed:
            return False
        unflushed: set[str] = set()
        for instance in changed:
            unflushed.update(instance_tags(instance))
            unflushed.update(any_row_tag(table.name) for table in inspect(instance).mapper.tables)
        return not unflushed.isdisjoint(tags)
