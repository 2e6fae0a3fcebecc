"""``depends_on="auto"``: an entry depends on exactly the tables and rows its loader read.

While a loader of an ``auto`` read runs, the ORM adapters' statement hooks (Django's
``execute_wrapper``, SQLAlchemy's ``before_cursor_execute``) hand every statement to
:meth:`ReadRecorder.seen` *before it runs*: its tables (and rows, when it selects by primary
key: :mod:`cacheplug.integration._reads`) become tags, whose versions the core reads then,
ahead of the data (:func:`cacheplug.depends_on`). The fill stores under them; a write to any
of them invalidates the entry. The capture is per thread or asyncio task (a context
variable): another request's statements are not this loader's. A cached call inside the
loader passes its dependencies on to it, hit or miss (the core sees to that).

A statement the reader cannot name the tables of (a function after ``FROM``, say) may read
anything: the value is returned, not stored. Reads the hooks do not see (another driver, an
HTTP call, a file) are not captured: declare them (``tags=``) or keep those loaders explicit.

The audit (``audit=True``: the adapters turn it on with ``DEBUG`` or their setting) watches
loaders with an explicit ``depends_on`` the same way, records nothing, and warns once per
call site and table when one reads a table it did not declare.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Any, Final

from cacheplug import depends_on, dont_store, may_depend_on
from cacheplug._memo import BoundedMemo
from cacheplug.integration._reads import ReadParser, TableRead
from cacheplug.integration._sql import ANY_ROW, EVERY_TABLE
from cacheplug.integration._table_tags import (
    ANY,
    ROW,
    TABLE,
    row_tag,
    stored_tags,
    table_tag,
)

logger = logging.getLogger("cacheplug.auto")

AUTO: Final = "auto"
"""``depends_on=AUTO``: the entry depends on what its loader reads."""
MAX_ROWS: Final = 8
"""Rows of one table an entry depends on one by one; past that, on the whole table."""


@dataclass(slots=True)
class _Capture:
    record: bool  # auto: record what is read; else only audit it
    declared: frozenset[str] = frozenset()  # tables an explicit depends_on names (audit)
    site: str = ""  # where the loader is, for the audit's warning
    tables: dict[str, None] = field(default_factory=dict)  # read so far
    common: dict[str, None] = field(default_factory=dict)  # tags any key's load would have
    sent: set[str] = field(default_factory=set)  # tags declared to the core so far


_LEARNED_TAGS: Final = 32
# What the loads of each kind (a loader's code) read before: read ahead by the next one, in
# one round trip, instead of one per statement (a new key's load meets the same tables).
_learned: BoundedMemo[object, tuple[str, ...]] = BoundedMemo(4096)


_current: ContextVar[_Capture | None] = ContextVar("cacheplug_capture", default=None)
_UNKNOWN: Final[Any] = object()
_warned: set[tuple[str, str]] = set()


def capturing() -> bool:
    """True when statements run here belong to a loader whose reads are watched."""
    return _current.get() is not None


def recording(loader: Callable[[], Any], declared_tags: Iterable[str] = ()) -> Callable[[], Any]:
    """``loader`` (sync, or returning an awaitable) run with its reads recorded as its entry's
    dependencies; ``declared_tags`` (the call's own ``tags``) are declared first, and the
    tables loads of the same kind read before are read ahead."""
    site = getattr(getattr(loader, "__wrapped__", loader), "__code__", None)
    return _watched(loader, _Capture(record=True), list(declared_tags), site)


def audited(loader: Callable[[], Any], declared_tags: Iterable[str]) -> Callable[[], Any]:
    """``loader`` run with its reads compared to the tables ``declared_tags`` name."""
    tables = frozenset(
        tag.split(":", 2)[2].split(":", 1)[0]
        for tag in declared_tags
        if tag.startswith((TABLE, ROW, ANY))
    )
    return _watched(loader, _Capture(record=False, declared=tables, site=_site(loader)), [])


def _watched(
    loader: Callable[[], Any], capture: _Capture, declared: list[str], site: object = None
) -> Callable[[], Any]:
    def watched() -> Any:
        if declared:
            depends_on(declared)
        learned = _learned.get(site) if site is not None else None
        if learned:
            may_depend_on(learned)
        token = _current.set(capture)
        try:
            value = loader()
        except BaseException:
            _current.reset(token)
            raise
        if isawaitable(value):
            _current.reset(token)
            return _awaited(value, capture, site)
        _current.reset(token)
        _learn(site, capture)
        return value

    return watched


async def _awaited(value: Awaitable[Any], capture: _Capture, site: object) -> Any:
    token = _current.set(capture)
    try:
        return await value
    finally:
        _current.reset(token)
        _learn(site, capture)


def _learn(site: object, capture: _Capture) -> None:
    if site is None or not capture.record or not capture.common:
        return
    before = _learned.get(site) or ()
    tags = tuple(dict.fromkeys((*before, *capture.common)))[:_LEARNED_TAGS]
    if tags != before:
        _learned.remember(site, tags)


def _site(loader: Callable[[], Any]) -> str:
    code = getattr(getattr(loader, "__wrapped__", loader), "__code__", None)
    if code is None:
        return getattr(loader, "__qualname__", repr(loader))
    return f"{code.co_filename}:{code.co_firstlineno} ({code.co_name})"


class ReadRecorder:
    """An adapter's statement hook for :func:`recording` and :func:`audited` loaders:
    ``pk_column(table)`` names a table's primary key column, ``key_of(table, value)`` spells
    a key as the adapter's row tags do, ``parents(table)`` the tables a table's rows extend."""

    def __init__(
        self,
        pk_column: Callable[[str], str | None],
        key_of: Callable[[str, Any], str],
        parents: Callable[[str], Iterable[str]],
    ) -> None:
        self._parser = ReadParser(pk_column)
        self._key_of = key_of
        self._parents = parents
        self._stored: BoundedMemo[tuple[TableRead, ...], tuple[str, ...] | None] = BoundedMemo(4096)
        # The tags of statements that name no row, by text: no parsing on the hot path.
        self._keyless: BoundedMemo[str, tuple[str, ...] | None] = BoundedMemo(4096)

    def seen(self, sql: str, params: Any) -> None:
        """A statement about to run (call only when :func:`capturing`): record or audit what
        it reads. Never raises: a statement it cannot read is one it reads everything of."""
        capture = _current.get()
        if capture is None:
            return
        if capture.record:
            stored = self._keyless.get(sql, _UNKNOWN)
            if stored is not _UNKNOWN:  # a statement naming no row: its tags never change
                self._send(capture, stored)
                return
        try:
            reads = self._parser.reads(sql, params)
        except Exception:  # a parser bug must never break a query
            logger.exception("cacheplug: could not read a statement's tables")
            reads = [TableRead(EVERY_TABLE, ANY_ROW)]
        if not reads:
            return
        if not capture.record:
            self._audit(capture, reads)
            return
        stored = self._stored_tags(tuple(reads))
        if self._parser.keyless(sql):
            self._keyless.remember(sql, stored)
        self._send(capture, stored)

    def _send(self, capture: _Capture, stored: tuple[str, ...] | None) -> None:
        """Declare the tags of ``stored`` not declared yet (None: the statement may read
        anything: the value is not stored)."""
        if stored is None:
            dont_store()  # no tag names that
            return
        new = [tag for tag in stored if tag not in capture.sent]
        if not new:
            return  # the usual case after the first statements: nothing more to declare
        capture.sent.update(new)
        rows = [tag for tag in new if tag.startswith(ROW)]
        if not rows:
            capture.common.update(dict.fromkeys(new))
            depends_on(new)
            return
        # A write to a row moves its table's tag at the same instant (and a write to a row
        # of a parent table, the parent's): the rows' versions can wait for the end of the
        # load, read in one round trip, with the tables' read now as guards (learned too).
        guards: dict[str, None] = {}
        for tag in rows:
            table = tag[len(ROW) :].split(":", 1)[0]  # a key may hold ":"; a table name not
            guards[table_tag(table)] = None
            guards.update(dict.fromkeys(table_tag(parent) for parent in self._parents(table)))
        others = [tag for tag in new if not tag.startswith(ROW)]
        capture.common.update(dict.fromkeys(others))
        capture.common.update(guards)
        if others:
            depends_on(others)
        depends_on(rows, guarded_by=guards)

    def _stored_tags(self, reads: tuple[TableRead, ...]) -> tuple[str, ...] | None:
        """The tags an entry depending on ``reads`` carries; None: they may read anything.
        Memoized (a loader repeats its statements, and so do its kind)."""
        try:
            found = self._stored.get(reads)
        except TypeError:  # a key value that cannot be hashed
            found, reads_key = None, None
        else:
            reads_key = reads
            if found is not None or reads in self._stored:
                return found
        tags: list[str] = []
        for read in reads:
            if read.table == EVERY_TABLE:
                stored = None
                break
            tags += self.tags(read)
        else:
            stored = tuple(stored_tags(tags, self._parents))
        if reads_key is not None:
            self._stored.remember(reads_key, stored)
        return stored

    def tags(self, read: TableRead) -> list[str]:
        """The tags an entry depending on ``read`` carries (before :func:`stored_tags`)."""
        rows = read.rows
        if rows is ANY_ROW or not rows or len(rows) > MAX_ROWS:
            return [table_tag(read.table)]
        return [row_tag(read.table, self._key_of(read.table, value)) for value in rows]

    @staticmethod
    def _audit(capture: _Capture, reads: list[TableRead]) -> None:
        for read in reads:
            table = read.table
            if table in capture.declared or table in capture.tables:
                continue
            capture.tables[table] = None
            if (capture.site, table) in _warned:
                continue
            _warned.add((capture.site, table))
            what = "a table it cannot name" if table == EVERY_TABLE else f"table {table!r}"
            logger.warning(
                "cacheplug: the loader at %s read %s, which its depends_on does not name: "
                "a write to it leaves the entry stale (add it, or use depends_on=%r)",
                capture.site,
                what,
                AUTO,
            )


def is_auto(depends_on: Any) -> bool:
    """True for ``depends_on="auto"``."""
    return isinstance(depends_on, str) and depends_on == AUTO
