"""Prometheus metrics of one or more caches: :class:`CacheCollector`, a custom collector.

It reads the counters when Prometheus scrapes (``Cache.stats()``, ``Cache.durations()``,
``Cache.shared_stats()``), so a hit pays nothing for it. Every sample carries the labels
``cache`` (the name it was given), ``namespace`` and ``scope``: ``"process"`` for what this
process counted, ``"fleet"`` for the totals every process published to the store
(``Cache.publish_stats``; the adapters publish after requests, at most every 10 seconds).
Fleet samples are the same whichever process is scraped: aggregate them with ``max``, not
``sum``. Durations and gauges (pending invalidations, the breaker) exist per process only.

Needs ``pip install 'cacheplug[prometheus]'``; see ``docs/observability.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

try:
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector
except ImportError as exc:  # the error says what to install, not just what is missing
    raise ImportError(
        f"cacheplug.prometheus needs prometheus-client ({exc}); "
        "install it with: pip install 'cacheplug[prometheus]'"
    ) from exc

from cacheplug import Cache, CacheError, CacheStats, Durations, redact

if TYPE_CHECKING:
    from cacheplug.integration import DebeziumStreamFeed, OutboxRelay, PostgresChangeFeed

__all__ = ["CacheCollector"]

logger = logging.getLogger("cacheplug")

_LABELS = ("cache", "namespace", "scope")
_COUNTERS = (
    # (family, CacheStats field, help)
    ("cacheplug_misses", "misses", "Lookups the cache could not answer."),
    ("cacheplug_loads", "loads", "Loader calls (misses, background refreshes, bypassed reads)."),
    (
        "cacheplug_coalesced",
        "coalesced",
        "Callers that got another caller's load instead of loading (stampedes averted).",
    ),
    ("cacheplug_refreshes", "refreshes", "Background refreshes that ran a loader."),
    ("cacheplug_errors", "errors", "Store calls that failed (the cache fell through)."),
    (
        "cacheplug_bypassed",
        "bypassed",
        "Reads that skipped the cache (max_staleness=0, or their invalidation pending).",
    ),
    (
        "cacheplug_discarded",
        "discarded",
        "Entries thrown away: bad signature, unknown format, undecodable.",
    ),
    ("cacheplug_invalidations", "invalidations", "Keys, tags and namespaces invalidated."),
)


class CacheCollector(Collector):
    """Exposes ``caches`` (one :class:`~cacheplug.Cache`, labelled ``cache="default"``, or
    ``{name: cache}``) to Prometheus: ``REGISTRY.register(CacheCollector(cache))``.

    ``fleet=False`` leaves out the fleet totals (they cost one store read per cache and
    scrape); ``process=False`` this process's figures (under ``prometheus_client``'s
    multi-process mode, where whichever worker answers a scrape would report its own).
    ``feeds``: change feeds (:class:`~cacheplug.integration.PostgresChangeFeed`,
    :class:`~cacheplug.integration.DebeziumStreamFeed`) whose lag to report, read at each
    scrape; ``relays``: outbox relays by database name (or a callable returning them, asked
    at each scrape, such as ``cacheplug_django.outbox_relays``: the adapters start theirs
    after the collector is made), whose backlog to report and relayed rows to count.
    Register one collector for all caches: two would expose the same families twice.
    """

    def __init__(
        self,
        caches: Cache | Mapping[str, Cache],
        *,
        fleet: bool = True,
        process: bool = True,
        feeds: Sequence[PostgresChangeFeed | DebeziumStreamFeed] = (),
        relays: Mapping[str, OutboxRelay] | Callable[[], Mapping[str, OutboxRelay]] | None = None,
    ) -> None:
        if isinstance(caches, Cache):
            caches = {"default": caches}
        for name, cache in caches.items():
            if not isinstance(cache, Cache):
                raise TypeError(f"caches[{name!r}] must be a Cache, not {type(cache).__name__}")
        self.caches = dict(caches)
        self.fleet = fleet
        self.process = process
        self.feeds = tuple(feeds)
        self.relays: Mapping[str, OutboxRelay] | Callable[[], Mapping[str, OutboxRelay]] = (
            relays if callable(relays) else dict(relays or {})
        )

    def describe(self) -> Iterable[Metric]:
        """The families, without samples: registering reads nothing from the store, and
        asks no relay callable (the outbox families are listed for one)."""
        return list(_Families(self.feeds, bool(self.relays)).all())

    def _relays(self) -> Mapping[str, OutboxRelay]:
        if not callable(self.relays):
            return self.relays
        try:
            return self.relays()
        except Exception as exc:  # the adapter's: never fail the scrape for the outbox
            logger.debug("cacheplug: outbox relays not found: %s", redact(str(exc)))
            return {}

    def collect(self) -> Iterable[Metric]:
        relays = self._relays()
        families = _Families(self.feeds, callable(self.relays) or bool(relays))
        for name, cache in self.caches.items():
            if self.process:
                labels = (name, cache.namespace_name, "process")
                families.counts(labels, cache.stats())
                durations = cache.durations()
                families.duration(families.load_seconds, labels, durations.loads)
                families.duration(families.lease_wait, labels, durations.lease_waits)
                families.pending.add_metric(labels, len(cache.pending_invalidations()))
                families.breaker.add_metric(labels, 1.0 if cache.breaker.is_open else 0.0)
            if self.fleet:
                try:
                    shared, _ = cache.shared_stats()
                except CacheError as exc:  # the store is down: the process scope still counts
                    logger.debug("cacheplug: fleet stats of %r not read: %s", name, exc)
                else:
                    families.counts((name, cache.namespace_name, "fleet"), shared)
        families.lags(self.feeds, relays)
        return list(families.all())


class _Families:
    """The metric families of one scrape, filled cache by cache."""

    def __init__(
        self,
        feeds: Sequence[PostgresChangeFeed | DebeziumStreamFeed],
        outbox: bool,
    ) -> None:
        self.hits = CounterMetricFamily(
            "cacheplug_hits",
            "Lookups answered by the cache, by tier (l1, store, stale, replica).",
            labels=(*_LABELS, "tier"),
        )
        self.counters = {
            field: CounterMetricFamily(family, text, labels=_LABELS)
            for family, field, text in _COUNTERS
        }
        self.load_seconds = HistogramMetricFamily(
            "cacheplug_load_duration_seconds",
            "How long loader calls took (misses and background refreshes).",
            labels=_LABELS,
        )
        self.lease_wait = HistogramMetricFamily(
            "cacheplug_lease_wait_seconds",
            "How long callers waited for another process's load of the key.",
            labels=_LABELS,
        )
        self.pending = GaugeMetricFamily(
            "cacheplug_invalidations_pending",
            "Invalidations waiting for the store (their keys bypass the cache meanwhile).",
            labels=_LABELS,
        )
        self.breaker = GaugeMetricFamily(
            "cacheplug_breaker_open",
            "1 while the circuit breaker refuses store calls.",
            labels=_LABELS,
        )
        self.extra: list[Metric] = []
        if feeds:
            self.retained = GaugeMetricFamily(
                "cacheplug_cdc_slot_retained_bytes",
                "WAL the server keeps for a replication slot of a change feed.",
                labels=("slot",),
            )
            self.unconfirmed = GaugeMetricFamily(
                "cacheplug_cdc_slot_unconfirmed_bytes",
                "WAL a change feed has not confirmed yet.",
                labels=("slot",),
            )
            self.undelivered = GaugeMetricFamily(
                "cacheplug_cdc_stream_undelivered",
                "Debezium change events not delivered to the feed's consumer group yet.",
                labels=("group", "stream"),
            )
            self.unacked = GaugeMetricFamily(
                "cacheplug_cdc_stream_pending",
                "Debezium change events delivered, not acknowledged yet.",
                labels=("group", "stream"),
            )
            self.extra += [self.retained, self.unconfirmed, self.undelivered, self.unacked]
        if outbox:
            self.relayed = CounterMetricFamily(
                "cacheplug_outbox_relayed",
                "Outbox rows the relay delivered because their writer could not.",
                labels=("database",),
            )
            self.backlog_rows = GaugeMetricFamily(
                "cacheplug_outbox_backlog_rows",
                "Outbox rows waiting for their invalidation to be delivered.",
                labels=("database",),
            )
            self.oldest_age = GaugeMetricFamily(
                "cacheplug_outbox_oldest_row_age_seconds",
                "Age of the oldest outbox row waiting (0 when none): past about 3 s, writers "
                "cannot reach the cache or no process relays.",
                labels=("database",),
            )
            self.extra += [self.relayed, self.backlog_rows, self.oldest_age]

    def counts(self, labels: tuple[str, str, str], stats: CacheStats) -> None:
        for tier, count in stats.hits_by_tier().items():
            self.hits.add_metric((*labels, tier), count)
        for field, family in self.counters.items():
            family.add_metric(labels, getattr(stats, field))

    @staticmethod
    def duration(
        family: HistogramMetricFamily, labels: tuple[str, str, str], durations: Durations
    ) -> None:
        buckets = [
            ("+Inf" if math.isinf(bound) else repr(bound), float(count))
            for bound, count in durations.buckets
        ]
        family.add_metric(labels, buckets, durations.sum)

    def lags(
        self,
        feeds: Sequence[PostgresChangeFeed | DebeziumStreamFeed],
        relays: Mapping[str, OutboxRelay],
    ) -> None:
        from cacheplug.integration import DebeziumStreamFeed

        for feed in feeds:
            try:
                if isinstance(feed, DebeziumStreamFeed):
                    for stream in feed.lag():
                        labels = (feed.group, stream.stream)
                        if stream.lag is not None:  # None where Redis cannot tell
                            self.undelivered.add_metric(labels, stream.lag)
                        self.unacked.add_metric(labels, stream.pending)
                elif (slot := feed.lag()) is not None:
                    self.retained.add_metric((slot.slot,), slot.retained_bytes)
                    self.unconfirmed.add_metric((slot.slot,), slot.unconfirmed_bytes)
            except Exception as exc:  # psycopg's or redis-py's: the source is down
                logger.debug("cacheplug: change feed lag not read: %s", exc)
        for database, relay in relays.items():
            self.relayed.add_metric((database,), relay.relayed)
            try:
                backlog = relay.backlog()
            except Exception as exc:  # the database driver's: the database is down
                logger.debug(
                    "cacheplug: outbox backlog of %r not read: %s", database, redact(str(exc))
                )
                continue
            self.backlog_rows.add_metric((database,), backlog.rows)
            self.oldest_age.add_metric((database,), backlog.oldest_age or 0.0)

    def all(self) -> Iterator[Metric]:
        yield self.hits
        yield from self.counters.values()
        yield self.load_seconds
        yield self.lease_wait
        yield self.pending
        yield self.breaker
        yield from self.extra
