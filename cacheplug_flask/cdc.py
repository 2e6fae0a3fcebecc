"""Change data capture for Flask: where the ``CACHEPLUG_CDC`` setting's database is, and how
SQLAlchemy spells what a change wrote (the rest is :mod:`cacheplug.integration`'s).

``CACHEPLUG_CDC["database"]`` is, in this order of lookup:

- ``None`` (the default): the app's default engine: Flask-SQLAlchemy's (``db.engine``), or
  else the bind of the session factory given to ``CachePlug(app, sqlalchemy=...)``;
- a database URL (it holds ``://``): used as it is (``postgresql+psycopg://...``: the
  ``+driver`` part is dropped), for an app whose engine the extension does not know;
- any other name: a Flask-SQLAlchemy bind (a key of ``SQLALCHEMY_BINDS``).

A row is tagged as the SQLAlchemy hooks tag it: each key column's text read back as its
column's Python type (``42``, a UUID's canonical text; a composite key joined by ``,``), the
same row of each joined-inheritance child too (as far as the mapped classes of Flask-SQLAlchemy's
``db.Model`` tell).
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from sqlalchemy import Table

from cacheplug import Cache, redact
from cacheplug.integration import (
    DEBEZIUM_REDIS,
    CdcSettings,
    ChangeFeed,
    OperationError,
    TableWrite,
    cdc_settings,
    change_feed,
    configured_cdc,
    conninfo_from_url,
    describe_conninfo,
    orm_tags_for,
    stream_feed,
    written_tags,
)

TagsFor = Callable[[str, "tuple[str, ...] | None"], Iterable[str]]


def database_url(app: Flask, database: str | None, session: Any = None) -> str:
    """The URL (password included) of the database ``database`` names (see the module
    docstring), in an app context; ``OperationError`` when there is none."""
    if database is not None and "://" in database:
        return database
    engine = _engine(app, database, session)
    if engine.dialect.name != "postgresql":
        raise OperationError(
            f"{redact(str(engine.url))} is not a PostgreSQL database: change data capture "
            "reads a PostgreSQL logical replication slot"
        )
    return str(engine.url.render_as_string(hide_password=False))


def _engine(app: Flask, database: str | None, session: Any) -> Any:
    db = app.extensions.get("sqlalchemy")
    if db is not None and hasattr(db, "engines"):
        engines = db.engines
        if database in engines:
            return engines[database]
        known = ", ".join(repr(key) for key in engines if key is not None) or "none"
        raise OperationError(f"no SQLAlchemy bind {database!r} (binds: {known})")
    if database is not None:
        raise OperationError(
            f"no SQLAlchemy bind {database!r}: binds are Flask-SQLAlchemy's; give a database "
            "URL instead"
        )
    factory = getattr(session, "session_factory", session)
    bind = getattr(factory, "kw", {}).get("bind")
    if bind is None:
        raise OperationError(
            "no SQLAlchemy engine is known to the extension: give CDC a 'database' URL"
        )
    return getattr(bind, "engine", bind)


def sqlalchemy_tags_for(mappers: Iterable[Any]) -> TagsFor:
    """A change's tags as the SQLAlchemy hooks give the same write, for the tables of
    ``mappers`` (other tables: their keys as PostgreSQL prints them)."""
    tables: dict[str, Table] = {}
    children: dict[str, list[str]] = {}
    for mapper in mappers:
        own = mapper.local_table.name
        for table in mapper.tables:
            if isinstance(table, Table):
                tables.setdefault(table.name, table)
                if table.name != own:
                    children.setdefault(table.name, []).append(own)

    def spell(table: str, key: Any) -> str:
        found = tables.get(table)
        if found is None:
            return ",".join(key)
        columns = list(found.primary_key.columns)
        return ",".join(_spelled(column, text) for column, text in zip(columns, key, strict=False))

    def written(write: TableWrite) -> list[str]:
        return written_tags(write, spell, lambda table: children.get(table, ()))

    return orm_tags_for(written, _whole_key)


def _whole_key(table: str, key: tuple[str, ...]) -> Any:
    return key


_READ_BACK: dict[type, Callable[[str], Any]] = {
    int: int,
    uuid.UUID: uuid.UUID,
    decimal.Decimal: decimal.Decimal,
    datetime.date: datetime.date.fromisoformat,
    datetime.datetime: datetime.datetime.fromisoformat,
    bool: lambda text: text in ("t", "true"),
}


def _spelled(column: Any, text: str) -> str:
    """PostgreSQL's text of a key value as the hooks spell the value SQLAlchemy reads back."""
    try:
        python_type = column.type.python_type
        return str(_READ_BACK[python_type](text))
    except (NotImplementedError, KeyError, ValueError, decimal.InvalidOperation):
        return text


def feed_of(
    app: Flask, cache: Cache, cdc: CdcSettings, *, session: Any = None, mappers: Iterable[Any] = ()
) -> tuple[ChangeFeed, str]:
    """The change feed of ``cdc`` for ``app`` (in an app context), and what it reads, for
    messages (without a password)."""
    from sqlalchemy.engine import make_url

    if cdc.source == DEBEZIUM_REDIS:
        return stream_feed(cache, cdc, tags_for=sqlalchemy_tags_for(mappers))

    url = database_url(app, cdc.database, session)
    dsn = conninfo_from_url(url)
    feed = change_feed(cache, dsn, slot=cdc.slot, tags_for=sqlalchemy_tags_for(mappers))
    try:
        parsed = make_url(url)
        where = describe_conninfo(
            {
                "user": parsed.username,
                "host": parsed.host,
                "port": parsed.port,
                "dbname": parsed.database,
            }
        )
    except Exception:  # a URL SQLAlchemy cannot parse: libpq may still take it
        where = redact(url)
    if cdc.database is not None and "://" in cdc.database:
        return feed, f"database {where}"
    return feed, f"database {cdc.database or 'default'!r} ({where})"


def feed_for(
    app: Flask,
    cache: Cache,
    prefix: str,
    *,
    mappers: Iterable[Any] = (),
    slot: str | None = None,
    drop_slot: bool = False,
    source: str | None = None,
    streams: tuple[str, ...] = (),
) -> tuple[ChangeFeed, str]:
    """The change feed ``<prefix>_CDC`` describes (the command line's ``--slot``,
    ``--source`` and ``--stream`` overriding it), for the commands; ``OperationError`` saying
    why there is none."""
    cdc = configured_cdc(
        cdc_settings(app.config.get(f"{prefix}_CDC")),
        slot=slot,
        setting=f"{prefix}_CDC",
        drop_slot=drop_slot,
        source=source,
        streams=streams,
    )
    state = app.extensions.get("cacheplug", {}).get(prefix)
    return feed_of(app, cache, cdc, session=getattr(state, "session", None), mappers=mappers)


def stats_feed(
    app: Flask, cache: Cache, prefix: str, mappers: Iterable[Any] = ()
) -> ChangeFeed | None:
    """The change feed whose slot's lag ``flask cacheplug stats`` shows: None when CDC is
    off; ``OperationError`` when it cannot run."""
    cdc = cdc_settings(app.config.get(f"{prefix}_CDC"))
    if cdc is None:
        return None
    state = app.extensions.get("cacheplug", {}).get(prefix)
    return feed_of(app, cache, cdc, session=getattr(state, "session", None), mappers=mappers)[0]
