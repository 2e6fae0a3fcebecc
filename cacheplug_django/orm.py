"""ORM writes -> invalidations, after the transaction commits.

Every statement Django sends goes through the ``execute_wrapper`` installed on each database
connection, so ``save()``, ``delete()``, ``QuerySet.update()``/``delete()``, ``bulk_create``,
``bulk_update`` and raw SQL on a Django cursor are all seen, on every database alias. What a
statement wrote (tables, and rows where the statement names them) is read from its text
(:class:`cacheplug.integration.WriteParser`). Model signals add what SQL cannot say: the
instances on both sides of a many-to-many change, and the key of a row just created.

A statement the parser cannot classify as a read (``CALL``, ``DO``, ``EXECUTE``, ...) may
have written anything: it invalidates every table (the ``db:*`` tag every entry depending on
a table carries), unless ``CACHEPLUG["UNKNOWN_SQL"]`` is ``"ignore"``.

Inside ``atomic()`` the tags wait in the connection's :class:`DeferredInvalidations` and are
invalidated by an ``on_commit`` callback. A rollback (of a savepoint too) drops Django's
callbacks; the tags left behind are at worst invalidated with the next commit, which costs a
miss, never a stale read. Until the commit the writer's own reads of what it wrote bypass the
cache (see :func:`pending_covers`).

By the time the tags are invalidated the write has happened, so nothing the cache does may
turn it into an exception: a store that is down, or a cache that cannot be set up (a bad
setting), is logged and counted, and the invalidation is kept until it can be applied
(:class:`cacheplug.integration.AfterCommit`).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Final

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_migrate, post_save, pre_save

from cacheplug.integration import (
    AGAIN_AFTER,
    ANY_ROW,
    OUTBOX_TABLE,
    AfterCommit,
    DeferredInvalidations,
    TableWrite,
    WriteParser,
    capturing,
)
from cacheplug_django.conf import every_table_on_unknown_sql
from cacheplug_django.outbox import OutboxWrites
from cacheplug_django.tags import (
    TABLES,
    any_row_tag,
    instance_written_tags,
    read_recorder,
    written_tags,
)

Invalidate = Callable[[list[str], float | None], None]
logger = logging.getLogger("cacheplug_django")

_pending: weakref.WeakKeyDictionary[BaseDatabaseWrapper, DeferredInvalidations] = (
    weakref.WeakKeyDictionary()
)
_parser = WriteParser(TABLES.pk_column)
committed: Final = AfterCommit()
"""The invalidations of committed writes: what could not reach the cache waits here, and is
replayed when the cache is (re)built (``cacheplug_django._cache``)."""


class _Saves(threading.local):
    """Per thread and database alias: tables a save() is about to insert into."""

    def __init__(self) -> None:
        self.tables: dict[str, list[str]] = {}

    def get(self, alias: str) -> list[str] | None:
        return self.tables.get(alias)

    def setdefault(self, alias: str, default: list[str]) -> list[str]:
        return self.tables.setdefault(alias, default)

    def pop(self, alias: str, default: Any = None) -> Any:
        return self.tables.pop(alias, default)


_saves = _Saves()


class WriteHooks:
    """Installs the hooks and routes what they see to ``invalidate`` (the cache's
    ``invalidate_tags``, looked up at each write so that settings changes apply)."""

    def __init__(
        self,
        invalidate: Callable[[], Invalidate | None],
        outbox: OutboxWrites | None = None,
        landed: Callable[[], bool] = lambda: False,
    ) -> None:
        self._invalidate = invalidate
        self.outbox = outbox
        self.landed = landed  # did the last invalidation reach the store?
        self._wrapper = functools.partial(_on_execute, self)

    def install(self) -> None:
        """Hook every connection, current and future, and the model signals."""
        from django.db.backends.signals import connection_created

        connection_created.connect(self._connection_created, weak=False, dispatch_uid="cacheplug")
        for connection in connections.all(initialized_only=True):
            self.hook(connection)
        pre_save.connect(self._saving, weak=False, dispatch_uid="cacheplug")
        post_save.connect(self._saved, weak=False, dispatch_uid="cacheplug")
        m2m_changed.connect(self._m2m_changed, weak=False, dispatch_uid="cacheplug")
        if self.outbox is not None:
            post_migrate.connect(
                self.outbox.forget_tables, weak=False, dispatch_uid="cacheplug-outbox"
            )
            post_migrate.connect(
                _forget_tables_written, weak=False, dispatch_uid="cacheplug-outbox-tags"
            )

    def hook(self, connection: BaseDatabaseWrapper) -> None:
        """Hook one connection (idempotent)."""
        # ``connection.execute_wrapper()`` is a context manager for a block of code; a hook
        # that stays for the connection's life goes into the list it manages.
        if self._wrapper not in connection.execute_wrappers:
            connection.execute_wrappers.append(self._wrapper)

    def _connection_created(self, sender: Any, connection: BaseDatabaseWrapper, **_: Any) -> None:
        self.hook(connection)

    def written(self, alias: str, tags: list[str]) -> None:
        """``tags`` were written through connection ``alias``: invalidate them now, or when
        its transaction commits."""
        if not tags:
            return
        connection = connections[alias]
        if connection.in_atomic_block:
            deferred = _pending.get(connection)
            if deferred is None:
                deferred = _pending[connection] = DeferredInvalidations()
            deferred.add(tags)
            if self.outbox is not None and self.outbox.active(connection):
                # In the transaction: it commits, or rolls back, with the data.
                self.outbox.record(connection, tags)
            transaction.on_commit(functools.partial(self._flush, connection), using=alias)
            return
        stale = _pending.pop(connection, None)  # left over from a rolled-back transaction
        if stale:
            tags = [*tags, *stale.drain()]
        if not connection.get_autocommit():
            # Manual transaction management: there is no public commit hook outside atomic().
            # Invalidate now and once more a moment later, for readers that re-cached the
            # old rows before the commit.
            self._run(tags, again_after=AGAIN_AFTER)
            return
        self._run(tags)

    def _flush(self, connection: BaseDatabaseWrapper) -> None:
        deferred = _pending.get(connection)
        if deferred:
            self._run(deferred.drain())
            if self.outbox is not None:
                self.outbox.committed(connection, self.landed())

    def _run(self, tags: list[str], again_after: float | None = None) -> None:
        # The write is done (committed, or autocommitted): this must not raise.
        committed.run(self._invalidate, sorted(set(tags)), again_after)

    def _saving(self, sender: type[Model], instance: Model, using: str, **_: Any) -> None:
        # A save() about to insert: its INSERT names no key, but post_save will.
        if instance._state.adding:
            tables = [sender._meta.db_table]
            tables += [parent._meta.db_table for parent in sender._meta.get_parent_list()]
            _saves.setdefault(using, []).extend(tables)

    def _saved(
        self, sender: type[Model], instance: Model, created: bool, using: str, **_: Any
    ) -> None:
        pending = _saves.get(using)
        if pending:
            tables = [sender._meta.db_table]
            tables += [parent._meta.db_table for parent in sender._meta.get_parent_list()]
            for table in tables:
                if table in pending:
                    pending.remove(table)  # its INSERT was not seen (or not made)
        if created and not sender._meta.auto_created:
            # The SQL said "new rows" without their keys; a miss cached for this key is stale.
            try:
                tags = instance_written_tags(instance)
            except Exception:  # a model the hooks cannot place must never break a save
                logger.exception("cacheplug: no tags for a %s just created", sender.__name__)
                return
            self.written(using, tags)

    def _m2m_changed(
        self,
        sender: type[Model],
        instance: Model,
        action: str,
        model: type[Model],
        pk_set: Iterable[Any] | None,
        using: str,
        **_: Any,
    ) -> None:
        if not action.startswith("post_"):
            return
        try:
            tags = instance_written_tags(instance)
            if pk_set is None:  # clear(): the other side's rows are unknown
                tags.append(any_row_tag(TABLES.of_model(model).model))
            else:
                for pk in pk_set:
                    tags += instance_written_tags(model(pk=pk))
        except Exception:
            logger.exception("cacheplug: no tags for a many-to-many change of %s", sender.__name__)
            tags = [any_row_tag(model), any_row_tag(type(instance))]
        self.written(using, tags)


def _on_execute(
    hooks: WriteHooks,
    execute: Callable[..., Any],
    sql: str,
    params: Any,
    many: bool,
    context: dict[str, Any],
) -> Any:
    connection = context["connection"]
    if not many and capturing():  # a loader's reads (depends_on="auto"), before they run
        read_recorder.seen(sql, params)
    writes = [
        write
        for write in _parser.writes(sql, params, many, every_table_on_unknown_sql)
        if write.table != OUTBOX_TABLE  # the hooks' own bookkeeping
    ]
    outbox = hooks.outbox
    if writes and outbox is not None and outbox.active(connection):
        tables = _tables_written(tuple(write.table for write in writes))
        # The statement's cursor is open, so is its connection: its autocommit attribute is
        # current (get_autocommit() would check that again, 3.5 us a statement).
        autocommitted = not connection.in_atomic_block and connection.autocommit
        folded = outbox.fold(connection, tables, sql, params, many, autocommitted)
        if folded is not None or autocommitted:
            # Folded: the row goes in with the statement. Else an autocommitted write commits
            # by itself: its row goes in first, in a commit of its own (a write that then
            # fails costs a needless invalidation, never a lost one); not atomic() around the
            # statement, which would commit before Django fetched an INSERT ... RETURNING's.
            row = None
            if folded is not None:
                sql, params, row = folded
                row_id = row.id
            else:
                row_id = outbox.insert_now(connection, tables)
            try:
                result = _execute(hooks, execute, sql, params, many, context, writes)
            except BaseException:
                if row is not None:
                    outbox.fold_failed(connection, row)
                raise
            if autocommitted:
                outbox.delivered_now(connection, row_id, hooks.landed())
            return result
    if outbox is not None and not writes and _ROLLBACK_TO.match(sql):
        outbox.rolled_back_to_savepoint(connection)
    return _execute(hooks, execute, sql, params, many, context, writes)


_ROLLBACK_TO: Final = re.compile(r"\s*ROLLBACK\s+TO\b", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def _tables_written(tables: tuple[str, ...]) -> tuple[str, ...]:
    """The outbox's tags for a write to ``tables`` (every row of each), worked out once per
    set of tables: this runs in every writing transaction (``benchmarks/outbox_cost.py``).
    Emptied after ``migrate``, when the models known may have changed."""
    return tuple(tag for table in tables for tag in written_tags(TableWrite(table, ANY_ROW)))


def _forget_tables_written(**_: object) -> None:
    _tables_written.cache_clear()


def _execute(
    hooks: WriteHooks,
    execute: Callable[..., Any],
    sql: str,
    params: Any,
    many: bool,
    context: dict[str, Any],
    writes: list[TableWrite],
) -> Any:
    alias = context["connection"].alias
    try:
        result = execute(sql, params, many, context)
    except BaseException:
        _saves.pop(alias, None)  # a failed save() must not vouch for a later INSERT
        raise
    if writes:
        tags: list[str] = []
        for write in writes:
            if write.rows == () and not _inserted_by_save(alias, write.table):
                # New rows whose keys the database picked, not by save() (whose post_save
                # names the key): one may take a key a cached miss stands for.
                write = TableWrite(write.table, ANY_ROW)
            tags += written_tags(write)
        hooks.written(alias, tags)
    return result


def _inserted_by_save(alias: str, table: str) -> bool:
    """True (once) when a save() announced by pre_save is inserting into ``table``."""
    pending = _saves.get(alias)
    if pending and TABLES.canonical(table) in pending:
        pending.remove(TABLES.canonical(table))
        return True
    return False


def pending_any() -> bool:
    """True when this thread has an open transaction that wrote something."""
    if not _pending:
        return False
    for connection in connections.all(initialized_only=True):
        deferred = _pending.get(connection)
        if deferred and connection.in_atomic_block:
            return True
    return False


def pending_covers(tags: Iterable[str]) -> bool:
    """True when this thread has an open transaction that wrote something ``tags`` depend
    on (its reads of those must bypass the cache)."""
    if not _pending:
        return False
    tags = list(tags)
    for connection in connections.all(initialized_only=True):
        deferred = _pending.get(connection)
        if deferred and connection.in_atomic_block and deferred.covers(tags):
            return True
    return False
