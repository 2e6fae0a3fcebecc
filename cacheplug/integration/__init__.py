"""What every framework adapter shares (``cacheplug_django``, ``cacheplug_flask``, or your
own): the logic lives here once, so that each adapter only translates its framework's events.

- :class:`WriteParser` / :class:`TableWrite` / :data:`ANY_ROW`: which tables and rows an SQL
  statement writes (for ORM hooks that see raw statements).
- :func:`table_tag`, :func:`row_tag`, :func:`any_row_tag`, :func:`stored_tags`,
  :func:`written_tags`: the tags of database tables and rows, the same for every ORM.
- :class:`DeferredInvalidations`: the tags a transaction wrote, flushed when it commits.
- :class:`Warmers`, :func:`warm`, :func:`flush`, :func:`stats_report`,
  :func:`inspect_report`, :class:`OperationError`: what the command lines do, so that
  ``manage.py cacheplug_*`` and ``flask cacheplug ...`` behave and print alike;
  :class:`WarmReport` / :class:`WarmerRun` (a warm run, its ``--json`` document),
  :class:`WarmProgress` (what a progress display is given), :func:`watch` /
  :func:`watch_interval` (``--watch N``).
- :class:`ReadOptions`: what a :class:`~cacheplug.CacheDecorator` passes to ``get_or_load``
  (for adapters whose cache object wraps :class:`~cacheplug.Cache`).
- Shared pages: :class:`PagePolicy` (what may be shared, under which key), :class:`PageRequest`,
  :class:`Page`, :class:`Uncacheable`, :class:`EnvironHeaders`, :func:`not_modified`,
  :func:`private_user`, :func:`cookie_names`, :func:`check_page_options`; and serving
  one: :func:`serve_page` / :func:`aserve_page` give the :class:`Answer` (200, 304 or
  ``HEAD``, the headers to send), :func:`answer`, :func:`not_modified`, :func:`etag_sent`;
  :class:`PageHits` / :data:`PlainPage`: a plain request's page answered from L1 or one
  store read before the request is read in full; :func:`plain_request`: which requests are
  plain.
- Shared pages and fragments never carry one client's state: :class:`ClientReads` (what
  rendering read of the client, as the adapter collected it), :func:`unshared_reason` (the
  rule), :class:`CookieReads` (cookies that notice being read), :class:`Watched` (an
  adapter's :class:`Watch` of those reads, run around making a page or a fragment).
- Fragments: :func:`fragment_key`, :func:`fetch_fragment`, :func:`fragment_options` /
  :class:`FragmentOptions` / :data:`FRAGMENT_OPTIONS` (every ``{% cacheplug %}`` tag's
  options, checked alike).
- :class:`ReservedKey`: the key of an entry the library keeps for itself, out of reach of
  every application key.
- Settings: :func:`validate_settings`, :func:`unknown_settings`, :class:`SettingProblem`,
  :class:`SettingsError`, :data:`PAGE_RULE_KEYS`, :data:`STORE_HINT`, :func:`local_tier` (one
  set of rules for every adapter's settings, each problem with an id and a hint).
- Change data capture: :class:`PostgresChangeFeed` reads a PostgreSQL logical replication
  slot and invalidates every committed change's :func:`change_tags` (each a
  :class:`TableChange`), at least once (with :func:`landed_invalidation`); :class:`SlotLag`.
- :func:`recording_calls` / :class:`CallLog` / :class:`CacheCall` / :func:`current_calls`:
  every cache call of one request (key, outcome, time, tags), page reads and invalidations
  after commit, for a debugging panel; free while nobody records.
- :func:`dashboard_figures`, :func:`dashboard_html`, :func:`dashboard_page`,
  :data:`DASHBOARD_SCRIPT`, :func:`refresh_interval`: a staff dashboard's figures (hit ratio
  by tier, loads, stampedes averted, hot keys, pending invalidations, feed lag, write-behind,
  the breaker) and markup refreshing on its own, the same for every adapter.
- The transactional outbox: :class:`OutboxStore` (the adapter's queries on
  :data:`OUTBOX_TABLE`), :class:`OutboxRelay` / :func:`cache_relay` (delivering what is left
  there), :class:`OutboxBacklog` (what waits, :meth:`OutboxRelay.backlog`),
  :func:`outbox_write` / :class:`OutboxRow` / :class:`OutboxWrite` / :func:`outbox_tags`
  (what a transaction writes there).
- The edge tier: :func:`edge_settings` / :class:`EdgeSettings` (the ``EDGE`` setting),
  :func:`edge_headers` (what gives a shareable page to a CDN or Varnish: ``Cache-Control``
  with ``s-maxage``, its edge keys in ``Surrogate-Key``, ``Cache-Tag`` or ``xkey``),
  :func:`edge_key` / :func:`edge_keys` / :func:`is_edge_key`; purging it after the store:
  :class:`EdgePurger`, :class:`HttpPurger`, :class:`VarnishPurger`, :class:`EdgePurges` (a
  queue sent by a thread of its own, retried with backoff), :func:`purge_after_landing`,
  :func:`edge_purger` / :func:`start_edge_purges` (what an adapter starts from the setting),
  :func:`page_for_edge` / :func:`edge_part` (a stored page's edge headers).
- :class:`AfterCommit`: runs a committed transaction's invalidations, never raising.
- :func:`store_checked`: warmers that fail when the store failed while they ran.
- :class:`TaggedCache` / :class:`ModelTagging`: the cache object an ORM adapter hands out
  (``depends_on=`` models, the uncommitted-write bypass), given the adapter's ORM.
- :func:`cache_options`, :data:`SETTING_DEFAULTS`, :class:`CacheOptions`: the settings both
  adapters read, their defaults, and the ``Cache`` options they give; :data:`AGAIN_AFTER`:
  the second invalidation after a commit no hook follows.
"""

