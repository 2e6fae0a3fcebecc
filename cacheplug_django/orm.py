"""ORM writes -> invalidations, after the transaction commits.

Every statement Django sends goes through the ``execute_wrapper`` installed on each database
connection, so ``save()``, ``delete()``, ``QuerySet.update()``/``delete()``, ``bulk_create``,
``bulk_update`` and raw SQL on a Django cursor are all seen, on every database alias. What a
statement wrote (tables, and rows where the statement names them) is read from its text
(:class:`cacheplug.adapters.WriteParser`). Model signals add what SQL cannot say: the
instances on both sides of a many-to-many change, and the key of a row just created.

Inside ``atomic()`` the tags wait in the connection's :class:`DeferredInvalidations` and are
invalidated by an ``on_commit`` callback. A rollback (of a savepoint too) drops Django's
callbacks; the tags left behind are at worst invalidated with the next commit, which costs a
miss, never a stale read. Until the commit the writer's own reads of what it wrote bypass the
cache (see :func:`pending_covers`).
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_save

from cacheplug.adapters import DeferredInvalidations, WriteParser
from cacheplug_django.tags import TABLES, any_row_tag, instance_written_tags, written_tags

Invalidate = Callable[[list[str]], None]
logger = logging.getLogger("cacheplug_django")

_pending: weakref.WeakKeyDictionary[BaseDatabaseWrapper, DeferredInvalidations] = (
    weakref.WeakKeyDictionary()
)
_parser = WriteParser(TABLES.pk_column)


class WriteHooks:
    """Installs the hooks and routes what they see to ``invalidate`` (the cache's
    ``invalidate_tags``, looked up at each write so that settings changes apply)."""

    def __init__(self, invalidate: Callable[[], Invalidate | None]) -> None:
        self._invalidate = invalidate
        self._wrapper = functools.partial(_on_execute, self)

    def install(self) -> None:
        """Hook every connection, current and future, and the model signals."""
        from django.db.backends.signals import connection_created

        connection_created.connect(self._connection_created, weak=False, dispatch_uid="cacheplug")
        for connection in connections.all(initialized_only=True):
            self.hook(connection)
        post_save.connect(self._saved, weak=False, dispatch_uid="cacheplug")
        m2m_changed.connect(self._m2m_changed, weak=False, dispatch_uid="cacheplug")

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
            transaction.on_commit(functools.partial(self._flush, connection), using=alias)
            return
        stale = _pending.pop(connection, None)  # left over from a rolled-back transaction
        if stale:
            tags = [*tags, *stale.drain()]
        self._run(tags)

    def _flush(self, connection: BaseDatabaseWrapper) -> None:
        deferred = _pending.get(connection)
        if deferred:
            self._run(deferred.drain())

    def _run(self, tags: list[str]) -> None:
        invalidate = self._invalidate()
        if invalidate is not None:
            invalidate(sorted(set(tags)))

    def _saved(
        self, sender: type[Model], instance: Model, created: bool, using: str, **_: Any
    ) -> None:
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
    result = execute(sql, params, many, context)
    writes = _parser.writes(sql, params, many)
    if writes:
        tags: list[str] = []
        for write in writes:
            tags += written_tags(write)
        hooks.written(context["connection"].alias, tags)
    return result


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
