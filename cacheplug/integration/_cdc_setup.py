"""Change data capture as the adapters set it up: the ``CDC`` setting (:func:`cdc_settings`,
:func:`configured_cdc`), the connection string of the configured database
(:func:`postgres_conninfo`, :func:`conninfo_from_url`), the ORM's spelling of what a change
wrote (:func:`orm_tags_for`), and the feeds the commands run (:func:`change_feed`,
:func:`stream_feed`; ``_cdc_command`` runs them).

The adapters only say where the database is and how their ORM spells a primary key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from cacheplug._redact import redact
from cacheplug.exceptions import ConfigurationError
from cacheplug.integration._cdc import DEFAULT_SLOT, PostgresChangeFeed
from cacheplug.integration._changes import TagsFor
from cacheplug.integration._debezium import DEFAULT_GROUP, DebeziumStreamFeed
from cacheplug.integration._operations import OperationError
from cacheplug.integration._outbox import OUTBOX_TABLE, landed_invalidation
from cacheplug.integration._sql import ANY_ROW, TableWrite

if TYPE_CHECKING:
    from cacheplug.cache import Cache

POSTGRESQL: Final = "postgresql"
DEBEZIUM_REDIS: Final = "debezium-redis"
CDC_SOURCES: Final = (POSTGRESQL, DEBEZIUM_REDIS)
"""The values of the ``CDC`` setting's ``SOURCE``: a PostgreSQL logical replication slot, or
Debezium change events from Redis Streams (Debezium Server's Redis sink)."""
CDC_KEYS: Final = ("SOURCE", "DATABASE", "SLOT", "REDIS", "STREAM", "GROUP")
CDC_HINT: Final = (
    "Use None (off) or a dict such as {'SOURCE': 'postgresql', 'DATABASE': 'default', 'SLOT': "
    "'cacheplug'} or {'SOURCE': 'debezium-redis', 'STREAM': 'app.public.*'}, every key "
    "optional but SOURCE (and STREAM for debezium-redis; Flask: the same keys in lower case). "
    "postgresql: DATABASE is Django's DATABASES alias or Flask's SQLAlchemy bind name or "
    "database URL (default: the default one), SLOT the replication slot (lower-case letters, "
    "digits and _; default 'cacheplug'). debezium-redis: STREAM a stream name or pattern with "
    "* (or a list of them), REDIS the Redis URL holding them (default: the cache's store), "
    "GROUP the consumer group (default 'cacheplug')."
)
_SLOT_NAME: Final = re.compile(r"[a-z0-9_]{1,63}")
_NOT_CONNINFO: Final = frozenset(
    # Django's own OPTIONS of its PostgreSQL backend, and psycopg's connect() arguments:
    # not libpq connection parameters.
    {"isolation_level", "server_side_binding", "assume_role", "pool", "cursor_factory"}
    | {"context", "prepare_threshold", "autocommit", "row_factory"}
)


@dataclass(frozen=True)
class CdcSettings:
    """The ``CDC`` setting, checked: ``database`` None means the default one; ``redis`` None
    the cache's store (``debezium-redis``)."""

    source: str
    database: str | None
    slot: str
    streams: tuple[str, ...] = ()
    redis: str | None = None
    group: str = DEFAULT_GROUP


def cdc_settings(value: Any) -> CdcSettings | None:
    """The ``CDC`` setting ``value`` (None: off; a dict of the :data:`CDC_KEYS`, keys in any
    case, ``SOURCE`` required, and ``STREAM`` for ``debezium-redis``). Raises
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
    streams = _streams(given.get("STREAM", (None, None))[1], problems)
    if source == DEBEZIUM_REDIS and "STREAM" not in given:
        problems.append("SOURCE 'debezium-redis' needs STREAM (a stream name or pattern)")
    if source == POSTGRESQL:
        problems += [
            f"{key} is for SOURCE 'debezium-redis', not 'postgresql'"
            for key in ("REDIS", "STREAM", "GROUP")
            if key in given
        ]
    elif source == DEBEZIUM_REDIS:
        problems += [
            f"{key} is for SOURCE 'postgresql', not 'debezium-redis'"
            for key in ("DATABASE", "SLOT")
            if key in given
        ]
    redis_url = given.get("REDIS", (None, None))[1]
    if redis_url is not None and (not isinstance(redis_url, str) or "://" not in redis_url):
        problems.append(f"REDIS must be a redis:// URL (or None), not {redact(str(redis_url))!r}")
    group = given.get("GROUP", (None, DEFAULT_GROUP))[1]
    if not isinstance(group, str) or not group.strip():
        problems.append(f"GROUP must be a consumer group's name, not {group!r}")
    if problems:
        raise ConfigurationError("; ".join(problems))
    return CdcSettings(str(source), database, slot, streams, redis_url, str(group))


def _streams(value: Any, problems: list[str]) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if value is None:
        return ()
    if (
        not isinstance(names, list | tuple)
        or not names
        or not all(isinstance(name, str) and name.strip() for name in names)
    ):
        problems.append(f"STREAM must be a stream name or pattern, or a list of them: {value!r}")
        return ()
    return tuple(names)


def configured_cdc(
    cdc: CdcSettings | None,
    *,
    slot: str | None,
    setting: str,
    drop_slot: bool = False,
    source: str | None = None,
    streams: Sequence[str] = (),
) -> CdcSettings:
    """What a command consumes: the ``CDC`` setting (spelled ``setting`` in messages), with
    the command line's ``--slot``, ``--source`` and ``--stream`` in place of its own. With CDC
    off, ``--source debezium-redis --stream NAME`` runs on its own, and ``--drop-slot`` on the
    default database and slot (or ``--slot``): a slot left behind is dropped after CDC was
    turned off. Raises :class:`OperationError` saying why not."""
    if source is not None and source not in CDC_SOURCES:
        choices = " or ".join(repr(choice) for choice in CDC_SOURCES)
        raise OperationError(f"--source must be {choices}, not {source!r}")
    if cdc is None:
        if source == DEBEZIUM_REDIS or (source is None and streams):
            cdc = CdcSettings(DEBEZIUM_REDIS, None, DEFAULT_SLOT)
        elif drop_slot or source == POSTGRESQL:
            cdc = CdcSettings(POSTGRESQL, None, DEFAULT_SLOT)
        else:
            raise OperationError(
                f"change data capture is off: set {setting} (SOURCE 'postgresql', and "
                "DATABASE and SLOT if not the defaults; or SOURCE 'debezium-redis' and STREAM), "
                "or give --source debezium-redis --stream NAME"
            )
    elif source is not None and source != cdc.source:
        cdc = CdcSettings(source, cdc.database, cdc.slot, cdc.streams, cdc.redis, cdc.group)
    if streams:
        cdc = replace(cdc, streams=tuple(streams))
    if cdc.source == DEBEZIUM_REDIS:
        if drop_slot or slot is not None:
            raise OperationError(
                "--slot and --drop-slot are for SOURCE 'postgresql': Debezium's events come "
                "from Redis Streams (--stream)"
            )
        if not cdc.streams:
            raise OperationError(
                f"SOURCE 'debezium-redis' needs the streams to read: STREAM in {setting}, "
                "or --stream NAME"
            )
        return cdc
    if streams:
        raise OperationError("--stream is for SOURCE 'debezium-redis'")
    if slot is None:
        return cdc
    if not _SLOT_NAME.fullmatch(slot):
        raise OperationError(
            f"--slot {slot!r}: a replication slot name is 1 to 63 lower-case letters, digits or _"
        )
    return replace(cdc, slot=slot)


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


def stream_feed(
    cache: Cache, cdc: CdcSettings, *, tags_for: TagsFor
) -> tuple[DebeziumStreamFeed, str]:
    """The Debezium feed of ``cdc`` (``SOURCE`` ``debezium-redis``): its streams on the Redis
    at ``cdc.redis``, or else the cache's own store; and where that is, for messages (no
    password). :class:`OperationError` when there is no Redis to read."""
    import redis

    url = cdc.redis or getattr(cache.store, "url", None)
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise OperationError(
            "SOURCE 'debezium-redis' reads Redis Streams: set REDIS in the CDC setting (the "
            "cache's store is not a Redis server's URL)"
        )
    client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5)
    feed = DebeziumStreamFeed(
        client,
        landed_invalidation(cache),
        streams=cdc.streams,
        group=cdc.group,
        tags_for=tags_for,
    )
    names = ", ".join(repr(stream) for stream in cdc.streams)
    return feed, f"stream(s) {names} (group {cdc.group!r}) on {redact(url)}"


ChangeFeed = PostgresChangeFeed | DebeziumStreamFeed
