"""Change data capture as the adapters run it: the ``CDC`` setting (:func:`cdc_settings`), the
connection string of the configured database (:func:`postgres_conninfo`,
:func:`conninfo_from_url`), the ORM's spelling of what a change wrote (:func:`orm_tags_for`),
and the command body both ``manage.py cacheplug_cdc`` and ``flask cacheplug cdc`` call
(:func:`run_change_feed`), so that both behave and print alike.

The adapters only say where the database is and how their ORM spells a primary key.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cacheplug._redact import redact
from cacheplug.exceptions import ConfigurationError
from cacheplug.integration._cdc import DEFAULT_SLOT, NotLanded, PostgresChangeFeed, TagsFor
from cacheplug.integration._cdc_wire import lsn
from cacheplug.integration._operations import OperationError, Write
from cacheplug.integration._outbox import OUTBOX_TABLE, landed_invalidation
from cacheplug.integration._sql import ANY_ROW, TableWrite

if TYPE_CHECKING:
    from cacheplug.cache import Cache

CDC_SOURCES: Final = ("postgresql",)
"""The values of the ``CDC`` setting's ``SOURCE`` (Debezium events from a Redis Stream,
``"debezium-redis"``, are to come)."""
CDC_KEYS: Final = ("SOURCE", "DATABASE", "SLOT")
CDC_HINT: Final = (
    "Use None (off) or a dict such as {'SOURCE': 'postgresql', 'DATABASE': 'default', 'SLOT': "
    "'cacheplug'}, every key optional but SOURCE (Flask: the same keys in lower case). "
    "SOURCE: 'postgresql' (Debezium events from a Redis Stream come later). DATABASE: Django a "
    "DATABASES alias, Flask a SQLAlchemy bind name or a database URL (default: the default "
    "one). SLOT: the replication slot, lower-case letters, digits and _ (default 'cacheplug')."
)
DROP_WAIT: Final = 3.0
"""Seconds ``--drop-slot`` waits for a slot a consumer is still letting go of."""
ONCE_TIMEOUT: Final = 60.0
"""Seconds ``--once`` waits for the slot to catch up with the end of WAL it saw at start."""

_SLOT_NAME: Final = re.compile(r"[a-z0-9_]{1,63}")
_NOT_CONNINFO: Final = frozenset(
    # Django's own OPTIONS of its PostgreSQL backend, and psycopg's connect() arguments:
    # not libpq connection parameters.
    {"isolation_level", "server_side_binding", "assume_role", "pool", "cursor_factory"}
    | {"context", "prepare_threshold", "autocommit", "row_factory"}
)


@dataclass(frozen=True)
class CdcSettings:
    """The ``CDC`` setting, checked: ``database`` None means the default one."""

    source: str
    database: str | None
    slot: str


def cdc_settings(value: Any) -> CdcSettings | None:
    """The ``CDC`` setting ``value`` (None: off; a dict of ``SOURCE``, ``DATABASE``,
    ``SLOT``, keys in any case, ``SOURCE`` required). Raises
    :class:`~cacheplug.ConfigurationError` naming every problem."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigurationError(f"must be a dict with SOURCE (or None), not {value!r}")
    given = {str(key).upper(): (key, item) for key, item in value.items()}
    problems = [
        f"has an unknown key {key!r}" for upper, (key, _) in given.items() if upper not in CDC_KEYS
    ]
    source = given.get("SOURCE", (None, None))[1]
    if "SOURCE" not in given:
        problems.append("needs SOURCE")
    elif source not in CDC_SOURCES:
        choices = " or ".join(repr(choice) for choice in CDC_SOURCES)
        problems.append(f"SOURCE must be {choices}, not {source!r}")
    database = given.get("DATABASE", (None, None))[1]
    if database is not None and (not isinstance(database, str) or not database.strip()):
        problems.append(f"DATABASE must be a name (or None), not {database!r}")
    slot = given.get("SLOT", (None, DEFAULT_SLOT))[1]
    if not isinstance(slot, str) or not _SLOT_NAME.fullmatch(slot):
        problems.append(
            f"SLOT must be 1 to 63 lower-case letters, digits or _ (a PostgreSQL replication "
            f"slot name), not {slot!r}"
        )
    if problems:
        raise ConfigurationError("; ".join(problems))
    return CdcSettings(str(source), database, slot)


