"""Tags for database tables and rows, shared by the ORM adapters (Django, SQLAlchemy).

- ``db:t:<table>``: anything written to the table.
- ``db:r:<table>:<key>``: one row, by primary key (spelled as the ORM reads it back).
- ``db:a:<table>``: a write to the table whose rows are unknown. Every entry tagged with a
  row of the table also carries this tag (see :func:`stored_tags`), so such a write reaches it.
- ``db:*`` (:data:`ALL_TABLES`): a write to every table, from a statement the SQL reader
  cannot classify (``CALL``, ``DO``, ``EXECUTE``, ...). Every entry carrying any tag above
  also carries this one, so invalidating it reaches them all at once (O(1)). It costs each
  such entry one more tag: a few bytes in the record and one more version key in each read's
  ``MGET``.

A table with children (tables whose rows share its primary keys: multi-table inheritance)
passes writes to a row on to the same row of each child; an entry tagged with a child's row
also carries the "rows unknown" tags of the parents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from cacheplug.integration._sql import ANY_ROW, EVERY_TABLE, TableWrite

TABLE: Final = "db:t:"
ROW: Final = "db:r:"
ANY: Final = "db:a:"
ALL_TABLES: Final = "db:*"
"""The tag of every table: invalidated by a statement that may have written any of them."""
_OF_TABLES: Final = (TABLE, ROW, ANY)


def table_tag(table: str) -> str:
    """The tag of everything in ``table``."""
    return TABLE + table


def row_tag(table: str, key: str) -> str:
    """The tag of one row of ``table``; ``key`` as the ORM spells the primary key."""
    return f"{ROW}{table}:{key}"


def any_row_tag(table: str) -> str:
    """The tag a write to ``table`` whose rows are unknown invalidates."""
    return ANY + table


def stored_tags(tags: Iterable[str], parents: Callable[[str], Iterable[str]]) -> list[str]:
    """``tags`` as an entry is stored with: each row tag brings the "rows unknown" tags of
    its table and of the table's ``parents``; any table or row tag brings
    :data:`ALL_TABLES`."""
    out = list(dict.fromkeys(tags))
    extra: list[str] = []
    for tag in out:
        if tag.startswith(ROW):
            table = tag[len(ROW) :].split(":", 1)[0]  # a key may hold ":"; a table name not
            extra.append(ANY + table)
            extra.extend(ANY + parent for parent in parents(table))
        if tag.startswith(_OF_TABLES):
            extra.append(ALL_TABLES)
    return list(dict.fromkeys(out + extra))


def written_tags(
    write: TableWrite,
    key_of: Callable[[str, Any], str] | None,
    children: Callable[[str], Iterable[str]],
) -> list[str]:
    """The tags a write invalidates. ``key_of(table, value)`` spells a primary key read from
    the statement (``None``: the table is unknown, so its rows cannot be named). A write of
    every table (the parser's ``EVERY_TABLE``, ``"*"``) invalidates :data:`ALL_TABLES`."""
    if write.table == EVERY_TABLE:
        return [ALL_TABLES]
    tags = [TABLE + write.table]
    if write.rows is ANY_ROW or key_of is None:
        tags.append(ANY + write.table)
        return tags
    related = list(children(write.table))
    for value in write.rows:
        key = key_of(write.table, value)
        tags.append(row_tag(write.table, key))
        tags.extend(row_tag(child, key) for child in related)
    return tags
