"""What kind of statement an SQL text is: a read, a write of the tables it names, or a
statement that may have written anything.

A statement is classified by its first keyword (after comments, whitespace and opening
parentheses); :func:`classify` hands ``INSERT``/``UPSERT``/``REPLACE``/``UPDATE``/``DELETE`` to
the caller (``cacheplug.integration._sql``, which reads which rows they write) and answers
the rest itself:

- ``TRUNCATE``, ``DROP``/``ALTER TABLE`` (and ``VIEW``), ``RENAME TABLE``,
  ``CREATE OR REPLACE VIEW``, ``REFRESH MATERIALIZED VIEW``, ``COPY t FROM``,
  ``LOAD DATA ... INTO TABLE t``, ``SELECT ... INTO t``, ``MERGE``, a writable CTE: any row
  of the tables named. ``EXPLAIN ANALYZE`` runs its statement: that statement's writes.
- Reads and statements that change no table's rows write nothing: ``SELECT``, ``WITH``
  without a writing part, ``VALUES``, ``TABLE``, ``SHOW``, plain ``EXPLAIN``, transaction
  control (``BEGIN``, ``COMMIT``, ``SAVEPOINT``, ``RELEASE``, ...), ``SET``/``RESET``,
  ``PRAGMA``, cursors, ``LISTEN``/``NOTIFY``, ``PREPARE``/``DEALLOCATE`` (``EXECUTE`` runs
  what was prepared), maintenance (``ANALYZE``, ``VACUUM``, ...), ``GRANT``/``REVOKE``/
  ``COMMENT``, ``COPY ... TO``, and DDL of anything but tables and views (a new table or
  index holds nothing cached yet).
- Everything else may have written anything (:data:`UNKNOWN`): ``CALL``, ``DO``, ``EXECUTE``,
  a procedural block, a keyword not listed above, a write that names no table.

Several statements in one string write what each of them writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

IDENT: Final = r'(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
QUALIFIED: Final = rf"{IDENT}(?:\s*\.\s*{IDENT})*"
_NAMES: Final = rf"{QUALIFIED}(?:\s*,\s*{QUALIFIED})*"
_HEAD: Final = re.compile(r"[\s(]*([A-Za-z]+)")
_LITERALS: Final = re.compile(r"'(?:[^']|'')*'")
_ONE_STATEMENT: Final = re.compile(r"""(?:'(?:[^']|'')*'|"[^"]*"|`[^`]*`|[^;'"`])+""")
_TRUNCATE: Final = re.compile(r"^TRUNCATE(?:\s+TABLE)?\s+(?:ONLY\s+)?(?P<tables>[^;]+)", re.I)
_DDL: Final = re.compile(
    rf"^(?:DROP|ALTER)\s+(?:TABLE|(?:MATERIALIZED\s+)?VIEW)\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?"
    rf"(?P<tables>{_NAMES})",
    re.I,
)
_RENAMED_TO: Final = re.compile(rf"\bRENAME\s+TO\s+(?P<table>{QUALIFIED})", re.I)
_RENAME_TABLE: Final = re.compile(
    rf"(?:^RENAME\s+TABLE|,)\s*({QUALIFIED})\s+TO\s+({QUALIFIED})", re.I
)
_REPLACED_VIEW: Final = re.compile(
    r"^CREATE\s+OR\s+REPLACE\s+(?:(?:TEMP|TEMPORARY|RECURSIVE|MATERIALIZED|FORCE|NOFORCE|"
    r"ALGORITHM\s*=\s*\w+|DEFINER\s*=\s*\S+|SQL\s+SECURITY\s+\w+)\s+)*"
    rf"VIEW\s+(?P<table>{QUALIFIED})",
    re.I,
)
_REFRESH: Final = re.compile(
    rf"^REFRESH\s+MATERIALIZED\s+VIEW\s+(?:CONCURRENTLY\s+)?(?P<table>{QUALIFIED})", re.I
)
_COPY_FROM: Final = re.compile(
    rf"^COPY\s+(?:BINARY\s+)?(?P<table>{QUALIFIED})\s*(?:\([^)]*\))?\s*FROM\b", re.I
)
_COPY_TO: Final = re.compile(rf"^COPY\s+(?:BINARY\s+)?{QUALIFIED}\s*(?:\([^)]*\))?\s*TO\b", re.I)
_COPY_QUERY: Final = re.compile(r"^COPY\s*(?=\()", re.I)
_LOAD: Final = re.compile(
    rf"^LOAD\s+(?:DATA|XML)\b.*?\bINTO\s+TABLE\s+(?P<table>{QUALIFIED})", re.I | re.S
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
    rf"(?:(?P<variable>@|OUTFILE\b|DUMPFILE\b)|(?P<table>{QUALIFIED}))",
    re.I,
)
_CTE_WRITES: Final = re.compile(
    rf"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO)\s+({QUALIFIED})",
    re.I,
)
_BEGIN: Final = re.compile(
    r"^BEGIN(?:\s+(?:TRANSACTION|WORK|DEFERRED|IMMEDIATE|EXCLUSIVE|ISOLATION|LEVEL|"
    r"SERIALIZABLE|REPEATABLE|READ|COMMITTED|UNCOMMITTED|WRITE|ONLY|NOT|DEFERRABLE)\b|\s*,)*"
    r"\s*$",
    re.I,
)
_CURSOR: Final = re.compile(rf"^DECLARE\s+(?:@|{IDENT}\s+(?:\w+\s+)*?CURSOR\b)", re.I)
_STATEMENT_SPLIT: Final = re.compile(r";\s*\S")
_WRITE_TARGETS: Final = re.compile(
    rf"\b(?:INSERT(?:\s+OR\s+\w+)?(?:\s+IGNORE)?\s+INTO|UPSERT\s+INTO|REPLACE\s+INTO|"
    rf"MERGE\s+INTO|UPDATE(?:\s+OR\s+\w+)?(?:\s+LOW_PRIORITY)?(?:\s+IGNORE)?(?:\s+ONLY)?|"
    rf"DELETE(?:\s+LOW_PRIORITY)?(?:\s+QUICK)?(?:\s+IGNORE)?(?:\s+\w+)?\s+FROM|FROM|JOIN|USING|"
    rf"TRUNCATE(?:\s+TABLE)?|INTO)\s+({_NAMES})",
    re.I,
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
class Shape:
    """What the text of a statement says, before its parameters are known."""

    tables: tuple[str, ...]
    any_row: bool
    # Where the keys are in the parameters: ("insert", column index, columns per row),
    # ("where", count of trailing parameters), or None (no keys: new rows only / any row).
    keys: tuple[str, int, int] | None
    placeholders: int
    every_table: bool = False
    """It may also have written any row of any table (it could not be classified)."""


UNKNOWN: Final = Shape((), True, None, 0, every_table=True)
"""A statement that may have written anything."""
DML: Final = frozenset({"INSERT", "UPSERT", "REPLACE", "UPDATE", "DELETE"})
"""The first keywords :func:`classify` hands to its caller."""
Dml = Callable[[str, str], Shape]
"""``dml(first keyword, statement)``: the shape of an ``INSERT``, ``UPDATE``, ... statement."""


def unquote(identifier: str) -> str:
    """A table's name as written (schema-qualified: its last part)."""
    last: str = re.findall(IDENT, identifier)[-1]
    if last[0] in '"`[':
        return last[1:-1]
    return last.lower()  # unquoted names are case-insensitive in SQL


def any_row_of(*names: str) -> Shape:
    """Any row of the tables ``names``."""
    return Shape(tuple(dict.fromkeys(unquote(name) for name in names if name)), True, None, 0)


def fallback(sql: str) -> Shape:
    """A write of a shape not recognised: every table named after a writing keyword, any row
    (the safe answer); every table if it names none."""
    names = [
        name
        for found in _WRITE_TARGETS.findall(sql)
        for name in re.split(r"\s*,\s*", found)
        if name and not re.match(r"(?i)(?:SET|SELECT|ONLY|LOW_PRIORITY|IGNORE|QUICK)\b", name)
    ]
    return any_row_of(*names) if names else UNKNOWN


def classify(sql: str, dml: Dml) -> Shape | None:
    """The shape of ``sql`` (comments stripped); ``None`` for a statement that writes
    nothing."""
    if ";" in sql and _STATEMENT_SPLIT.search(sql):
        parts = [part.strip() for part in _ONE_STATEMENT.findall(sql)]
        parts = [part for part in parts if part]
        if len(parts) > 1:
            return _several(parts, dml)
        sql = parts[0] if parts else ""  # one statement, with a ";" in a literal
    return _one(sql, dml)


def _several(parts: list[str], dml: Dml) -> Shape | None:
    """Several statements: any row of every table any of them writes."""
    tables: list[str] = []
    every_table = False
    for part in parts:
        shape = _one(part, dml)
        if shape is not None:
            tables += shape.tables
            every_table = every_table or shape.every_table
    if not tables and not every_table:
        return None
    return Shape(tuple(dict.fromkeys(tables)), True, None, 0, every_table)


def _one(sql: str, dml: Dml) -> Shape | None:
    head = _HEAD.match(sql)
    if head is None:
        return UNKNOWN if sql.strip("(); \t\r\n") else None
    word = head[1].upper()
    if word in _CHANGES_NO_ROWS:
        return None
    sql = sql[head.start(1) :]  # without the opening parentheses
    if word == "SELECT":
        return _select_into(sql)
    if word in DML:
        return dml(word, sql)
    reader = _READERS.get(word)
    if reader is None:
        return UNKNOWN  # CALL, DO, EXECUTE, a procedural block, a keyword not known here
    return reader(sql, dml)


def _select_into(sql: str) -> Shape | None:
    """``SELECT ... INTO t`` fills a new table ``t`` (PostgreSQL); ``INTO @variable``,
    ``OUTFILE``, ``DUMPFILE`` (MySQL) write no table; any other ``SELECT`` is a read."""
    if _INTO.search(sql) is None:
        return None
    match = _SELECT_INTO.search(_LITERALS.sub("''", sql))
    if match is None or match["table"] is None:
        return None
    return any_row_of(match["table"])


def _with(sql: str, dml: Dml) -> Shape | None:
    # A writable CTE (PostgreSQL) writes from inside: any row of what it names.
    tables = [t for t in _CTE_WRITES.findall(sql) if not re.match(r"(?i)SET\b", t)]
    return any_row_of(*tables) if tables else _select_into(sql)


def _truncate(sql: str, dml: Dml) -> Shape:
    match = _TRUNCATE.match(sql)
    if match is None:
        return fallback(sql)
    listed = re.split(r"\s+(?:RESTART|CONTINUE|CASCADE|RESTRICT)", match["tables"], flags=re.I)
    return any_row_of(*re.split(r"\s*,\s*", listed[0]))


def _merge(sql: str, dml: Dml) -> Shape:
    return fallback(sql)


def _ddl(sql: str, dml: Dml) -> Shape | None:
    """DDL changes rows only of the tables and views it drops, alters, renames, replaces or
    refreshes; a new table, an index, a sequence... holds nothing cached yet."""
    if match := _DDL.match(sql):
        names = re.split(r"\s*,\s*", match["tables"])
        names += _RENAMED_TO.findall(sql)
        return any_row_of(*names)
    if match := _REPLACED_VIEW.match(sql) or _REFRESH.match(sql):
        return any_row_of(match["table"])
    if renamed := _RENAME_TABLE.findall(sql):
        return any_row_of(*(name for pair in renamed for name in pair))
    return None


def _explain(sql: str, dml: Dml) -> Shape | None:
    """``EXPLAIN ANALYZE`` runs the statement (PostgreSQL, MySQL); plain ``EXPLAIN`` does
    not."""
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
    return _one(match["statement"], dml) if runs else None


def _copy(sql: str, dml: Dml) -> Shape | None:
    if match := _COPY_FROM.match(sql):
        return any_row_of(match["table"])
    if _COPY_TO.match(sql):
        return None  # a table's rows out to a file
    if query := _COPY_QUERY.match(sql):  # (a query) TO ...: what the query writes
        return _one(sql[query.end() :], dml)
    return UNKNOWN


def _load(sql: str, dml: Dml) -> Shape | None:
    if match := _LOAD.match(sql):  # LOAD DATA / LOAD XML (MySQL)
        return any_row_of(match["table"])
    return None if _LOAD_LIBRARY.match(sql) else UNKNOWN  # LOAD 'library' (PostgreSQL)


def _begin(sql: str, dml: Dml) -> Shape | None:
    # A transaction starts; anything else after BEGIN is a procedural block.
    return None if _BEGIN.match(sql) else UNKNOWN


def _declare(sql: str, dml: Dml) -> Shape | None:
    # A cursor (its query is a read) or a variable; otherwise a procedural block.
    return None if _CURSOR.match(sql) else UNKNOWN


_READERS: Final[dict[str, Callable[[str, Dml], Shape | None]]] = {
    "WITH": _with,
    "TRUNCATE": _truncate,
    "MERGE": _merge,
    "CREATE": _ddl,
    "DROP": _ddl,
    "ALTER": _ddl,
    "RENAME": _ddl,
    "REFRESH": _ddl,
    "EXPLAIN": _explain,
    "COPY": _copy,
    "LOAD": _load,
    "BEGIN": _begin,
    "DECLARE": _declare,
}
"""How the statements starting with these keywords are read; a keyword neither here nor in
``_CHANGES_NO_ROWS`` (nor in :data:`DML`) may have written anything."""
