"""The tags of mapped classes and their rows, as the SQLAlchemy hooks, the views and
``flask cacheplug`` spell them: a row's key is its primary key columns, converted with each
column's Python type (a UUID string reads as the UUID), joined with commas."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, inspect

from cacheplug.integration import (
    OUTBOX_TABLE,
    ReadRecorder,
    TableWrite,
    any_row_tag,
    row_tag,
    table_tag,
    written_tags,
)

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


def instance_tags(instance: Any) -> list[str]:
    """An instance's table tags and, once it has a key, its row tags (every table of a
    joined-inheritance chain)."""
    state = inspect(instance)
    mapper = state.mapper
    key = _key(state.identity, mapper) if state.identity else None
    tags = [table_tag(table.name) for table in mapper.tables if isinstance(table, Table)]
    if key is not None:
        tags += [row_tag(table.name, key) for table in mapper.tables if isinstance(table, Table)]
    return tags


_tables: dict[str, Table] = {}  # the mapped tables seen, by name: their primary keys


def learn_tables(mappers: Iterable[Any]) -> None:
    """Remember the tables of ``mappers`` (and their inheritance), for reading which rows a
    statement selects by primary key."""
    for mapper in mappers:
        _learn(mapper)
        for table in mapper.tables:
            if isinstance(table, Table):
                _tables.setdefault(table.name, table)


def _pk_column(table: str) -> str | None:
    found = _tables.get(table)
    if found is None or len(found.primary_key.columns) != 1:
        return None
    [column] = found.primary_key.columns
    return str(column.name)


def _key_of(table: str, value: Any) -> str:
    found = _tables.get(table)
    if found is None:
        return str(value)
    [column] = found.primary_key.columns
    return _spell(column, value)


read_recorder = ReadRecorder(_pk_column, _key_of, parents_of)
"""What a ``depends_on="auto"`` loader's statements read, as the hooks spell row tags."""


def statement_tags(writes: Iterable[TableWrite]) -> list[str]:
    """What a statement read by the SQL parser wrote: its tables, rows unknown (so no
    children), or every table; nothing for the outbox table (the hooks' own bookkeeping)."""
    return [
        tag
        for write in writes
        if write.table != OUTBOX_TABLE
        for tag in written_tags(write, None, lambda table: ())
    ]