def configured_cdc(
    cdc: CdcSettings | None, *, slot: str | None, setting: str, drop_slot: bool = False
) -> CdcSettings:
    """What a command consumes: the ``CDC`` setting (spelled ``setting`` in messages), its
    slot replaced by ``--slot``. With CDC off, only ``--drop-slot`` runs (on the default
    database and slot, or ``--slot``): a slot left behind is dropped after CDC was turned
    off. Raises :class:`OperationError` saying why not."""
    if cdc is None:
        if not drop_slot:
            raise OperationError(
                f"change data capture is off: set {setting} (SOURCE 'postgresql', and "
                "DATABASE and SLOT if not the defaults)"
            )
        cdc = CdcSettings(CDC_SOURCES[0], None, DEFAULT_SLOT)
    if slot is None:
        return cdc
    if not _SLOT_NAME.fullmatch(slot):
        raise OperationError(
            f"--slot {slot!r}: a replication slot name is 1 to 63 lower-case letters, digits or _"
        )
    return CdcSettings(cdc.source, cdc.database, slot)


# -- the database ---------------------------------------------------------------------------


def postgres_conninfo(params: Mapping[str, Any]) -> str:
    """A libpq connection string of ``params`` (``dbname``, ``user``, ``password``, ``host``,
    ``port`` and any other libpq parameter); empty values are left out, and so are the
    options that are Django's or psycopg's, not libpq's."""
    from psycopg.conninfo import make_conninfo

    kept = {
        name: str(value)
        for name, value in params.items()
        if value not in (None, "")
        and name not in _NOT_CONNINFO
        and isinstance(value, str | int | float)
        and not isinstance(value, bool)
    }
    return make_conninfo("", **kept)


def conninfo_from_url(url: str) -> str:
    """A SQLAlchemy or libpq URL as libpq takes it (``postgresql+psycopg://`` ->
    ``postgresql://``); :class:`OperationError` when it is not PostgreSQL's."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.split("+", 1)[0].lower() not in ("postgresql", "postgres"):
        raise OperationError(
            f"{redact(url)} is not a PostgreSQL database: change data capture reads a "
            "PostgreSQL logical replication slot"
        )
    return f"postgresql://{rest}"


def describe_conninfo(params: Mapping[str, Any]) -> str:
    """``host:port/dbname, user name`` of connection ``params``: never the password."""
    host = params.get("host") or "localhost"
    port = params.get("port") or 5432
    where = f"{host}:{port}/{params.get('dbname') or ''}"
    user = params.get("user")
    return redact(f"{where}, user {user}" if user else where)


# -- the ORM's tags -------------------------------------------------------------------------


def _single(table: str, key: tuple[str, ...]) -> Any:
    return key[0] if len(key) == 1 else None


def orm_tags_for(
    written: Callable[[TableWrite], Iterable[str]],
    row_value: Callable[[str, tuple[str, ...]], Any] = _single,
) -> TagsFor:
    """A feed's ``tags_for`` giving what the ORM hooks give a write: ``written`` is the
    adapter's tags of a :class:`TableWrite` (its key spelling, its children tables);
    ``row_value(table, key)`` turns a key as PostgreSQL prints it (one text per key column)
    into the row value ``written`` spells (None: the rows cannot be named: the table's
    "rows unknown" tag). The outbox table is skipped: nothing depends on it."""

    def tags_for(table: str, key: tuple[str, ...] | None) -> Iterable[str]:
        if table == OUTBOX_TABLE:
            return ()
        value = None if key is None else row_value(table, key)
        return written(TableWrite(table, ANY_ROW if value is None else (value,)))

    return tags_for


# -- the command ----------------------------------------------------------------------------


def change_feed(cache: Cache, dsn: str, *, slot: str, tags_for: TagsFor) -> PostgresChangeFeed:
    """The feed the commands run: invalidations on ``cache``, confirmed once they landed."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise OperationError(
            "change data capture needs psycopg: pip install 'cacheplug[postgres]'"
        ) from exc
    return PostgresChangeFeed(dsn, landed_invalidation(cache), slot=slot, tags_for=tags_for)


def run_change_feed(
    feed: PostgresChangeFeed,
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
    raises :class:`OperationError` when the database cannot be read."""
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


def _stop_on_signals(feed: PostgresChangeFeed) -> Callable[[], None]:
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
