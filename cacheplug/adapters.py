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
- Shared pages: :class:`PagePolicy` (what may be shared, under which key), :class:`PageRequest`,
  :class:`Page`, :class:`Uncacheable`, :class:`EnvironHeaders`, :func:`not_modified`,
  :func:`private_user`, :func:`cookie_names`, :func:`check_page_options`.
- Shared pages and fragments never carry one client's state: :class:`ClientReads` (what
  rendering read of the client, as the adapter collected it), :func:`unshared_reason` (the
  rule), :class:`CookieReads` (cookies that notice being read).
- Fragments: :func:`fragment_key`, :func:`fetch_fragment`.
- :class:`ReservedKey`: the key of an entry the library keeps for itself, out of reach of
  every application key.
"""

from __future__ import annotations

from cacheplug._client_reads import NOTHING_READ, ClientReads, CookieReads, unshared_reason
from cacheplug._decorators import ReadOptions
from cacheplug._deferred import DeferredInvalidations
from cacheplug._fragments import fetch_fragment, fragment_key
from cacheplug._keys import ReservedKey
from cacheplug._operations import (
    OperationError,
    Warmers,
    drain_queues,
    flush,
    inspect_report,
    stats_report,
    warm,
)
from cacheplug._pages import (
    EnvironHeaders,
    Page,
    PagePolicy,
    PageRequest,
    Uncacheable,
    check_page_options,
    cookie_names,
    not_modified,
    private_user,
)
from cacheplug._sql import ANY_ROW, TableWrite, WriteParser
from cacheplug._table_tags import any_row_tag, row_tag, stored_tags, table_tag, written_tags

__all__ = [
    "ANY_ROW",
    "ClientReads",
    "CookieReads",
    "DeferredInvalidations",
    "EnvironHeaders",
    "NOTHING_READ",
    "OperationError",
    "Page",
    "PagePolicy",
    "PageRequest",
    "ReadOptions",
    "ReservedKey",
    "TableWrite",
    "Uncacheable",
    "Warmers",
    "WriteParser",
    "any_row_tag",
    "check_page_options",
    "cookie_names",
    "drain_queues",
    "fetch_fragment",
    "flush",
    "fragment_key",
    "inspect_report",
    "not_modified",
    "private_user",
    "row_tag",
    "stats_report",
    "stored_tags",
    "table_tag",
    "unshared_reason",
    "warm",
    "written_tags",
]