from __future__ import annotations

from cacheplug.encoding._keys import ReservedKey
from cacheplug.features._decorators import ReadOptions
from cacheplug.integration._after_commit import AfterCommit, Invalidate
from cacheplug.integration._calls import CacheCall, CallLog, current_calls, recording_calls
from cacheplug.integration._capture import (
    AUTO,
    ReadRecorder,
    audited,
    capturing,
    is_auto,
    recording,
)
from cacheplug.integration._cdc import PostgresChangeFeed, SlotLag
from cacheplug.integration._cdc_command import run_change_feed
from cacheplug.integration._cdc_setup import (
    CDC_SOURCES,
    DEBEZIUM_REDIS,
    POSTGRESQL,
    CdcSettings,
    ChangeFeed,
    cdc_settings,
    change_feed,
    configured_cdc,
    conninfo_from_url,
    describe_conninfo,
    orm_tags_for,
    postgres_conninfo,
    stream_feed,
)
from cacheplug.integration._changes import NotLanded, TableChange, change_tags
from cacheplug.integration._client_reads import (
    NOTHING_READ,
    ClientReads,
    CookieReads,
    Watch,
    Watched,
    unshared_reason,
)
from cacheplug.integration._dashboard import (
    DASHBOARD_SCRIPT,
    dashboard_figures,
    dashboard_html,
    dashboard_page,
    refresh_interval,
)
from cacheplug.integration._debezium import (
    DebeziumStreamFeed,
    StreamLag,
    Unreadable,
    entry_changes,
)
from cacheplug.integration._deferred import DeferredInvalidations
from cacheplug.integration._edge import (
    EDGE_HEADER_NAMES,
    EDGE_HINT,
    EDGE_KEYS,
    HEADER_STYLES,
    MAX_KEYS_BYTES,
    PURGE_MODES,
    EdgeSettings,
    edge_headers,
    edge_key,
    edge_keys,
    edge_part,
    edge_settings,
    is_edge_key,
    page_for_edge,
)
from cacheplug.integration._edge_purge import (
    EdgePurger,
    EdgePurges,
    HttpPurger,
    VarnishPurger,
    edge_purger,
    purge_after_landing,
    start_edge_purges,
)
from cacheplug.integration._fragments import (
    FRAGMENT_OPTIONS,
    FragmentOptions,
    depends_on_of,
    fetch_fragment,
    fragment_key,
    fragment_options,
)
from cacheplug.integration._operations import (
    OperationError,
    drain_queues,
    flush,
    inspect_report,
    stats_report,
)
from cacheplug.integration._options import (
    AGAIN_AFTER,
    SETTING_DEFAULTS,
    CacheOptions,
    cache_options,
)
from cacheplug.integration._outbox import (
    EDGE_WAIT,
    OUTBOX_TABLE,
    EdgeQueue,
    NoEdge,
    OutboxBacklog,
    OutboxRelay,
    OutboxRow,
    OutboxStore,
    OutboxWrite,
    cache_relay,
    deliver_after_edge,
    landed_invalidation,
    outbox_tags,
    outbox_write,
)
from cacheplug.integration._page_hits import PageHits, PlainPage, plain_request
from cacheplug.integration._page_records import (
    EnvironHeaders,
    Page,
    PageRequest,
    Uncacheable,
    cookie_names,
    private_user,
)
from cacheplug.integration._pages import PagePolicy, check_page_options
from cacheplug.integration._reads import ReadParser, TableRead
from cacheplug.integration._serving import (
    Answer,
    answer,
    aserve_page,
    etag_sent,
    not_modified,
    serve_page,
)
from cacheplug.integration._settings import (
    PAGE_RULE_KEYS,
    STORE_HINT,
    SettingProblem,
    SettingsError,
    local_tier,
    unknown_settings,
    validate_settings,
)
from cacheplug.integration._sql import ANY_ROW, TableWrite, WriteParser
from cacheplug.integration._table_tags import (
    ALL_TABLES,
    any_row_tag,
    row_tag,
    stored_tags,
    table_tag,
    written_tags,
)
from cacheplug.integration._tagged import ModelTagging, TaggedCache
from cacheplug.integration._warming import (
    WarmerRun,
    Warmers,
    WarmProgress,
    WarmReport,
    store_checked,
    warm,
)
from cacheplug.integration._watch import watch, watch_interval

