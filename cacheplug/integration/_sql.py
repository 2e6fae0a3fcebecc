"""Which tables (and, where the statement says so, which rows) an SQL statement writes.

The framework adapters see every statement their ORM sends (Django's ``execute_wrapper``,
SQLAlchemy's ``before_cursor_execute``), including ``QuerySet.update()``, bulk operations and
raw SQL, which no model signal reports. This module reads the statement's shape, never its
data:

- ``INSERT INTO t (...)``: new rows of ``t``; when the primary key column is among the listed
  columns and every value is a placeholder, the keys come from the parameters. An upsert
  (``ON CONFLICT ... DO UPDATE``, ``ON DUPLICATE KEY UPDATE``, ``INSERT OR REPLACE``,
  ``REPLACE``) may change any row.
- ``UPDATE t ... WHERE t.pk = %s`` and ``DELETE FROM t WHERE t.pk IN (%s, ...)``: the rows
  with those keys. Any other ``WHERE`` (or none) may touch any row.
- ``TRUNCATE``, ``DROP``, ``ALTER``: any row.

"Any row" is the safe answer: it costs extra invalidations, never a stale read. Parsing is
memoized by statement text (an ORM repeats a small set of templates).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cacheplug._memo import BoundedMemo

ANY_ROW: Final = None
"""``TableWrite.rows`` when the statement may have written any row of the table."""

_MEMO_ENTRIES: Final = 1024
_IDENT: Final = r'(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
_QUALIFIED: Final = rf"{_IDENT}(?:\s*\.\s*{_IDENT})*"
_PLACEHOLDER: Final = r"(?:%s|\?)"
_COMMENTS: Final = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)
_INSERT: Final = re.compile(
    rf"^(?:INSERT|UPSERT)(?:\s+OR\s+(?P<or>\w+))?(?:\s+IGNORE)?\s+INTO\s+(?P<table>{_QUALIFIED})"
    rf"\s*(?:\((?P<columns>[^)]*)\))?",
    re.I,
)
_REPLACE: Final = re.compile(rf"^REPLACE\s+INTO\s+(?P<table>{_QUALIFIED})", re.I)
_UPDATE: Final = re.compile(rf"^UPDATE\s+(?:ONLY\s+)?(?P<table>{_QUALIFIED})\s+SET\b", re.I)
_DELETE: Final = re.compile(rf"^DELETE\s+FROM\s+(?:ONLY\s+)?(?P<table>{_QUALIFIED})", re.I)
_TRUNCATE: Final = re.compile(r"^TRUNCATE(?:\s+TABLE)?\s+(?:ONLY\s+)?(?P<tables>[^;]+)", re.I)
_DDL: Final = re.compile(
    rf"^(?:DROP|ALTER)\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<table>{_QUALIFIED})", re.I
)
_UPSERT_TAIL: Final = re.compile(
    r"\bON\s+(?:CONFLICT\b[^;]*\bDO\s+UPDATE|DUPLICATE\s+KEY\s+UPDATE)", re.I
)
_SEVERAL_ROWS: Final = re.compile(r"\bVALUES\s*\(.*\)\s*,\s*\(", re.I | re.S)
_STATEMENT_SPLIT: Final = re.compile(r";\s*\S")
_WRITE_HEAD: Final = re.compile(
    r"\(*\s*(?:INSERT|UPSERT|UPDATE|DELETE|REPLACE|MERGE|TRUNCATE)\b", re.I
)
_WRITE_TARGETS: Final = re.compile(
    rf"\b(?:INSERT(?:\s+OR\s+\w+)?(?:\s+IGNORE)?\s+INTO|UPSERT\s+INTO|REPLACE\s+INTO|"
    rf"MERGE\s+INTO|UPDATE(?:\s+OR\s+\w+)?(?:\s+LOW_PRIORITY)?(?:\s+IGNORE)?(?:\s+ONLY)?|"
    rf"DELETE(?:\s+LOW_PRIORITY)?(?:\s+QUICK)?(?:\s+IGNORE)?(?:\s+\w+)?\s+FROM|FROM|JOIN|USING|"
    rf"TRUNCATE(?:\s+TABLE)?)\s+({_QUALIFIED}(?:\s*,\s*{_QUALIFIED})*)",
    re.I,
)
_VALUES_ALL_PLACEHOLDERS: Final = re.compile(
    rf"\bVALUES\s*(?:\(\s*{_PLACEHOLDER}(?:\s*,\s*{_PLACEHOLDER})*\s*\)\s*,?\s*)+"
    r"(?:RETURNING\b.*)?$",
    re.I | re.S,
)


@dataclass(frozen=True, slots=True)
class TableWrite:
    """A table a statement writes, and the primary keys of the rows it writes: a tuple
    (empty for rows it creates without naming their keys), or ``ANY_ROW``."""

    table: str
    rows: tuple[Any, ...] | None


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the text of a statement says, before its parameters are known."""

    tables: tuple[str, ...]
    any_row: bool
    # Where the keys are in the parameters: ("insert", column index, columns per row),
    # ("where", count of trailing parameters), or None (no keys: new rows only / any row).
    keys: tuple[str, int, int] | None
    placeholders: int


def _unquote(identifier: str) -> str:
    last: str = re.findall(_IDENT, identifier)[-1]  # schema-qualified: the table is the last part
    if last[0] in '"`[':
        return last[1:-1]
    return last.lower()  # unquoted names are case-insensitive in SQL


