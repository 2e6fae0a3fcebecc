"""What a staff dashboard shows, gathered and drawn once for every adapter.

:func:`dashboard_figures` reads one process's cache: hit ratio and hits by tier, loads and
their times, stampedes averted (callers that got another's load), the hottest keys,
invalidations waiting for the store, the change feed's lag (when the adapter passes its
feed), the outbox's backlog (when it passes its relays), write-behind queues and their dead
letters, and the circuit breaker. Plain data: the JSON endpoint sends it as it is.
:func:`dashboard_html` draws it (every value escaped), with a small script that polls the
JSON endpoint and redraws, so the page refreshes on its own. The Django admin page and the
Flask blueprint only check who asks and wrap this markup.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from html import escape
from typing import TYPE_CHECKING, Any, Final

from cacheplug._redact import redact
from cacheplug.exceptions import CacheError
from cacheplug.integration._cdc_stats import feed_report

if TYPE_CHECKING:
    from cacheplug import Cache
    from cacheplug._engine.metrics import Durations
    from cacheplug.integration._cdc import PostgresChangeFeed
    from cacheplug.integration._debezium import DebeziumStreamFeed
    from cacheplug.integration._outbox import OutboxRelay

__all__ = [
    "DASHBOARD_SCRIPT",
    "dashboard_figures",
    "dashboard_html",
    "dashboard_page",
    "refresh_interval",
]

TIERS: Final = ("l1", "store", "stale", "replica")

logger = logging.getLogger("cacheplug")


def _timing(durations: Durations) -> dict[str, float | int | None]:
    """Count, mean and the histogram's p50 / p95 (each the upper bound of its bucket), in ms."""

    def quantile(share: float) -> float | None:
        if not durations.count:
            return None
        wanted = share * durations.count
        for bound, cumulative in durations.buckets:
            if cumulative >= wanted:
                return None if bound == float("inf") else bound * 1000
        return None

    mean = durations.sum / durations.count * 1000 if durations.count else None
    return {
        "count": durations.count,
        "mean_ms": mean,
        "p50_ms": quantile(0.5),
        "p95_ms": quantile(0.95),
    }


def _backlogs(relays: Mapping[str, OutboxRelay]) -> dict[str, dict[str, Any]]:
    """Each database's outbox backlog; one that cannot be read says so, without the
    database's error (its message may carry a host, a user, a password)."""
    found: dict[str, dict[str, Any]] = {}
    for database, relay in relays.items():
        try:
            backlog = relay.backlog()
        except Exception as exc:  # the driver's own exception: the database is down
            logger.debug("cacheplug: outbox backlog of %r not read: %s", database, redact(str(exc)))
            found[database] = {
                "rows": None,
                "oldest_age_seconds": None,
                "relayed": relay.relayed,
                "error": "not readable",
            }
        else:
            found[database] = {
                "rows": backlog.rows,
                "oldest_age_seconds": backlog.oldest_age,
                "relayed": relay.relayed,
            }
    return found


def _backlog_text(outbox: dict[str, dict[str, Any]] | None) -> str:
    if not outbox:
        return "not configured"
    parts = []
    for database, backlog in outbox.items():
        if backlog["rows"] is None:
            parts.append(f"{database}: {backlog['error']}, relayed {backlog['relayed']}")
            continue
        age = backlog["oldest_age_seconds"]
        oldest = "" if age is None else f", oldest {age:.1f} s"
        rows = f"{backlog['rows']} row{'' if backlog['rows'] == 1 else 's'}"
        parts.append(f"{database}: {rows}{oldest}, relayed {backlog['relayed']}")
    return "; ".join(parts)