__all__ = [
    "AGAIN_AFTER",
    "ALL_TABLES",
    "ANY_ROW",
    "AUTO",
    "AfterCommit",
    "Answer",
    "CDC_SOURCES",
    "CacheCall",
    "CacheOptions",
    "CallLog",
    "CdcSettings",
    "ChangeFeed",
    "ClientReads",
    "CookieReads",
    "DASHBOARD_SCRIPT",
    "DEBEZIUM_REDIS",
    "DebeziumStreamFeed",
    "DeferredInvalidations",
    "EDGE_HEADER_NAMES",
    "EDGE_HINT",
    "EDGE_KEYS",
    "EDGE_WAIT",
    "EdgePurger",
    "EdgePurges",
    "EdgeQueue",
    "EdgeSettings",
    "EnvironHeaders",
    "FRAGMENT_OPTIONS",
    "FragmentOptions",
    "HEADER_STYLES",
    "HttpPurger",
    "Invalidate",
    "MAX_KEYS_BYTES",
    "ModelTagging",
    "NOTHING_READ",
    "NoEdge",
    "NotLanded",
    "OUTBOX_TABLE",
    "OperationError",
    "OutboxBacklog",
    "OutboxRelay",
    "OutboxRow",
    "OutboxStore",
    "OutboxWrite",
    "PAGE_RULE_KEYS",
    "POSTGRESQL",
    "PURGE_MODES",
    "Page",
    "PageHits",
    "PagePolicy",
    "PageRequest",
    "PlainPage",
    "PostgresChangeFeed",
    "ReadOptions",
    "ReadParser",
    "ReadRecorder",
    "ReservedKey",
    "SETTING_DEFAULTS",
    "STORE_HINT",
    "SettingProblem",
    "SettingsError",
    "SlotLag",
    "StreamLag",
    "TableChange",
    "TableRead",
    "TableWrite",
    "TaggedCache",
    "Uncacheable",
    "Unreadable",
    "VarnishPurger",
    "WarmProgress",
    "WarmReport",
    "WarmerRun",
    "Warmers",
    "Watch",
    "Watched",
    "WriteParser",
    "answer",
    "any_row_tag",
    "aserve_page",
    "audited",
    "cache_options",
    "cache_relay",
    "capturing",
    "cdc_settings",
    "change_feed",
    "change_tags",
    "check_page_options",
    "configured_cdc",
    "conninfo_from_url",
    "cookie_names",
    "current_calls",
    "dashboard_figures",
    "dashboard_html",
    "dashboard_page",
    "deliver_after_edge",
    "depends_on_of",
    "describe_conninfo",
    "drain_queues",
    "edge_headers",
    "edge_key",
    "edge_keys",
    "edge_part",
    "edge_purger",
    "edge_settings",
    "entry_changes",
    "etag_sent",
    "fetch_fragment",
    "flush",
    "fragment_key",
    "fragment_options",
    "inspect_report",
    "is_auto",
    "is_edge_key",
    "landed_invalidation",
    "local_tier",
    "not_modified",
    "orm_tags_for",
    "outbox_tags",
    "outbox_write",
    "page_for_edge",
    "plain_request",
    "postgres_conninfo",
    "private_user",
    "purge_after_landing",
    "recording",
    "recording_calls",
    "refresh_interval",
    "row_tag",
    "run_change_feed",
    "serve_page",
    "start_edge_purges",
    "stats_report",
    "store_checked",
    "stored_tags",
    "stream_feed",
    "table_tag",
    "unknown_settings",
    "unshared_reason",
    "validate_settings",
    "warm",
    "watch",
    "watch_interval",
    "written_tags",
]
