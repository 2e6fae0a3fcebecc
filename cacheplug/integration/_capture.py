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

from cacheplug import depends_on, depends_on_later, dont_store, may_depend_on, tags_read_ahead
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
    # Where the core allows it (depends_on_later), statements' tags are declared together
    # when the loader returns: a statement then costs a lookup and an append.
    later: list[_Tags] | None = None
    # The tags whose versions the load read before the loader started: a statement needing
    # no other before its data is kept for later too (None: every statement may wait).
    ahead: frozenset[str] | None = None


_LEARNED_TAGS: Final = 32
# What the loads of each kind (a loader's code) read before: read ahead by the next one, in
# one round trip, instead of one per statement (a new key's load meets the same tables).
_learned: BoundedMemo[object, dict[str, None]] = BoundedMemo(4096)


@dataclass(frozen=True, slots=True)
class _Tags:
    """The tags a statement brings to an entry, split as they are declared to the core."""

    every: frozenset[str]
    others: tuple[str, ...]  # tables, every table: read before the data
    rows: tuple[str, ...]  # rows, "rows unknown": read when the load ends, guarded by ``guards``
    guards: tuple[str, ...]  # the rows' tables (and their parents'): a write moves them too
    learned: dict[str, None]  # what loads of the same kind will meet again: ``others``, guards
    first: frozenset[str]  # the same: what must be read before the statement's data


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
    return _Watched(loader, capture, declared, site)


class _Watched:
    """A loader run with its reads watched; ``read_ahead()`` names what it will likely
    depend on (its declared tags, and what loads of its kind read before), for the core to
    read their versions with the fill's own."""

    __slots__ = ("_capture", "_declared", "_loader", "_site")

    def __init__(
        self, loader: Callable[[], Any], capture: _Capture, declared: list[str], site: object
    ) -> None:
        self._loader = loader
        self._capture = capture
        self._declared = declared
        self._site = site

    def read_ahead(self) -> tuple[str, ...]:
        learned = _learned.get(self._site) if self._site is not None else None
        return (*self._declared, *(learned or ()))

    def __call__(self) -> Any:
        capture, site = self._capture, self._site
        if self._declared:
            depends_on(self._declared)
        if capture.record:
            if depends_on_later():
                capture.later = []
            else:
                ahead = tags_read_ahead()
                if ahead:  # the core read them with its own: nothing more to read ahead
                    capture.later, capture.ahead = [], ahead
        if capture.later is None:
            learned = _learned.get(site) if site is not None else None
            if learned:
                may_depend_on(learned)
        token = _current.set(capture)
        try:
            value = self._loader()
        except BaseException:
            _current.reset(token)
            raise
        if isawaitable(value):
            _current.reset(token)
            return _awaited(value, capture, site)
        _current.reset(token)
        _declare_later(capture)
        _learn(site, capture)
        return value


async def _awaited(value: Awaitable[Any], capture: _Capture, site: object) -> Any:
    token = _current.set(capture)
    try:
        done = await value
    finally:
        _current.reset(token)
    _declare_later(capture)
    _learn(site, capture)
    return done


def _declare_later(capture: _Capture) -> None:
    """Declare the tags of the statements kept for later: at most one call for the tables
    and one per kind of row."""
    later = capture.later
    capture.later = None
    if not later:
        return
    sent, common = capture.sent, capture.common
    others: dict[str, None] = {}
    rows: dict[tuple[str, ...], dict[str, None]] = {}  # by their guards
    for stored in later:
        new = stored.every - sent
        if not new:
            continue  # a repeated statement, or tags another one brought
        sent.update(new)
        common.update(stored.learned)
        others.update(dict.fromkeys(tag for tag in stored.others if tag in new))
        if stored.rows:
            guarded = rows.setdefault(stored.guards, {})
            guarded.update(dict.fromkeys(tag for tag in stored.rows if tag in new))
    if others:
        depends_on(others)
    for guards, tags in rows.items():
        if tags:
            depends_on(tags, guarded_by=guards)


