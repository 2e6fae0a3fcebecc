"""Tags for Django models, and the tags an SQL write invalidates.

The tags are those of tables and rows (``cacheplug.integration.table_tag``/``row_tag``; see
``cacheplug.integration``): a proxy model shares its concrete model's table; a model with
multi-table inheritance spans its own table and its parents'. :func:`model_tags` gives the
table tags of models, :func:`instance_tag` the tag of one row.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Final

from django.apps import apps
from django.db import models

from cacheplug.integration import ReadRecorder, TableWrite, row_tag, table_tag
from cacheplug.integration import any_row_tag as _any_row_tag
from cacheplug.integration import written_tags as _written_tags


@dataclass(frozen=True)
class _Table:
    model: type[models.Model]
    pk: models.Field[Any, Any]
    parents: tuple[str, ...]  # tables of the multi-table-inheritance parents
    children: tuple[str, ...]  # tables of models inheriting from this one (any depth)


class _Tables:
    """Table name -> what the adapter needs to know of its model (built on first use, after
    the app registry is ready; rebuilt if models are added, as in tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[str, _Table] = {}
        self._lower: dict[str, str] = {}
        self._models_seen = -1
        self.generation = 0
        """Moves on whenever the tables are read again (models were added)."""

    def get(self, table: str) -> _Table | None:
        tables = self._tables
        if table not in tables and self._models_seen != len(
            apps.get_models(include_auto_created=True)
        ):
            tables = self._build()
        found = tables.get(table)
        if found is None:
            # Raw SQL names tables unquoted, which SQL reads case-insensitively.
            canonical = self._lower.get(table.lower())
            found = None if canonical is None else tables.get(canonical)
        return found

    def canonical(self, table: str) -> str:
        """``table`` as the model spells it (raw SQL may spell it in another case)."""
        found = self.get(table)
        return table if found is None else str(found.model._meta.db_table)

    def of_model(self, model: type[models.Model]) -> _Table:
        meta = (model._meta.concrete_model or model)._meta
        if meta.abstract:
            raise ValueError(f"{model.__name__} is abstract: it has no table")
        table = self.get(meta.db_table)
        if table is None or table.model._meta.label != meta.label:
            # Not in the app registry (Django's own migration recorder, a dynamic model).
            parents = tuple(parent._meta.db_table for parent in meta.get_parent_list())
            return _Table(meta.model, meta.pk, parents, ())
        return table

    def pk_column(self, table: str) -> str | None:
        info = self.get(table)
        return None if info is None else info.pk.column

    def _build(self) -> dict[str, _Table]:
        with self._lock:
            every = apps.get_models(include_auto_created=True)
            children: dict[str, list[str]] = {}
            for model in every:
                if model._meta.proxy:
                    continue
                for parent in model._meta.get_parent_list():
                    children.setdefault(parent._meta.db_table, []).append(model._meta.db_table)
            tables = {}
            for model in every:
                meta = model._meta
                if meta.proxy or meta.abstract:
                    continue
                tables[meta.db_table] = _Table(
                    model=model,
                    pk=meta.pk,
                    parents=tuple(parent._meta.db_table for parent in meta.get_parent_list()),
                    children=tuple(children.get(meta.db_table, ())),
                )
            self._tables = tables
            self._lower = {name.lower(): name for name in tables}
            self._models_seen = len(every)
            self.generation += 1
            return tables


TABLES: Final = _Tables()


def _key(table: _Table, pk: Any) -> str:
    """A primary key as tags spell it: the value as the model field reads it back, so that
    the SQL parameter (``'3f2a…'``) and the Python value (``UUID('3f2a…')``) agree."""
    try:
        return str(table.pk.to_python(pk))
    except Exception:  # a value the field rejects: still a distinct, stable spelling
        return repr(pk)


def instance_tag(model: type[models.Model] | models.Model, pk: Any = None) -> str:
    """The tag of one row: ``instance_tag(Product, 42)`` or ``instance_tag(product)``. An
    entry carrying it is invalidated by any write to that row (and by writes to its table
    whose rows are unknown)."""
    if isinstance(model, models.Model):
        instance, model = model, type(model)
        pk = instance.pk if pk is None else pk
    if pk is None:
        raise ValueError("instance_tag needs a primary key: instance_tag(Model, pk)")
    table = TABLES.of_model(model)
    return row_tag(table.model._meta.db_table, _key(table, pk))


_model_tags_memo: dict[tuple[Any, ...], list[str]] = {}


def model_tags(*models_: type[models.Model] | str) -> list[str]:
    """The tags of whole models (``Product`` or ``"shop.Product"``): invalidated by any write
    to their tables, their parents' tables and their many-to-many tables."""
    memo_key = (TABLES.generation, *models_)
    found = _model_tags_memo.get(memo_key)
    if found is None:
        found = _model_tags(models_)
        if len(_model_tags_memo) >= 1024:
            _model_tags_memo.clear()
        _model_tags_memo[memo_key] = found
    return list(found)


def _model_tags(models_: tuple[type[models.Model] | str, ...]) -> list[str]:
    tags: list[str] = []
    for model in models_:
        resolved = _resolve(model)
        table = TABLES.of_model(resolved)
        own = table.model._meta.db_table
        tags.append(table_tag(own))
        tags.extend(table_tag(parent) for parent in table.parents)
        for field in resolved._meta.get_fields(include_hidden=True):
            through = getattr(getattr(field, "remote_field", None), "through", None)
            if field.many_to_many and through is not None and through._meta.auto_created:
                tags.append(table_tag(through._meta.db_table))
    return list(dict.fromkeys(tags))


def _resolve(model: type[models.Model] | str) -> type[models.Model]:
    if isinstance(model, str):
        try:
            return apps.get_model(model)
        except (LookupError, ValueError) as exc:
            raise LookupError(f"unknown model {model!r}: use 'app_label.ModelName'") from exc
    if isinstance(model, type) and issubclass(model, models.Model):
        return model
    raise TypeError(f"expected a model class or 'app_label.ModelName', not {model!r}")


def written_tags(write: TableWrite) -> list[str]:
    """The tags a write to a table invalidates."""
    known = TABLES.get(write.table) is not None
    if known:
        write = TableWrite(TABLES.canonical(write.table), write.rows)
    return _written_tags(write, _table_key if known else None, _children)


def any_row_tag(model: type[models.Model]) -> str:
    """The tag a write to ``model``'s table with unknown rows invalidates."""
    return _any_row_tag(model._meta.db_table)


def parents_of(table: str) -> tuple[str, ...]:
    """The tables whose rows ``table``'s rows extend (multi-table inheritance)."""
    info = TABLES.get(table)
    return () if info is None else info.parents


def _children(table: str) -> tuple[str, ...]:
    info = TABLES.get(table)
    return () if info is None else info.children


def _table_key(table: str, value: Any) -> str:
    info = TABLES.get(table)
    return repr(value) if info is None else _key(info, value)


def instance_written_tags(instance: models.Model) -> list[str]:
    """The tags a write to ``instance`` invalidates (its row in its table and the tables it
    spans; model signals use this)."""
    table = TABLES.of_model(type(instance))
    key = _key(table, instance.pk)
    own = table.model._meta.db_table
    rows = [row_tag(name, key) for name in (own, *table.parents, *table.children)]
    return [*rows, table_tag(own)]


def flush_tags(*models_: type[models.Model] | str) -> list[str]:
    """Everything depending on ``models_``: their table tags and the "rows unknown" tags that
    reach every entry tagged with one of their rows (for ``cacheplug_flush --model``)."""
    tags = model_tags(*models_)
    for model in models_:
        table = TABLES.of_model(_resolve(model))
        for name in (table.model._meta.db_table, *table.parents):
            tags.append(_any_row_tag(name))
    return list(dict.fromkeys(tags))


read_recorder: Final = ReadRecorder(TABLES.pk_column, _table_key, parents_of)
"""What a ``depends_on="auto"`` loader's statements read, as the ORM hooks spell tags."""
