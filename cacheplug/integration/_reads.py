"""Which tables (and, where the statement says so, which rows) an SQL read reads: what a
loader's entry depends on (``depends_on="auto"``).

The shape of a ``SELECT`` (or ``WITH ... SELECT``, ``VALUES``, ``TABLE t``) is read, never its
data:

- every table after ``FROM`` or ``JOIN`` (comma-separated lists too, subqueries included; a
  common table expression's own name is not a table; a function after ``FROM`` is not one);
- the rows of one table, when the statement's only condition names them by primary key:
  ``... FROM t [JOIN ...] WHERE t.pk = %s`` or ``WHERE t.pk IN (%s, ...)`` (then an
  ``ORDER BY``, ``LIMIT``, ``OFFSET`` or ``FOR UPDATE`` may follow), every parameter of the
  statement being one of those keys. That is Django's ``get(pk=...)`` and SQLAlchemy's
  ``session.get()``. Any other condition reads any row (:data:`ANY_ROW`); so does every
  table joined to it.

Reading too much is the safe error (an entry invalidated by a write it did not depend on
costs a miss); reading too little would leave it stale: a statement this module cannot read
reads every table (:data:`EVERY_TABLE`). Statements that are not reads (writes, transaction
control, ``SET``...) read nothing here. Parsing is memoized by statement text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cacheplug._memo import BoundedMemo
from cacheplug.integration._sql import ANY_ROW, EVERY_TABLE
from cacheplug.integration._statements import IDENT, QUALIFIED, unquote

_MEMO_ENTRIES: Final = 2048
_PLACEHOLDER: Final = r"(?:%s|\?|%\(\w+\)s|:\w+|\$\d+)"
_COMMENTS: Final = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)
_LITERALS: Final = re.compile(r"'(?:[^']|'')*'")
_HEAD: Final = re.compile(r"[\s(]*([A-Za-z]+)")
_READ_HEADS: Final = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
_TABLE_STATEMENT: Final = re.compile(rf"^\s*TABLE\s+(?P<table>{QUALIFIED})", re.I)
# A source after FROM or JOIN: a name, then a list of them (FROM a, b); a "(" is a subquery
# (its own FROM is found on its own) and a name followed by "(" a function.
_SOURCES: Final = re.compile(
    rf"\b(?:FROM|JOIN)\s+(?P<first>{QUALIFIED})(?![\w$])(?!\s*\()"
    rf"(?P<rest>(?:\s+(?:AS\s+)?(?!(?:WHERE|ON|USING|JOIN|INNER|LEFT|RIGHT|FULL|CROSS|NATURAL|"
    rf"GROUP|ORDER|LIMIT|OFFSET|HAVING|UNION|EXCEPT|INTERSECT|WINDOW|FOR|FETCH|LATERAL)\b)"
    rf"{IDENT})?(?:\s*,\s*{QUALIFIED}(?![\w$])(?!\s*\()(?:\s+(?:AS\s+)?{IDENT})?)*)",
    re.I,
)
_LISTED: Final = re.compile(rf",\s*({QUALIFIED})", re.I)
_CTE_NAMES: Final = re.compile(
    rf"(?:\bWITH(?:\s+RECURSIVE)?|,)\s*({IDENT})\s*(?:\([^)]*\))?\s*AS\s*\(", re.I
)
# FROM inside a function call reads no table: EXTRACT(YEAR FROM d), SUBSTRING(s FROM 2),
# TRIM(BOTH ' ' FROM s), OVERLAY(... FROM ...), POSITION(a IN b) has none.
_FUNCTION_FROM: Final = re.compile(
    r"\b(?:EXTRACT|SUBSTRING|SUBSTR|TRIM|OVERLAY)\s*\([^()]*\bFROM\b[^()]*\)", re.I
)
_KEYED: Final = re.compile(
    rf"\bWHERE\s+(?P<column>(?:{IDENT}\s*\.\s*)*{IDENT})\s*"
    rf"(?:=\s*(?P<one>{_PLACEHOLDER})|IN\s*\((?P<list>\s*{_PLACEHOLDER}(?:\s*,\s*{_PLACEHOLDER})*)\s*\))"
    rf"\s*(?:(?:ORDER\s+BY\s+[^;]*?)?(?:\s*LIMIT\s+(?:\d+|{_PLACEHOLDER}))?"
    rf"(?:\s*OFFSET\s+\d+)?(?:\s*FOR\s+(?:UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b[^;]*)?)\s*$",
    re.I | re.S,
)


@dataclass(frozen=True, slots=True)
class TableRead:
    """A table a statement reads, and the primary keys of the rows it reads (a tuple), or
    ``ANY_ROW``. A statement that cannot be read reads the table :data:`EVERY_TABLE`."""

    table: str
    rows: tuple[Any, ...] | None


@dataclass(frozen=True, slots=True)
class _ReadShape:
    tables: tuple[str, ...]
    keyed: str | None  # the table read by key, if any
    keys: int  # how many trailing parameters are its keys (the statement's only ones)
    placeholders: int


class ReadParser:
    """Parses statements into :class:`TableRead` lists; ``pk_column(table)`` names a table's
    primary key column (``None`` if unknown: its reads are of any row)."""

    def __init__(self, pk_column: Callable[[str], str | None]) -> None:
        self._pk_column = pk_column
        self._memo: BoundedMemo[str, _ReadShape | None] = BoundedMemo(_MEMO_ENTRIES)

    def reads(self, sql: str, params: Any) -> list[TableRead]:
        """What ``sql`` reads with ``params``; empty for a statement that is not a read."""
        shape = self._shape(sql)
        if shape is None:
            return []
        rows = self._rows(shape, params)
        return [
            TableRead(table, rows if table == shape.keyed else ANY_ROW) for table in shape.tables
        ]

    def keyless(self, sql: str) -> bool:
        """True when ``sql`` (parsed already) names no row, whatever its parameters."""
        shape = self._memo.get(sql)
        return shape is None or shape.keyed is None

    def _shape(self, sql: str) -> _ReadShape | None:
        memo = self._memo
        try:
            return memo[sql]
        except KeyError:
            return memo.remember(sql, self._parse(sql))

    def _parse(self, sql: str) -> _ReadShape | None:
        text = _COMMENTS.sub(" ", sql) if ("--" in sql or "/*" in sql) else sql
        text = _LITERALS.sub("''", text).strip().rstrip(";").strip()
        head = _HEAD.match(text)
        if head is None or head[1].upper() not in _READ_HEADS:
            return None
        if head[1].upper() == "TABLE":
            match = _TABLE_STATEMENT.match(text)
            if match is None:
                return _ReadShape((EVERY_TABLE,), None, 0, 0)
            return _ReadShape((_name(match["table"]),), None, 0, 0)
        if head[1].upper() == "VALUES" and not _SOURCES.search(text):
            return _ReadShape((), None, 0, 0)
        searched = _FUNCTION_FROM.sub(" ", text)
        ctes = {unquote(name).lower() for name in _CTE_NAMES.findall(searched)}
        tables: dict[str, None] = {}
        for match in _SOURCES.finditer(searched):
            names = [match["first"], *_LISTED.findall(match["rest"] or "")]
            for name in names:
                table = _name(name)
                if table.lower() not in ctes:
                    tables[table] = None
        if not tables and not ctes:
            if re.search(r"\bFROM\b", searched, re.I):
                return _ReadShape((EVERY_TABLE,), None, 0, 0)  # a FROM this module cannot read
            return _ReadShape((), None, 0, 0)  # SELECT 1, SELECT now()
        placeholders = len(re.findall(_PLACEHOLDER, text))
        keyed, keys = self._keyed(text, tables, placeholders)
        return _ReadShape(tuple(tables), keyed, keys, placeholders)

    def _keyed(
        self, text: str, tables: dict[str, None], placeholders: int
    ) -> tuple[str | None, int]:
        """The table whose rows the statement's only condition names by primary key, and how
        many keys (the statement's only parameters); ``(None, 0)`` if none."""
        if placeholders == 0 or re.search(
            r"\b(?:UNION|EXCEPT|INTERSECT)\b|\(\s*SELECT\b", text, re.I
        ):
            return None, 0
        match = _KEYED.search(text)
        if match is None:
            return None, 0
        keys = 1 if match["list"] is None else len(re.findall(_PLACEHOLDER, match["list"]))
        if keys != placeholders:
            return None, 0
        parts = [unquote(part) for part in re.findall(IDENT, match["column"])]
        column, qualifier = parts[-1], (parts[-2] if len(parts) > 1 else None)
        if qualifier is None:
            if len(tables) != 1:
                return None, 0
            [table] = tables
        else:
            table = next((t for t in tables if t == qualifier), "")
            if not table:
                return None, 0
        if self._pk_column(table) != column:
            return None, 0
        return table, keys

    @staticmethod
    def _rows(shape: _ReadShape, params: Any) -> tuple[Any, ...] | None:
        if shape.keyed is None:
            return ANY_ROW
        if isinstance(params, list | tuple):  # what drivers take, ahead of the slower checks
            values: Sequence[Any] = params
        elif isinstance(params, dict):
            values = list(params.values())
        elif isinstance(params, Sequence) and not isinstance(params, str | bytes):
            values = params
        else:
            return ANY_ROW
        if len(values) != shape.placeholders:
            return ANY_ROW
        return tuple(values[len(values) - shape.keys :])


def _name(qualified: str) -> str:
    """A table's bare name (``"public"."shop_product"`` -> ``shop_product``): as ORMs and the
    tags name tables."""
    return unquote(qualified)