def _note(capture: _Capture, stored: _Tags | None) -> None:
    """A statement's tags: declared now, or kept for when the loader returns."""
    later = capture.later
    if (
        later is not None
        and stored is not None
        and (capture.ahead is None or stored.first <= capture.ahead)
    ):
        later.append(stored)
    else:
        _declare(capture, stored)


def _declare(capture: _Capture, stored: _Tags | None) -> None:
    """Declare the tags of ``stored`` not declared yet (None: the statement may read
    anything: the value is not stored)."""
    if stored is None:
        dont_store()  # no tag names that
        return
    sent = capture.sent
    new = stored.every - sent
    if not new:
        return  # the usual case after the first statements: nothing more to declare
    if len(new) == len(stored.every):
        others, rows = stored.others, stored.rows
    else:
        others = tuple(tag for tag in stored.others if tag in new)
        rows = tuple(tag for tag in stored.rows if tag in new)
    sent.update(new)
    capture.common.update(stored.learned)
    if others:
        depends_on(others)
    if rows:
        depends_on(rows, guarded_by=stored.guards)


def _learn(site: object, capture: _Capture) -> None:
    if site is None or not capture.record or not capture.common:
        return
    before = _learned.get(site)
    if before is not None and capture.common.keys() <= before.keys():
        return  # the usual case: a load of this kind read what the ones before it did
    tags = list(dict.fromkeys((*(before or ()), *capture.common)))[:_LEARNED_TAGS]
    if before is None or tags != list(before):
        _learned.remember(site, dict.fromkeys(tags))


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
        self._stored: BoundedMemo[tuple[TableRead, ...], _Tags | None] = BoundedMemo(4096)
        # The tags of statements that name no row, by text: no parsing on the hot path.
        self._keyless: BoundedMemo[str, _Tags | None] = BoundedMemo(4096)

    def seen(self, sql: str, params: Any) -> None:
        """A statement about to run (call only when :func:`capturing`): record or audit what
        it reads. Never raises: a statement it cannot read is one it reads everything of."""
        capture = _current.get()
        if capture is None:
            return
        if capture.record:
            stored = self._keyless.get(sql, _UNKNOWN)
            if stored is not _UNKNOWN:  # a statement naming no row: its tags never change
                _note(capture, stored)
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
        _note(capture, stored)

    def _stored_tags(self, reads: tuple[TableRead, ...]) -> _Tags | None:
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
        stored: _Tags | None = None
        for read in reads:
            if read.table == EVERY_TABLE:
                break
            tags += self.tags(read)
        else:
            stored = self._split(stored_tags(tags, self._parents))
        if reads_key is not None:
            self._stored.remember(reads_key, stored)
        return stored

    def _split(self, tags: list[str]) -> _Tags:
        # A write to a row moves its table's tag at the same instant (and a write to a row of
        # a parent table, the parent's), as does a write of unknown rows ("rows unknown"
        # tags): their versions can wait for the end of the load, read in one round trip,
        # with the tables' read now as guards; and where the load depends on those tables
        # anyway, they are not needed at all.
        guarded = tuple(tag for tag in tags if tag.startswith((ROW, ANY)))
        others = tuple(tag for tag in tags if not tag.startswith((ROW, ANY)))
        guards: dict[str, None] = {}
        for tag in guarded:
            if tag.startswith(ANY):
                guards[table_tag(tag[len(ANY) :])] = None
                continue
            table = tag[len(ROW) :].split(":", 1)[0]  # a key may hold ":"; a table name not
            guards[table_tag(table)] = None
            guards.update(dict.fromkeys(table_tag(parent) for parent in self._parents(table)))
        return _Tags(
            frozenset(tags),
            others,
            guarded,
            tuple(guards),
            dict.fromkeys((*others, *guards)),
            frozenset((*others, *guards)),
        )

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
