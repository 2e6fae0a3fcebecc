"""Write-behind sinks into SQLAlchemy models: each write's value (a dict of column values) is
upserted into the row its key names, in one transaction per batch (``INSERT ... ON CONFLICT
DO UPDATE`` on SQLite and PostgreSQL).

The statements run through a session, so the extension's hooks invalidate what depends on
the model after the commit, as for any other write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import inspect

from cacheplug import ConfigurationError, QueuedWrite, write_order


def upsert_sink(
    sqlalchemy: Any,
    model: Any,
    *,
    column: str | None = None,
    order_column: str | None = None,
    key_value: Callable[[str], Any] | None = None,
) -> Callable[[list[QueuedWrite]], None]:
    """A sink for ``cache.write_behind(name, sink)``: ``queue.put("profile:ada", {"name":
    "Ada"})`` sets ``name`` on the ``model`` row whose ``column`` (default: the primary key)
    is ``"ada"`` (the key's last ``:``-separated part, or ``key_value(key)``), inserting the
    row if there is none. ``sqlalchemy``: Flask-SQLAlchemy's ``db``, a ``sessionmaker`` or a
    ``scoped_session`` (the worker commands run inside the app context).

    Upserting a value is idempotent, so a batch delivered twice changes nothing the second
    time. ``order_column`` (a ``String(26)``): where each row keeps the order of the write it
    holds; the upsert then never replaces a newer write with an older one (several workers,
    or a batch retried after a failure). Without it, writes of one key must come from one
    worker.
    """
    table = inspect(model).local_table
    if column is None:
        primary = list(table.primary_key.columns)
        if len(primary) != 1:
            raise ConfigurationError(f"upsert_sink({model.__name__}) needs column=...")
        column = primary[0].name
    target = table.c[column]
    sessions = getattr(sqlalchemy, "session", sqlalchemy)

    def key_of(write: QueuedWrite) -> Any:
        raw = key_value(write.key) if key_value is not None else write.key.rsplit(":", 1)[-1]
        python_type = getattr(target.type, "python_type", str)
        return python_type(raw) if python_type in (int, str) else raw

    def values_of(write: QueuedWrite) -> dict[str, Any]:
        if not isinstance(write.value, dict):
            raise TypeError(
                f"upsert_sink({model.__name__}) needs dict values of column names, not "
                f"{type(write.value).__name__} (key {write.key!r})"
            )
        unknown = sorted(set(write.value) - set(table.c.keys()))
        if unknown:
            raise ValueError(f"{table.name} has no columns {unknown} (key {write.key!r})")
        values = {column: key_of(write), **write.value}
        if order_column is not None:
            values[order_column] = write_order(write.id)
        return values

    def sink(writes: list[QueuedWrite]) -> None:
        session = sessions()
        insert = _insert_for(session.get_bind().dialect.name)
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for write in writes:
            values = values_of(write)
            by_columns.setdefault(tuple(sorted(values)), []).append(values)
        try:
            for names, rows in by_columns.items():
                statement = insert(table).values(rows)
                updated = {name: statement.excluded[name] for name in names if name != column}
                if not updated:
                    statement = statement.on_conflict_do_nothing(index_elements=[target])
                else:
                    statement = statement.on_conflict_do_update(
                        index_elements=[target],
                        set_=updated,
                        where=None
                        if order_column is None
                        else table.c[order_column] < statement.excluded[order_column],
                    )
                session.execute(statement)
            session.commit()
        except BaseException:
            session.rollback()
            raise

    return sink


def _insert_for(dialect: str) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    raise ConfigurationError(f"upsert_sink supports SQLite and PostgreSQL, not {dialect}")
