"""SQLAlchemy writes -> invalidations, after the transaction commits.

Hooks on a ``Session`` class, a ``sessionmaker``, a ``scoped_session`` or Flask-SQLAlchemy's
``db.session``:

- ``after_flush``: the instances added, changed and deleted give their rows' tags and their
  tables' tags;
- ``do_orm_execute``: ``insert``/``update``/``delete`` statements run through the session (ORM
  bulk ``update(Model)``, Core statements on mapped tables, ``text()`` SQL) give their tables'
  tags, and the "rows unknown" tag for an update or delete;
- ``after_commit`` invalidates what the transaction collected; ``after_rollback`` forgets it.

A rolled-back savepoint keeps what it collected: it is invalidated with the commit, which
costs a miss, never a stale read. Until the commit, reads through the extension that depend on
what the session wrote bypass the cache (:func:`pending_covers`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from cacheplug.adapters import (
    DeferredInvalidations,
    WriteParser,
    any_row_tag,
    row_tag,
    table_tag,
)

logger = logging.getLogger("cacheplug_flask")
_INFO_KEY = "cacheplug_pending"
_parser = WriteParser(lambda table: None)  # text() SQL: tables only, rows unknown


_parents: dict[str, tuple[str, ...]] = {}


def _learn(mapper: Any) -> str:
    """The mapper's own table, remembering the tables it inherits from."""
    tables = [table.name for table in mapper.tables if isinstance(table, Table)]
    own: str = mapper.local_table.name
    _parents[own] = tuple(name for name in tables if name != own)
    return own


def instance_tag(model: Any, pk: Any = None) -> str:
    """The tag of one row: ``instance_tag(Product, 42)`` or ``instance_tag(product)``."""
    if pk is None and not isinstance(model, type):
        state = inspect(model)
        return row_tag(_learn(state.mapper), _key(state.identity or (), state.mapper))
    mapper = inspect(model)
    return row_tag(_learn(mapper), _key(pk if isinstance(pk, tuple) else (pk,), mapper))


def model_tags(*models: Any) -> list[str]:
    """The tags of whole mapped classes: their tables (all of a joined-inheritance chain) and
    the association tables of their many-to-many relationships."""
    tags: list[str] = []
    for model in models:
        mapper = inspect(model)
        tags += [table_tag(table.name) for table in mapper.tables if isinstance(table, Table)]
        for relationship in mapper.relationships:
            secondary = relationship.secondary
            if isinstance(secondary, Table):
                tags.append(table_tag(secondary.name))
    return list(dict.fromkeys(tags))


def flush_tags(*models: Any) -> list[str]:
    """Everything depending on ``models``: their table tags and the "rows unknown" tags that
    reach every entry tagged with one of their rows (for ``flask cacheplug flush --model``)."""
    tags = model_tags(*models)
    for model in models:
        tags += [
            any_row_tag(table.name) for table in inspect(model).tables if isinstance(table, Table)
        ]
    return list(dict.fromkeys(tags))


def parents_of(table: str) -> Iterable[str]:
    """The tables ``table``'s rows inherit from (joined-table inheritance), as far as
    :func:`instance_tag` has seen its mapper."""
    return _parents.get(table, ())


def _key(identity: Iterable[Any], mapper: Any = None) -> str:
    values = list(identity)
    if mapper is not None:
        converted = []
        for column, value in zip(mapper.primary_key, values, strict=False):
            converted.append(_spell(column, value))
        return ",".join(converted)
    return ",".join(str(value) for value in values)


def _spell(column: Any, value: Any) -> str:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return str(value)
    if python_type is uuid.UUID and not isinstance(value, uuid.UUID):
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            return str(value)
    return str(value)


def _instance_tags(instance: Any) -> list[str]:
    state = inspect(instance)
    mapper = state.mapper
    key = _key(state.identity, mapper) if state.identity else None
    tags = [table_tag(table.name) for table in mapper.tables if isinstance(table, Table)]
    if key is not None:
        tags += [row_tag(table.name, key) for table in mapper.tables if isinstance(table, Table)]
    return tags


