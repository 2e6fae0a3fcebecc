"""Which tables (and, where the statement says so, which rows) an SQL statement writes.

The framework adapters see every statement their ORM sends (Django's ``execute_wrapper``,
SQLAlchemy's ``before_cursor_execute``), including ``QuerySet.update()``, bulk operations and
raw SQL, which no model signal reports. This module reads the statement's shape, never its
data (what kind of statement it is: ``cacheplug.integration._statements``):

- ``INSERT INTO t (...)``: new rows of ``t``; when the primary key column is among the listed
  columns and every value is a placeholder, the keys come from the parameters. An upsert
  (``ON CONFLICT ... DO UPDATE``, ``ON DUPLICATE KEY UPDATE``, ``INSERT OR REPLACE``,
  ``REPLACE``) may change any row.
- ``UPDATE t ... WHERE t.pk = %s`` and ``DELETE FROM t WHERE t.pk IN (%s, ...)``: the rows
  with those keys. Any other ``WHERE`` (or none) may touch any row.
- ``TRUNCATE``, DDL of tables, ``COPY t FROM``, ``LOAD DATA ... INTO TABLE t``, ``MERGE``...:
  any row; ``EXPLAIN ANALYZE``: what its statement writes; reads: nothing.
- ``CALL``, ``DO``, ``EXECUTE``, and any statement that cannot be classified as a read: any row
  of every table (:data:`EVERY_TABLE`), unless the caller says otherwise (the adapters'
  ``UNKNOWN_SQL`` setting).

"Any row" (and "every table") is the safe answer: it costs extra invalidations, never a stale
read. Parsing is memoized by statement text (an ORM repeats a small set of templates).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cacheplug._memo import BoundedMemo
from cacheplug.integration._statements import (
    IDENT,
    QUALIFIED,
    Shape,
    classify,
    fallback,
    unquote,
)

ANY_ROW: Final = None
"""``TableWrite.rows`` when the statement may have written any row of the table."""
EVERY_TABLE: Final = "*"
"""``TableWrite.table`` of a statement that may have written any row of any table: one that
cannot be classified as a read (``CALL``, ``DO``, ``EXECUTE``, a keyword not known here)."""

_MEMO_ENTRIES: Final = 1024
_PLACEHOLDER: Final = r"(?:%s|\?)"
_COMMENTS: Final = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)
_INSERT: Final = re.compile(
    rf"^(?:INSERT|UPSERT)(?:\s+OR\s+(?P<or>\w+))?(?:\s+IGNORE)?\s+INTO\s+(?P<table>{QUALIFIED})"
    rf"\s*(?:\((?P<columns>[^)]*)\))?",
    re.I,
)
_REPLACE: Final = re.compile(
    rf"^REPLACE\s+(?:(?:LOW_PRIORITY|DELAYED)\s+)?(?:INTO\s+)?(?P<table>{QUALIFIED})", re.I
)
_UPDATE: Final = re.compile(rf"^UPDATE\s+(?:ONLY\s+)?(?P<table>{QUALIFIED})\s+SET\b", re.I)
_DELETE: Final = re.compile(rf"^DELETE\s+FROM\s+(?:ONLY\s+)?(?P<table>{QUALIFIED})", re.I)
_UPSERT_TAIL: Final = re.compile(
    r"\bON\s+(?:CONFLICT\b[^;]*\bDO\s+UPDATE|DUPLICATE\s+KEY\s+UPDATE)", re.I
)
_SEVERAL_ROWS: Final = re.compile(r"\bVALUES\s*\(.*\)\s*,\s*\(", re.I | re.S)
_VALUES_ALL_PLACEHOLDERS: Final = re.compile(
    rf"\bVALUES\s*(?:\(\s*{_PLACEHOLDER}(?:\s*,\s*{_PLACEHOLDER})*\s*\)\s*,?\s*)+"
    r"(?:RETURNING\b.*)?$",
    re.I | re.S,
)


@dataclass(frozen=True, slots=True)
class TableWrite:
    """A table a statement writes, and the primary keys of the rows it writes: a tuple
    (empty for rows it creates without naming their keys), or ``ANY_ROW``. A statement that
    may have written anything writes the table :data:`EVERY_TABLE`."""

    table: str
    rows: tuple[Any, ...] | None


def _strip(sql: str) -> str:
    if "--" in sql or "/*" in sql:
        sql = _COMMENTS.sub(" ", sql)
    return sql.strip().rstrip(";").strip()


def _always() -> bool:
    return True


class WriteParser:
    """Parses statements into :class:`TableWrite` lists; ``pk_column(table)`` names a table's
    primary key column (``None`` if the table is unknown: then only ``ANY_ROW`` is said)."""

    def __init__(self, pk_column: Callable[[str], str | None]) -> None:
        self._pk_column = pk_column
        self._memo: BoundedMemo[str, Shape | None] = BoundedMemo(_MEMO_ENTRIES)

    def writes(
        self, sql: str, params: Any, many: bool, every_table: Callable[[], bool] = _always
    ) -> list[TableWrite]:
        """The tables ``sql`` writes with ``params`` (a sequence, or a sequence of them when
        ``many``); empty for a statement that writes nothing. A statement that cannot be
        classified writes :data:`EVERY_TABLE` too if ``every_table()`` (asked only then)."""
        shape = self._shape(sql)
        if shape is None:
            return []
        rows = None if shape.any_row else self._rows(shape, params, many)
        found = [TableWrite(table, rows) for table in shape.tables]
        if shape.every_table and every_table():
            found.append(TableWrite(EVERY_TABLE, ANY_ROW))
        return found

    def _shape(self, sql: str) -> Shape | None:
        memo = self._memo
        try:
            return memo[sql]
        except KeyError:
            pass
        return memo.remember(sql, classify(_strip(sql), self._dml))

    def _dml(self, word: str, sql: str) -> Shape:
        placeholders = len(re.findall(_PLACEHOLDER, sql))
        if word == "REPLACE":
            if match := _REPLACE.match(sql):
                return Shape((unquote(match["table"]),), True, None, placeholders)
        elif word in ("INSERT", "UPSERT"):
            if match := _INSERT.match(sql):
                table = unquote(match["table"])
                replacing = (match["or"] or "").upper() == "REPLACE"
                if replacing or _UPSERT_TAIL.search(sql):
                    return Shape((table,), True, None, placeholders)
                keys = self._insert_keys(table, match, sql)
                if keys is None and _SEVERAL_ROWS.search(sql):
                    # Several new rows whose keys the database picks (a bulk_create): no row
                    # signal names them, and one may take a key a cached miss stands for.
                    return Shape((table,), True, None, placeholders)
                return Shape((table,), False, keys, placeholders)
        elif match := (_UPDATE.match(sql) if word == "UPDATE" else _DELETE.match(sql)):
            table = unquote(match["table"])
            count = self._where_keys(table, sql)
            if count is None:
                return Shape((table,), True, None, placeholders)
            return Shape((table,), False, ("where", count, 0), placeholders)
        return fallback(sql)

    def _insert_keys(
        self, table: str, match: re.Match[str], sql: str
    ) -> tuple[str, int, int] | None:
        """Where an INSERT's primary keys are in its parameters; ``None`` when the statement
        does not name them (the database picks them: new rows only)."""
        pk = self._pk_column(table)
        columns = match["columns"]
        if pk is None or columns is None:
            return None
        names = [unquote(name.strip()) for name in columns.split(",")]
        if pk not in names:
            return None
        if not _VALUES_ALL_PLACEHOLDERS.search(sql[match.end() :].strip()):
            return ("unknown", 0, 0)
        return ("insert", names.index(pk), len(names))

    def _where_keys(self, table: str, sql: str) -> int | None:
        """How many trailing parameters are the keys the statement is limited to; ``None``
        if it is not limited to rows named by key."""
        pk = self._pk_column(table)
        if pk is None:
            return None
        column = rf"(?:{IDENT}\s*\.\s*)?{IDENT}"
        where = re.search(
            rf"\bWHERE\s+(?P<column>{column})\s*(?:=\s*{_PLACEHOLDER}|IN\s*\((?P<list>\s*{_PLACEHOLDER}(?:\s*,\s*{_PLACEHOLDER})*)\s*\))\s*$",
            sql,
            re.I,
        )
        if where is None:
            return None
        parts = [unquote(p) for p in re.findall(IDENT, where["column"])]
        if parts[-1] != pk or (len(parts) > 1 and parts[-2] != table):
            return None
        return 1 if where["list"] is None else len(re.findall(_PLACEHOLDER, where["list"]))

    @staticmethod
    def _rows(shape: Shape, params: Any, many: bool) -> tuple[Any, ...] | None:
        keys = shape.keys
        if keys is None:
            return ()  # new rows the database names: no existing row changed
        kind, first, width = keys
        if kind == "unknown":
            return None
        batches: Sequence[Any] = params if many else [params]
        found: list[Any] = []
        for batch in batches:
            if not isinstance(batch, Sequence) or isinstance(batch, str | bytes):
                return None  # named parameters: cannot place them
            if len(batch) != shape.placeholders:
                return None
            if kind == "insert":
                found.extend(batch[first::width])
            else:
                found.extend(batch[len(batch) - first :])
        return tuple(found)
