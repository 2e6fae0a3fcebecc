"""Which tables (and, where the statement says so, which rows) an SQL statement writes.

The framework adapters see every statement their ORM sends (Django's ``execute_wrapper``,
SQLAlchemy's ``before_cursor_execute``), including ``QuerySet.update()``, bulk operations and
raw SQL, which no model signal reports. This module reads the statement's shape, never its
data. A statement is classified by its first keyword (after comments, whitespace and opening
parentheses):

- ``INSERT INTO t (...)``: new rows of ``t``; when the primary key column is among the listed
  columns and every value is a placeholder, the keys come from the parameters. An upsert
  (``ON CONFLICT ... DO UPDATE``, ``ON DUPLICATE KEY UPDATE``, ``INSERT OR REPLACE``,
  ``REPLACE``) may change any row.
- ``UPDATE t ... WHERE t.pk = %s`` and ``DELETE FROM t WHERE t.pk IN (%s, ...)``: the rows
  with those keys. Any other ``WHERE`` (or none) may touch any row.
- ``TRUNCATE``, ``DROP``/``ALTER TABLE`` (and ``VIEW``), ``RENAME TABLE``,
  ``CREATE OR REPLACE VIEW``, ``REFRESH MATERIALIZED VIEW``, ``COPY t FROM``,
  ``LOAD DATA ... INTO TABLE t``, ``SELECT ... INTO t``, ``MERGE``: any row of the tables
  named. ``EXPLAIN ANALYZE`` runs its statement: that statement's writes.
- Reads and statements that change no table's rows write nothing: ``SELECT``, ``WITH``
  without a writing part, ``VALUES``, ``TABLE``, ``SHOW``, plain ``EXPLAIN``, transaction
  control (``BEGIN``, ``COMMIT``, ``SAVEPOINT``, ``RELEASE``, ...), ``SET``/``RESET``,
  ``PRAGMA``, cursors, ``LISTEN``/``NOTIFY``, ``PREPARE``/``DEALLOCATE``, maintenance
  (``ANALYZE``, ``VACUUM``, ...), ``GRANT``/``REVOKE``/``COMMENT``, ``COPY ... TO``, and DDL
  of anything but tables and views (``CREATE TABLE``/``INDEX`` make something no cached
  entry read yet).
- Everything else may have written anything: ``CALL``, ``DO``, ``EXECUTE``, a procedural
  block, a keyword not listed above. Such a statement writes :data:`EVERY_TABLE` (unless the
  caller says otherwise: the adapters' ``UNKNOWN_SQL`` setting). Several statements in one
  string write what each of them writes.

"Any row" (and "every table") is the safe answer: it costs extra invalidations, never a stale
read. Parsing is memoized by statement text (an ORM repeats a small set of templates).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cacheplug._memo import BoundedMemo

ANY_ROW: Final = None
"""``TableWrite.rows`` when the statement may have written any row of the table."""
EVERY_TABLE: Final = "*"
"""``TableWrite.table`` of a statement that may have written any row of any table: one that
cannot be classified as a read (``CALL``, ``DO``, ``EXECUTE``, a keyword not known here)."""

_MEMO_ENTRIES: Final = 1024
_IDENT: Final = r'(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
_QUALIFIED: Final = rf"{_IDENT}(?:\s*\.\s*{_IDENT})*"
_NAMES: Final = rf"{_QUALIFIED}(?:\s*,\s*{_QUALIFIED})*"
_PLACEHOLDER: Final = r"(?:%s|\?)"
_COMMENTS: Final = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)
_HEAD: Final = re.compile(r"[\s(]*([A-Za-z]+)")
_LITERALS: Final = re.compile(r"'(?:[^']|'')*'")
_ONE_STATEMENT: Final = re.compile(r"""(?:'(?:[^']|'')*'|"[^"]*"|`[^`]*`|[^;'"`])+""")
_INSERT: Final = re.compile(
    rf"^(?:INSERT|UPSERT)(?:\s+OR\s+(?P<or>\w+))?(?:\s+IGNORE)?\s+INTO\s+(?P<table>{_QUALIFIED})"
    rf"\s*(?:\((?P<columns>[^)]*)\))?",
    re.I,
)
_REPLACE: Final = re.compile(
    rf"^REPLACE\s+(?:(?:LOW_PRIORITY|DELAYED)\s+)?(?:INTO\s+)?(?P<table>{_QUALIFIED})", re.I
)
_UPDATE: Final = re.compile(rf"^UPDATE\s+(?:ONLY\s+)?(?P<table>{_QUALIFIED})\s+SET\b", re.I)
_DELETE: Final = re.compile(rf"^DELETE\s+FROM\s+(?:ONLY\s+)?(?P<table>{_QUALIFIED})", re.I)
_TRUNCATE: Final = re.compile(r"^TRUNCATE(?:\s+TABLE)?\s+(?:ONLY\s+)?(?P<tables>[^;]+)", re.I)
_DDL: Final = re.compile(
    rf"^(?:DROP|ALTER)\s+(?:TABLE|(?:MATERIALIZED\s+)?VIEW)\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?"
    rf"(?P<tables>{_NAMES})",
    re.I,
)
_RENAMED_TO: Final = re.compile(rf"\bRENAME\s+TO\s+(?P<table>{_QUALIFIED})", re.I)
_RENAME_TABLE: Final = re.compile(
    rf"(?:^RENAME\s+TABLE|,)\s*({_QUALIFIED})\s+TO\s+({_QUALIFIED})", re.I
)
_REPLACED_VIEW: Final = re.compile(
    r"^CREATE\s+OR\s+REPLACE\s+(?:(?:TEMP|TEMPORARY|RECURSIVE|MATERIALIZED|FORCE|NOFORCE|"
    r"ALGORITHM\s*=\s*\w+|DEFINER\s*=\s*\S+|SQL\s+SECURITY\s+\w+)\s+)*"
    rf"VIEW\s+(?P<table>{_QUALIFIED})",
    re.I,
)
_REFRESH: Final = re.compile(
    rf"^REFRESH\s+MATERIALIZED\s+VIEW\s+(?:CONCURRENTLY\s+)?(?P<table>{_QUALIFIED})", re.I
)
_COPY_FROM: Final = re.compile(
    rf"^COPY\s+(?:BINARY\s+)?(?P<table>{_QUALIFIED})\s*(?:\([^)]*\))?\s*FROM\b", re.I
)
_COPY_TO: Final = re.compile(rf"^COPY\s+(?:BINARY\s+)?{_QUALIFIED}\s*(?:\([^)]*\))?\s*TO\b", re.I)
_COPY_QUERY: Final = re.compile(r"^COPY\s*(?=\()", re.I)
_LOAD: Final = re.compile(
    rf"^LOAD\s+(?:DATA|XML)\b.*?\bINTO\s+TABLE\s+(?P<table>{_QUALIFIED})", re.I | re.S
)
_LOAD_LIBRARY: Final = re.compile(r"^LOAD\s*'", re.I)
_EXPLAIN: Final = re.compile(
    r"^EXPLAIN\s*(?:\((?P<options>[^)]*)\)|(?P<words>(?:\s*(?:ANALYZE|ANALYSE|VERBOSE|"
    r"EXTENDED|PARTITIONS|QUERY\s+PLAN|FORMAT\s*=\s*\w+)\b)*))\s*(?P<statement>.*)$",
    re.I | re.S,
)
_OFF: Final = frozenset({"FALSE", "OFF", "0", "NO"})
_INTO: Final = re.compile(r"\bINTO\b", re.I)
_SELECT_INTO: Final = re.compile(
    rf"\bINTO\s+(?:(?:TEMP|TEMPORARY|UNLOGGED|TABLE)\s+)*"
    rf"(?:(?P<variable>@|OUTFILE\b|DUMPFILE\b)|(?P<table>{_QUALIFIED}))",
    re.I,
)
_CTE_WRITES: Final = re.compile(
    rf"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO)\s+({_QUALIFIED})",
    re.I,
)
_BEGIN: Final = re.compile(
    r"^BEGIN(?:\s+(?:TRANSACTION|WORK|DEFERRED|IMMEDIATE|EXCLUSIVE|ISOLATION|LEVEL|"
    r"SERIALIZABLE|REPEATABLE|READ|COMMITTED|UNCOMMITTED|WRITE|ONLY|NOT|DEFERRABLE)\b|\s*,)*"
    r"\s*$",
    re.I,
)
_CURSOR: Final = re.compile(rf"^DECLARE\s+(?:@|{_IDENT}\s+(?:\w+\s+)*?CURSOR\b)", re.I)
_UPSERT_TAIL: Final = re.compile(
    r"\bON\s+(?:CONFLICT\b[^;]*\bDO\s+UPDATE|DUPLICATE\s+KEY\s+UPDATE)", re.I
)
_SEVERAL_ROWS: Final = re.compile(r"\bVALUES\s*\(.*\)\s*,\s*\(", re.I | re.S)
_STATEMENT_SPLIT: Final = re.compile(r";\s*\S")
_WRITE_TARGETS: Final = re.compile(
    rf"\b(?:INSERT(?:\s+OR\s+\w+)?(?:\s+IGNORE)?\s+INTO|UPSERT\s+INTO|REPLACE\s+INTO|"
    rf"MERGE\s+INTO|UPDATE(?:\s+OR\s+\w+)?(?:\s+LOW_PRIORITY)?(?:\s+IGNORE)?(?:\s+ONLY)?|"
    rf"DELETE(?:\s+LOW_PRIORITY)?(?:\s+QUICK)?(?:\s+IGNORE)?(?:\s+\w+)?\s+FROM|FROM|JOIN|USING|"
    rf"TRUNCATE(?:\s+TABLE)?|INTO)\s+({_NAMES})",
    re.I,
)
_VALUES_ALL_PLACEHOLDERS: Final = re.compile(
    rf"\bVALUES\s*(?:\(\s*{_PLACEHOLDER}(?:\s*,\s*{_PLACEHOLDER})*\s*\)\s*,?\s*)+"
    r"(?:RETURNING\b.*)?$",
    re.I | re.S,
)
_CHANGES_NO_ROWS: Final = frozenset(
    {
        # reads
        "SHOW", "DESCRIBE", "DESC", "VALUES", "TABLE", "FETCH", "MOVE", "CLOSE", "HANDLER",
        "CHECK", "CHECKSUM", "HELP",
        # transactions, sessions, notifications, prepared statements (EXECUTE runs them)
        "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "XA", "SET",
        "RESET", "USE", "PRAGMA", "LISTEN", "NOTIFY", "UNLISTEN", "PREPARE", "DEALLOCATE",
        "DISCARD", "LOCK", "UNLOCK", "KILL", "ATTACH", "DETACH",
        # maintenance and privileges
        "ANALYZE", "ANALYSE", "VACUUM", "REINDEX", "CHECKPOINT", "CLUSTER", "OPTIMIZE",
        "FLUSH", "GRANT", "REVOKE", "COMMENT",
    }
)  # fmt: skip
"""First keywords of statements that change no table's rows."""