class SessionHooks:
    """Collects tags per session and hands them to ``invalidate`` after each commit. Each
    hooks object keeps its own collection in ``session.info``: several apps (or caches) may
    listen to one session factory."""

    def __init__(self, invalidate: Callable[[list[str]], None]) -> None:
        self._invalidate = invalidate
        self._info_key = (_INFO_KEY, id(self))

    def install(self, target: Any) -> None:
        """Listen on ``target``: a Session class, sessionmaker, scoped_session, or
        Flask-SQLAlchemy's ``db`` (its ``session``)."""
        target = getattr(target, "session", target)
        event.listen(target, "after_flush", self._after_flush)
        event.listen(target, "after_flush_postexec", self._after_flush_postexec)
        event.listen(target, "do_orm_execute", self._do_orm_execute)
        event.listen(target, "after_commit", self._after_commit)
        event.listen(target, "after_rollback", self._after_rollback)

    def _pending(self, session: Session) -> DeferredInvalidations:
        pending = session.info.get(self._info_key)
        if pending is None:
            pending = session.info[self._info_key] = DeferredInvalidations()
        return pending

    def _after_flush(self, session: Session, flush_context: UOWTransaction) -> None:
        tags: list[str] = []
        session.info[(self._info_key, "new")] = list(session.new)
        try:
            for instance in [*session.new, *session.dirty, *session.deleted]:
                tags += _instance_tags(instance)
        except Exception:  # a mapping the hooks cannot read must never break a flush
            logger.exception("cacheplug: no tags for a flush")
        self._pending(session).add(tags)

    def _after_flush_postexec(self, session: Session, flush_context: UOWTransaction) -> None:
        # Objects just inserted have their keys only now: a cached miss for one is stale.
        created = session.info.pop((self._info_key, "new"), ())
        tags: list[str] = []
        try:
            for instance in created:
                tags += _instance_tags(instance)
        except Exception:
            logger.exception("cacheplug: no tags for new rows")
        if tags:
            self._pending(session).add(tags)

    def _do_orm_execute(self, state: ORMExecuteState) -> None:
        statement = state.statement
        if not (state.is_insert or state.is_update or state.is_delete):
            if state.is_select:
                return
            text = str(statement)
            tags = []
            for write in _parser.writes(text, None, False):
                tags += [table_tag(write.table), any_row_tag(write.table)]
            if tags:
                self._pending(state.session).add(tags)
            return
        table = getattr(statement, "table", None)
        name = getattr(table, "name", None)
        if name is None:
            return
        tags = [table_tag(name)]
        # Updates and deletes touch rows unknown here; so do inserts: an upsert changes
        # existing rows, and new rows may take keys a cached miss stands for.
        tags.append(any_row_tag(name))
        self._pending(state.session).add(tags)

    def _after_commit(self, session: Session) -> None:
        pending = session.info.get(self._info_key)
        if pending:
            self._invalidate(pending.drain())

    def _after_rollback(self, session: Session) -> None:
        if session.in_transaction():
            return  # a savepoint rolled back: keep what the outer transaction will commit
        pending = session.info.get(self._info_key)
        if pending:
            pending.discard()

    def covers(self, session: Session | None, tags: Iterable[str]) -> bool:
        """True when ``session`` wrote (or holds unflushed changes to) something ``tags``
        depend on and has not committed."""
        if session is None:
            return False
        tags = list(tags)
        pending = session.info.get(self._info_key)
        if pending is not None and pending and pending.covers(tags):
            return True
        changed = [*session.new, *session.dirty, *session.deleted]
        if not changed:
            return False
        unflushed: set[str] = set()
        for instance in changed:
            unflushed.update(_instance_tags(instance))
            unflushed.update(any_row_tag(table.name) for table in inspect(instance).mapper.tables)
        return not unflushed.isdisjoint(tags)