def _strip(sql: str) -> str:
    if "--" in sql or "/*" in sql:
        sql = _COMMENTS.sub(" ", sql)
    return sql.strip().rstrip(";").strip()


class WriteParser:
    """Parses statements into :class:`TableWrite` lists; ``pk_column(table)`` names a table's
    primary key column (``None`` if the table is unknown: then only ``ANY_ROW`` is said)."""

    def __init__(self, pk_column: Callable[[str], str | None]) -> None:
        self._pk_column = pk_column
        self._memo: BoundedMemo[str, _Shape | None] = BoundedMemo(_MEMO_ENTRIES)

    def writes(self, sql: str, params: Any, many: bool) -> list[TableWrite]:
        """The tables ``sql`` writes with ``params`` (a sequence, or a sequence of them when
        ``many``); empty for a statement that writes nothing."""
        shape = self._shape(sql)
        if shape is None:
            return []
        rows = None if shape.any_row else self._rows(shape, params, many)
        return [TableWrite(table, rows) for table in shape.tables]

    def _shape(self, sql: str) -> _Shape | None:
        memo = self._memo
        try:
            return memo[sql]
        except KeyError:
            pass
        return memo.remember(sql, self._parse(_strip(sql)))

    def _parse(self, sql: str) -> _Shape | None:
        if ";" in sql and _STATEMENT_SPLIT.search(sql):
            return self._fallback(sql)  # several statements: every table any of them writes
        shape = self._parse_one(sql)
        if shape is None and _WRITE_HEAD.match(sql):
            return self._fallback(sql)  # a write of a shape not recognised: assume the worst
        return shape

    @staticmethod
    def _fallback(sql: str) -> _Shape | None:
        """Every table named after a writing keyword, any row (the safe answer)."""
        names = [
            _unquote(name)
            for found in _WRITE_TARGETS.findall(sql)
            for name in re.split(r"\s*,\s*", found)
            if name and not re.match(r"(?i)(?:SET|SELECT|ONLY|LOW_PRIORITY|IGNORE|QUICK)\b", name)
        ]
        tables = tuple(dict.fromkeys(names))
        return _Shape(tables, True, None, 0) if tables else None

    def _parse_one(self, sql: str) -> _Shape | None:
        head = sql[:8].upper()
        if head.startswith(("SELECT", "SAVEPOIN", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")):
            return None  # the common case first
        if head.startswith("WITH"):
            # A writable CTE (PostgreSQL) writes from inside: any row of what it names.
            tables = re.findall(
                rf"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+({_QUALIFIED})", sql, re.I
            )
            tables = [t for t in tables if not re.match(r"(?i)SET\b", t)]
            return _Shape(tuple(_unquote(t) for t in tables), True, None, 0) if tables else None
        placeholders = len(re.findall(_PLACEHOLDER, sql))
        if match := _INSERT.match(sql):
            table = _unquote(match["table"])
            replacing = (match["or"] or "").upper() == "REPLACE"
            if replacing or _UPSERT_TAIL.search(sql):
                return _Shape((table,), True, None, placeholders)
            keys = self._insert_keys(table, match, sql)
            if keys is None and _SEVERAL_ROWS.search(sql):
                # Several new rows whose keys the database picks (a bulk_create): no row
                # signal names them, and one may take a key a cached miss stands for.
                return _Shape((table,), True, None, placeholders)
            return _Shape((table,), False, keys, placeholders)
        if match := _REPLACE.match(sql):
            return _Shape((_unquote(match["table"]),), True, None, placeholders)
        if match := _UPDATE.match(sql) or _DELETE.match(sql):
            table = _unquote(match["table"])
            count = self._where_keys(table, sql)
            if count is None:
                return _Shape((table,), True, None, placeholders)
            return _Shape((table,), False, ("where", count, 0), placeholders)
        if match := _TRUNCATE.match(sql):
            names = re.split(
                r"\s*,\s*",
                re.split(r"\s+(?:RESTART|CONTINUE|CASCADE|RESTRICT)", match["tables"], flags=re.I)[
                    0
                ],
            )
            return _Shape(tuple(_unquote(name) for name in names if name), True, None, 0)
        if match := _DDL.match(sql):
            return _Shape((_unquote(match["table"]),), True, None, 0)
        return None

    def _insert_keys(
        self, table: str, match: re.Match[str], sql: str
    ) -> tuple[str, int, int] | None:
        """Where an INSERT's primary keys are in its parameters; ``None`` when the statement
        does not name them (the database picks them: new rows only)."""
        pk = self._pk_column(table)
        columns = match["columns"]
        if pk is None or columns is None:
            return None
        names = [_unquote(name.strip()) for name in columns.split(",")]
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
        column = rf"(?:{_IDENT}\s*\.\s*)?{_IDENT}"
        where = re.search(
            rf"\bWHERE\s+(?P<column>{column})\s*(?:=\s*{_PLACEHOLDER}|IN\s*\((?P<list>\s*{_PLACEHOLDER}(?:\s*,\s*{_PLACEHOLDER})*)\s*\))\s*$",
            sql,
            re.I,
        )
        if where is None:
            return None
        parts = [_unquote(p) for p in re.findall(_IDENT, where["column"])]
        if parts[-1] != pk or (len(parts) > 1 and parts[-2] != table):
            return None
        return 1 if where["list"] is None else len(re.findall(_PLACEHOLDER, where["list"]))

    @staticmethod
    def _rows(shape: _Shape, params: Any, many: bool) -> tuple[Any, ...] | None:
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