@dataclass(frozen=True, slots=True)
class TableWrite:
    """A table a statement writes, and the primary keys of the rows it writes: a tuple
    (empty for rows it creates without naming their keys), or ``ANY_ROW``. A statement that
    may have written anything writes the table :data:`EVERY_TABLE`."""

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
    every_table: bool = False
    """It may also have written any row of any table (it could not be classified)."""


_UNKNOWN: Final = _Shape((), True, None, 0, every_table=True)


def _unquote(identifier: str) -> str:
    last: str = re.findall(_IDENT, identifier)[-1]  # schema-qualified: the table is the last part
    if last[0] in '"`[':
        return last[1:-1]
    return last.lower()  # unquoted names are case-insensitive in SQL


def _strip(sql: str) -> str:
    if "--" in sql or "/*" in sql:
        sql = _COMMENTS.sub(" ", sql)
    return sql.strip().rstrip(";").strip()


def _any_row_of(*names: str) -> _Shape:
    return _Shape(tuple(dict.fromkeys(_unquote(name) for name in names if name)), True, None, 0)


def _always() -> bool:
    return True


class WriteParser:
    """Parses statements into :class:`TableWrite` lists; ``pk_column(table)`` names a table's
    primary key column (``None`` if the table is unknown: then only ``ANY_ROW`` is said)."""

    def __init__(self, pk_column: Callable[[str], str | None]) -> None:
        self._pk_column = pk_column
        self._memo: BoundedMemo[str, _Shape | None] = BoundedMemo(_MEMO_ENTRIES)

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

    def _shape(self, sql: str) -> _Shape | None:
        memo = self._memo
        try:
            return memo[sql]
        except KeyError:
            pass
        return memo.remember(sql, self._parse(_strip(sql)))

    def _parse(self, sql: str) -> _Shape | None:
        if ";" in sql and _STATEMENT_SPLIT.search(sql):
            return self._several(sql)
        return self._parse_one(sql)

    def _several(self, sql: str) -> _Shape | None:
        """Several statements: any row of every table any of them writes."""
        parts = [part.strip() for part in _ONE_STATEMENT.findall(sql)]
        parts = [part for part in parts if part]
        if len(parts) == 1:  # one statement, with a ";" in a literal
            return self._parse_one(parts[0])
        tables: list[str] = []
        every_table = False
        for part in parts:
            shape = self._parse_one(part)
            if shape is not None:
                tables += shape.tables
                every_table = every_table or shape.every_table
        if not tables and not every_table:
            return None
        return _Shape(tuple(dict.fromkeys(tables)), True, None, 0, every_table)

    @staticmethod
    def _fallback(sql: str) -> _Shape:
        """A write of a shape not recognised: every table named after a writing keyword, any
        row (the safe answer); every table if it names none."""
        names = [
            name
            for found in _WRITE_TARGETS.findall(sql)
            for name in re.split(r"\s*,\s*", found)
            if name and not re.match(r"(?i)(?:SET|SELECT|ONLY|LOW_PRIORITY|IGNORE|QUICK)\b", name)
        ]
        return _any_row_of(*names) if names else _UNKNOWN

    def _parse_one(self, sql: str) -> _Shape | None:
        head = _HEAD.match(sql)
        if head is None:
            return _UNKNOWN if sql.strip("(); \t\r\n") else None
        word = head[1].upper()
        if word in _CHANGES_NO_ROWS:
            return None
        sql = sql[head.start(1) :]  # without the opening parentheses
        if word == "SELECT":
            return _select_into(sql)
        if word in ("INSERT", "UPSERT", "REPLACE", "UPDATE", "DELETE"):
            return self._dml(word, sql)
        reader = _READERS.get(word)
        if reader is None:
            return _UNKNOWN  # CALL, DO, EXECUTE, a procedural block, a keyword not known here
        return reader(self, sql)

    def _dml(self, word: str, sql: str) -> _Shape:
        placeholders = len(re.findall(_PLACEHOLDER, sql))
        if word == "REPLACE":
            if match := _REPLACE.match(sql):
                return _Shape((_unquote(match["table"]),), True, None, placeholders)
        elif word in ("INSERT", "UPSERT"):
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
        elif match := (_UPDATE.match(sql) if word == "UPDATE" else _DELETE.match(sql)):
            table = _unquote(match["table"])
            count = self._where_keys(table, sql)
            if count is None:
                return _Shape((table,), True, None, placeholders)
            return _Shape((table,), False, ("where", count, 0), placeholders)
        return self._fallback(sql)

    def _with(self, sql: str) -> _Shape | None:
        # A writable CTE (PostgreSQL) writes from inside: any row of what it names.
        tables = [t for t in _CTE_WRITES.findall(sql) if not re.match(r"(?i)SET\b", t)]
        return _any_row_of(*tables) if tables else _select_into(sql)

    def _truncate(self, sql: str) -> _Shape:
        match = _TRUNCATE.match(sql)
        if match is None:
            return self._fallback(sql)
        listed = re.split(r"\s+(?:RESTART|CONTINUE|CASCADE|RESTRICT)", match["tables"], flags=re.I)
        return _any_row_of(*re.split(r"\s*,\s*", listed[0]))

    def _merge(self, sql: str) -> _Shape:
        return self._fallback(sql)

    def _ddl(self, sql: str) -> _Shape | None:
        """DDL changes rows only of the tables and views it drops, alters, renames, replaces
        or refreshes; a new table, an index, a sequence... holds nothing cached yet."""
        if match := _DDL.match(sql):
            names = re.split(r"\s*,\s*", match["tables"])
            names += _RENAMED_TO.findall(sql)
            return _any_row_of(*names)
        if match := _REPLACED_VIEW.match(sql) or _REFRESH.match(sql):
            return _any_row_of(match["table"])
        if renamed := _RENAME_TABLE.findall(sql):
            return _any_row_of(*(name for pair in renamed for name in pair))
        return None

    def _explain(self, sql: str) -> _Shape | None:
        """``EXPLAIN ANALYZE`` runs the statement (PostgreSQL, MySQL); plain ``EXPLAIN``
        does not."""
        match = _EXPLAIN.match(sql)
        if match is None:
            return None
        if match["options"] is not None:
            runs = False
            for option in match["options"].split(","):
                name, *value = re.split(r"\s+", option.strip(), maxsplit=1)
                if name.upper() in ("ANALYZE", "ANALYSE"):
                    runs = not value or value[0].upper() not in _OFF
        else:
            runs = re.search(r"(?i)\bANALY[SZ]E\b", match["words"] or "") is not None
        return self._parse_one(match["statement"]) if runs else None

    def _copy(self, sql: str) -> _Shape | None:
        if match := _COPY_FROM.match(sql):
            return _any_row_of(match["table"])
        if _COPY_TO.match(sql):
            return None  # a table's rows out to a file
        if query := _COPY_QUERY.match(sql):  # (a query) TO ...: what the query writes
            return self._parse_one(sql[query.end() :])
        return _UNKNOWN

    def _load(self, sql: str) -> _Shape | None:
        if match := _LOAD.match(sql):  # LOAD DATA / LOAD XML (MySQL)
            return _any_row_of(match["table"])
        return None if _LOAD_LIBRARY.match(sql) else _UNKNOWN  # LOAD 'library' (PostgreSQL)

    def _begin(self, sql: str) -> _Shape | None:
        # A transaction starts; anything else after BEGIN is a procedural block.
        return None if _BEGIN.match(sql) else _UNKNOWN

    def _declare(self, sql: str) -> _Shape | None:
        # A cursor (its query is a read) or a variable; otherwise a procedural block.
        return None if _CURSOR.match(sql) else _UNKNOWN

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