def dashboard_figures(
    cache: Cache,
    *,
    change_feed: PostgresChangeFeed | DebeziumStreamFeed | None = None,
    outbox: Mapping[str, OutboxRelay] | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """This process's figures for ``cache`` (see the module docstring), as plain data. A
    store that cannot be reached is reported in the figures, never raised. ``outbox``: the
    relays the adapter runs, by database; ``"outbox"`` is None without any (the outbox is
    off, or no relay started in this process yet), else each database's rows waiting, the
    oldest one's age in seconds and the rows its relay delivered (rows and age None, and an
    ``"error"``, for a database that cannot be read)."""
    stats = cache.stats()
    durations = cache.durations()
    queues: dict[str, dict[str, int | None]] = {}
    for name, queue in cache.write_behind_queues().items():
        try:
            queues[name] = {"queued": queue.length(), "dead_letters": queue.dead_count()}
        except CacheError:
            queues[name] = {"queued": None, "dead_letters": None}
    lag = None
    if change_feed is not None:
        report = feed_report(change_feed)
        lag = {"text": report["text"], "warning": report.get("warning")}
    breaker = cache.breaker
    return {
        "store": repr(cache.store),
        "namespace": cache.namespace_name,
        "hit_ratio": stats.hit_ratio,
        "hits": stats.hits,
        "misses": stats.misses,
        "hits_by_tier": {tier: stats.hits_by_tier()[tier] for tier in TIERS},
        "loads": stats.loads,
        "refreshes": stats.refreshes,
        "coalesced": stats.coalesced,
        "bypassed": stats.bypassed,
        "errors": stats.errors,
        "load_times": _timing(durations.loads),
        "lease_waits": _timing(durations.lease_waits),
        "hot_keys": [{"key": key, "per_second": rate} for key, rate in cache.hot_keys(top)],
        "pending_invalidations": [
            {"kind": item.kind, "store_key": item.store_key}
            for item in cache.pending_invalidations()
        ],
        "change_feed_lag": lag,
        "outbox": _backlogs(outbox) if outbox else None,
        "write_behind": queues,
        "breaker": "open" if breaker.is_open else ("tripped" if breaker.tripped else "closed"),
    }


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _rows(rows: list[tuple[str, str]], table_id: str) -> str:
    cells = "".join(
        f'<tr><th scope="row">{escape(name)}</th><td>{escape(value)}</td></tr>'
        for name, value in rows
    )
    return f'<table id="{table_id}">{cells}</table>'


def dashboard_html(figures: dict[str, Any]) -> str:
    """The dashboard's body for ``figures`` (from :func:`dashboard_figures`); every value is
    escaped. Put it in an element ``id="cacheplug-dashboard"`` with :data:`DASHBOARD_SCRIPT`
    to refresh it."""
    tiers = figures["hits_by_tier"]
    loads, waits = figures["load_times"], figures["lease_waits"]
    summary = _rows(
        [
            ("store", f"{figures['store']} (namespace {figures['namespace']})"),
            ("hit ratio", f"{figures['hit_ratio']:.1%}"),
            ("hits / misses", f"{figures['hits']} / {figures['misses']}"),
            *((f"hits: {tier}", str(tiers[tier])) for tier in TIERS),
            ("loads", f"{figures['loads']} (background refreshes: {figures['refreshes']})"),
            (
                "load time",
                f"mean {_ms(loads['mean_ms'])}, p50 ≤ {_ms(loads['p50_ms'])}, "
                f"p95 ≤ {_ms(loads['p95_ms'])}",
            ),
            ("stampedes averted", str(figures["coalesced"])),
            ("waits for another process's load", f"{waits['count']}, mean {_ms(waits['mean_ms'])}"),
            ("bypassed", str(figures["bypassed"])),
            ("store errors", str(figures["errors"])),
            ("circuit breaker", figures["breaker"]),
            ("pending invalidations", str(len(figures["pending_invalidations"]))),
            ("change feed lag", (figures["change_feed_lag"] or {}).get("text") or "not configured"),
            ("outbox backlog", _backlog_text(figures.get("outbox"))),
        ],
        "cacheplug-summary",
    )
    hot = "".join(
        f"<li><code>{escape(item['key'])}</code> {item['per_second']:.1f}/s</li>"
        for item in figures["hot_keys"]
    )
    pending = "".join(
        f"<li>{escape(item['kind'])} <code>{escape(item['store_key'])}</code></li>"
        for item in figures["pending_invalidations"]
    )
    queues = "".join(
        f"<li><code>{escape(name)}</code>: {counts['queued']} queued, "
        f"{counts['dead_letters']} dead letter(s)</li>"
        for name, counts in figures["write_behind"].items()
    )
    return (
        f'<div id="cacheplug-figures" data-breaker="{escape(figures["breaker"])}" '
        f'data-hit-ratio="{figures["hit_ratio"]:.4f}">'
        f"<h2>Cache</h2>{summary}"
        f'<h2>Hot keys</h2><ul id="cacheplug-hot-keys">{hot or "<li>None yet.</li>"}</ul>'
        f'<h2>Pending invalidations</h2><ul id="cacheplug-pending">{pending or "<li>None.</li>"}'
        f'</ul><h2>Write-behind queues</h2><ul id="cacheplug-queues">'
        f"{queues or '<li>None.</li>'}</ul></div>"
    )


DASHBOARD_SCRIPT: Final = """<script>
(function () {
  var root = document.getElementById("cacheplug-dashboard");
  var every = Number(root.dataset.refreshSeconds) * 1000;
  function refresh() {
    fetch(root.dataset.jsonUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) {
        return response.ok ? response.json() : Promise.reject(response.status);
      })
      .then(function (data) {
        root.querySelector("#cacheplug-body").innerHTML = data.html;
        root.dataset.refreshes = String(Number(root.dataset.refreshes || "0") + 1);
      })
      .catch(function (why) { root.dataset.error = String(why); })
      .finally(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
</script>"""
"""Polls ``data-json-url`` every ``data-refresh-seconds`` and redraws ``#cacheplug-body``
(counting ``data-refreshes``)."""


def refresh_interval(asked: str | None, default: float = 5.0) -> float:
    """The refresh interval a request asked for (``?refresh=N``, seconds), kept within one
    second and an hour; ``default`` when it asked for none or for something else."""
    try:
        seconds = float(asked) if asked is not None else default
    except ValueError:
        return default
    return min(max(seconds, 1.0), 3600.0) if seconds == seconds else default  # NaN: default


def dashboard_page(figures: dict[str, Any], json_url: str, refresh_seconds: float) -> str:
    """The dashboard's element: the body, refreshed from ``json_url`` on its own."""
    return (
        f'<div id="cacheplug-dashboard" data-json-url="{escape(json_url)}" '
        f'data-refresh-seconds="{refresh_seconds:g}" data-refreshes="0">'
        f'<div id="cacheplug-body">{dashboard_html(figures)}</div></div>{DASHBOARD_SCRIPT}'
    )
