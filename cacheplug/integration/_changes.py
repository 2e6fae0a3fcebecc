"""What a change feed produces, whichever its source (PostgreSQL's WAL, Debezium's events):
changes to tables and rows (:class:`TableChange`), tagged as the ORM hooks tag the same write
(:func:`change_tags`), invalidated, and only then acknowledged (:func:`invalidate_landed`
raises :class:`NotLanded` otherwise)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cacheplug.integration._sql import ANY_ROW, TableWrite
from cacheplug.integration._table_tags import written_tags

TagsFor = Callable[[str, "tuple[str, ...] | None"], Iterable[str]]
Invalidate = Callable[[list[str]], bool]


@dataclass(frozen=True, slots=True)
class TableChange:
    """A row written (``key``: its primary key's values as text), or a whole table
    (``key`` None: a TRUNCATE, or a row the WAL does not name)."""

    table: str
    key: tuple[str, ...] | None


class NotLanded(Exception):
    """The invalidations of a batch did not land: the slot stays where it was."""


def invalidate_landed(invalidate: Invalidate, tags: list[str]) -> None:
    """``invalidate(tags)``, raising :class:`NotLanded` unless they landed (the feed then
    keeps its place, and the changes come again)."""
    if not tags:
        return
    try:
        landed = invalidate(tags)
    except Exception as exc:
        raise NotLanded(f"{len(tags)} invalidations failed: {exc!r}") from exc
    if not landed:
        raise NotLanded(f"{len(tags)} invalidations did not land")


def change_tags(table: str, key: tuple[str, ...] | None) -> list[str]:
    """The tags the ORM hooks give a write: the table's, and the row's (``db:r:<table>:<key>``,
    a composite key joined by ``,``) or, the rows unknown, the table's "any row" tag."""
    rows = ANY_ROW if key is None else (key,)
    return written_tags(TableWrite(table, rows), _joined, _no_children)


def _joined(table: str, key: Any) -> str:
    return ",".join(key)


def _no_children(table: str) -> tuple[str, ...]:
    return ()
