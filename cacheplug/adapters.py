"""Building blocks for framework adapters (``cacheplug_django``, ``cacheplug_flask``, or your
own): what they share lives here, so that each adapter only translates its framework's events.

- :class:`WriteParser` / :class:`TableWrite` / :data:`ANY_ROW`: which tables and rows an SQL
  statement writes (for ORM hooks that see raw statements).
- :func:`table_tag`, :func:`row_tag`, :func:`any_row_tag`, :func:`stored_tags`,
  :func:`written_tags`: the tags of database tables and rows, the same for every ORM.
- :class:`DeferredInvalidations`: the tags a transaction wrote, flushed when it commits.
- :class:`Warmers`, :func:`warm`, :func:`flush`, :func:`stats_report`,
  :func:`inspect_report`, :class:`OperationError`: what the command lines do, so that
  ``manage.py cacheplug_*`` and ``flask cacheplug ...`` behave and print alike.
- :class:`ReadOptions`: what a :class:`~cacheplug.CacheDecorator` passes to ``get_or_load``
  (for adapters whose cache object wraps :class:`~cacheplug.Cache`).
"""

from __future__ import annotations

from cacheplug._decorators import ReadOptions
from cacheplug._deferred import DeferredInvalidations
from cacheplug._operations import (
    OperationError,
    Warmers,
    drain_queues,
    flush,
    inspect_report,
    stats_report,
    warm,
)
from cacheplug._sql import ANY_ROW, TableWrite, WriteParser
from cacheplug._table_tags import any_row_tag, row_tag, stored_tags, table_tag, written_tags

__all__ = [
    "ANY_ROW",
    "DeferredInvalidations",
    "OperationError",
    "ReadOptions",
    "TableWrite",
    "Warmers",
    "WriteParser",
    "any_row_tag",
    "drain_queues",
    "flush",
    "inspect_report",
    "row_tag",
    "stats_report",
    "stored_tags",
    "table_tag",
    "warm",
    "written_tags",
]
