"""The command body both ``manage.py cacheplug_cdc`` and ``flask cacheplug cdc`` call
(:func:`run_change_feed`), so that both behave and print alike: run a change feed until
SIGTERM or SIGINT, catch up once (``--once``), or drop a PostgreSQL slot (``--drop-slot``)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from cacheplug._redact import redact
from cacheplug.integration._cdc import PostgresChangeFeed
from cacheplug.integration._cdc_setup import ChangeFeed
from cacheplug.integration._cdc_wire import lsn
from cacheplug.integration._changes import NotLanded
from cacheplug.integration._debezium import DebeziumStreamFeed
from cacheplug.integration._operations import OperationError, Write

DROP_WAIT: Final = 3.0
"""Seconds ``--drop-slot`` waits for a slot a consumer is still letting go of."""
ONCE_TIMEOUT: Final = 60.0
"""Seconds ``--once`` waits for the slot to catch up with the end of WAL it saw at start."""


def run_change_feed(
    feed: ChangeFeed,
    *,
    database: str,
    drop_slot: bool = False,
    once: bool = False,
    out: Write,
) -> int:
    """``cacheplug_cdc`` / ``flask cacheplug cdc``: drop the slot (``drop_slot``), consume
    what it holds now (``once``), or consume it until SIGTERM or SIGINT (handlers calling
    ``feed.stop()`` are installed when called from the main thread). ``database`` names the
    database for the messages (no password). Returns the number of changes invalidated;
    raises :class:`OperationError` when the database cannot be read. A Debezium feed:
    ``database`` names its streams, and ``drop_slot`` does not apply."""
    if isinstance(feed, DebeziumStreamFeed):
        return _run_stream_feed(feed, where=database, once=once, out=out)
    import psycopg

    where = f"replication slot {feed.slot!r} of {database}"
    # From the start: a SIGTERM while it connects stops it as cleanly as one later.
    restore = _nothing if drop_slot or once else _stop_on_signals(feed)
    try:
        try:
            if drop_slot:
                _drop(feed, where)
                out(f"dropped the {where}")
                return 0
            _first_poll(feed, where, once, out)
            if once:
                return _catch_up(feed, where, out)
        except psycopg.Error as exc:
            feed.close()
            raise OperationError(f"cannot read the {where}: {_explained(exc)}") from exc
        except ValueError as exc:  # a slot of another plugin or database
            feed.close()
            raise OperationError(str(exc)) from exc
        out(f"consuming the {where}; SIGTERM or Ctrl-C stops")
        feed.run()
    finally:
        restore()
    out(f"stopped: {feed.changes_seen} change(s) invalidated")
    return feed.changes_seen


def _run_stream_feed(feed: DebeziumStreamFeed, *, where: str, once: bool, out: Write) -> int:
    import redis

    restore = _nothing if once else _stop_on_signals(feed)
    try:
        try:
            feed.client.ping()
            if once:
                while feed.poll(0.0):  # until a step finds nothing new, nor left pending
                    pass
                out(f"caught up: {feed.changes_seen} change(s) invalidated from the {where}")
                return feed.changes_seen
        except redis.RedisError as exc:
            raise OperationError(f"cannot read the {where}: {redact(str(exc))}") from exc
        except NotLanded as exc:
            raise OperationError(f"{exc}: the entries stay pending for the next run") from exc
        out(f"consuming the {where}; SIGTERM or Ctrl-C stops")
        feed.run()
    finally:
        restore()
        feed.close()
    out(f"stopped: {feed.changes_seen} change(s) invalidated")
    return feed.changes_seen


def _drop(feed: PostgresChangeFeed, where: str) -> None:
    """Drop the slot; one that a consumer just closed is waited for a moment (its WAL sender
    lets go of it), one a running consumer reads is refused."""
    from psycopg import errors

    deadline = time.monotonic() + DROP_WAIT
    while True:
        try:
            if not feed.drop_slot():
                raise OperationError(f"there is no {where}: nothing was dropped")
            return
        except errors.ObjectInUse as exc:
            if time.monotonic() > deadline:
                raise OperationError(
                    f"the {where} is being read by a consumer: stop it first"
                ) from exc
            time.sleep(0.05)


def _first_poll(feed: PostgresChangeFeed, where: str, once: bool, out: Write) -> None:
    """Connect (creating the slot if missing): a database that cannot be read fails here,
    before the command says it runs. A slot still held by a consumer that just stopped is
    waited for a moment; past that, ``run()`` keeps trying (``once`` fails)."""
    import psycopg

    deadline = time.monotonic() + DROP_WAIT
    while True:
        try:
            feed.poll(0.0)
            return
        except NotLanded:
            return  # the cache is down: the slot keeps the changes, and run() retries
        except psycopg.Error as exc:
            feed.close()
            if _IN_USE not in str(exc):
                raise
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            if once:
                raise
            out(f"the {where} is in use ({redact(str(exc).strip())}); retrying")
            return


def _catch_up(feed: PostgresChangeFeed, where: str, out: Write) -> int:
    """Consume until the slot has confirmed the end of WAL as it was at the start."""
    import psycopg

    with psycopg.connect(feed.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    target = lsn(row[0]) if row is not None else 0
    feed.status_interval = min(feed.status_interval, feed.wait)  # ask for the WAL end often
    deadline = time.monotonic() + ONCE_TIMEOUT
    try:
        while feed.landed_lsn < target:
            if time.monotonic() > deadline:
                raise OperationError(f"the {where} did not catch up within {ONCE_TIMEOUT:.0f} s")
            try:
                feed.poll(feed.wait)
            except NotLanded as exc:
                raise OperationError(f"{exc}: the slot keeps them for the next run") from exc
    finally:
        feed.close()
    out(f"caught up: {feed.changes_seen} change(s) invalidated from the {where}")
    return feed.changes_seen


def _stop_on_signals(feed: ChangeFeed) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return _nothing  # signal handlers can only be set from the main thread

    def stop(signum: int, frame: Any) -> None:
        feed.stop()

    previous = {number: signal.signal(number, stop) for number in _STOP_SIGNALS}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore


def _nothing() -> None:
    pass


_STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)
_IN_USE: Final = "is active for PID"


def _explained(exc: Exception) -> str:
    message = redact(str(exc).strip())
    lowered = message.lower()
    if "wal_level" in lowered:
        return f"{message} (set wal_level = logical in postgresql.conf and restart the server)"
    if "replication" in lowered and ("permission" in lowered or "must be" in lowered):
        return f"{message} (the role needs the REPLICATION attribute: ALTER ROLE ... REPLICATION)"
    if "replication slots" in lowered and "max_replication_slots" in lowered:
        return f"{message} (raise max_replication_slots, or drop an abandoned slot)"
    return message
