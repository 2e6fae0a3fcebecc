"""How far a change feed is behind, for the stats commands: a PostgreSQL slot's retained WAL
(with a warning past the feed's ``warn_lag_bytes``, or when the slot lost WAL), or a Debezium
feed's streams (entries, pending, not delivered). A source that cannot be reached is reported,
not raised: the rest of the stats still count."""

from __future__ import annotations

from typing import Any

from cacheplug._redact import redact
from cacheplug.integration._cdc import PostgresChangeFeed
from cacheplug.integration._debezium import DebeziumStreamFeed


def feed_report(feed: PostgresChangeFeed | DebeziumStreamFeed) -> dict[str, Any]:
    """The lag of a change feed, for :func:`stats_report`: its text, a warning or None, and
    the figures (JSON)."""
    if isinstance(feed, DebeziumStreamFeed):
        return _streams_report(feed)
    return _slot_report(feed)


def _streams_report(feed: DebeziumStreamFeed) -> dict[str, Any]:
    """How far the Debezium feed's group is behind on each stream (Redis being down is
    reported, not raised)."""
    report: dict[str, Any] = {"group": feed.group, "warning": None}
    try:
        lags = feed.lag()
    except Exception as exc:  # redis-py's errors: the server cannot be reached
        error = redact(str(exc).strip())
        return {**report, "streams": [], "error": error, "text": f"cannot be read: {error}"}
    finally:
        feed.close()
    report["streams"] = [
        {"stream": lag.stream, "length": lag.length, "pending": lag.pending, "lag": lag.lag}
        for lag in lags
    ]
    if not lags:
        report["text"] = f"group {feed.group!r}: no stream matches {', '.join(feed.patterns)}"
        return report
    parts = [
        f"{lag.stream}: {lag.length} entries, {lag.pending} pending, "
        f"{'?' if lag.lag is None else lag.lag} not delivered"
        for lag in lags
    ]
    report["text"] = f"group {feed.group!r}: " + "; ".join(parts)
    return report


def _slot_report(feed: PostgresChangeFeed) -> dict[str, Any]:
    """The lag of a change feed's slot, for :func:`stats_report` (the database being down is
    reported, not raised: the rest of the stats still count)."""
    slot: dict[str, Any] = {"slot": feed.slot, "warning": None}
    try:
        lag = feed.lag()
    except Exception as exc:  # psycopg's errors: the database cannot be reached
        error = redact(str(exc).strip())
        return {**slot, "error": error, "text": f"{feed.slot!r}: cannot be read: {error}"}
    if lag is None:
        return {**slot, "exists": False, "text": f"{feed.slot!r}: not created yet"}
    reader = "a consumer is reading it" if lag.active else "no consumer is reading it"
    slot.update(
        exists=True,
        retained_bytes=lag.retained_bytes,
        unconfirmed_bytes=lag.unconfirmed_bytes,
        active=lag.active,
        wal_status=lag.wal_status,
        text=f"{feed.slot!r}: {_size(lag.retained_bytes)} of WAL retained, "
        f"{_size(lag.unconfirmed_bytes)} not confirmed; {reader}",
    )
    if lag.wal_status == "lost":
        slot["warning"] = (
            f"the slot {feed.slot!r} lost WAL it needed (max_slot_wal_keep_size): changes were "
            "missed; drop it (--drop-slot), flush the cache, and start the consumer again"
        )
    elif lag.retained_bytes > feed.warn_lag_bytes:
        slot["warning"] = (
            f"the slot {feed.slot!r} retains {_size(lag.retained_bytes)} of WAL (over "
            f"{_size(feed.warn_lag_bytes)}); an abandoned slot fills the disk: start its "
            "consumer, drop it (--drop-slot) or cap it with max_slot_wal_keep_size"
        )
    return slot


def _size(count: int) -> str:
    for unit in ("B", "kB", "MB"):
        if count < 1024:
            return f"{count} {unit}"
        count //= 1024
    return f"{count} GB"