def _select_into(sql: str) -> _Shape | None:
    """``SELECT ... INTO t`` fills a new table ``t`` (PostgreSQL); ``INTO @variable``,
    ``OUTFILE``, ``DUMPFILE`` (MySQL) write no table; any other ``SELECT`` is a read."""
    if _INTO.search(sql) is None:
        return None
    match = _SELECT_INTO.search(_LITERALS.sub("''", sql))
    if match is None or match["table"] is None:
        return None
    return _any_row_of(match["table"])


_READERS: Final[dict[str, Callable[[WriteParser, str], _Shape | None]]] = {
    "WITH": WriteParser._with,
    "TRUNCATE": WriteParser._truncate,
    "MERGE": WriteParser._merge,
    "CREATE": WriteParser._ddl,
    "DROP": WriteParser._ddl,
    "ALTER": WriteParser._ddl,
    "RENAME": WriteParser._ddl,
    "REFRESH": WriteParser._ddl,
    "EXPLAIN": WriteParser._explain,
    "COPY": WriteParser._copy,
    "LOAD": WriteParser._load,
    "BEGIN": WriteParser._begin,
    "DECLARE": WriteParser._declare,
}
"""How the statements starting with these keywords are read; a keyword neither here nor in
``_CHANGES_NO_ROWS`` (nor a DML one) writes every table."""
