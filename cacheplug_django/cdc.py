"""Change data capture for Django: where the ``CDC`` setting's database is, and how the ORM
spells what a change wrote (the rest is :mod:`cacheplug.integration`'s).

``CACHEPLUG["CDC"]["DATABASE"]`` names a ``DATABASES`` alias (default ``"default"``) whose
``ENGINE`` is PostgreSQL's (``django.db.backends.postgresql``, PostGIS's, or a backend built
on them); the connection string is made of its ``NAME``, ``USER``, ``PASSWORD``, ``HOST``,
``PORT`` and the libpq parameters of its ``OPTIONS`` (``sslmode``, ``service``, ...). A row is
tagged as the ORM hooks tag it: the key read back by the model's primary key field
(``to_python``), the same row of each multi-table-inheritance child too.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.conf import settings

from cacheplug import Cache
from cacheplug.integration import (
    DEBEZIUM_REDIS,
    CdcSettings,
    ChangeFeed,
    OperationError,
    change_feed,
    configured_cdc,
    describe_conninfo,
    orm_tags_for,
    postgres_conninfo,
    stream_feed,
)
from cacheplug_django.conf import SETTING, read_settings
from cacheplug_django.tags import written_tags

DEFAULT_DATABASE = "default"


def database_problem(alias: str) -> str | None:
    """Why the ``DATABASES`` alias cannot be read by change data capture (None: it can)."""
    databases = getattr(settings, "DATABASES", {})
    if alias not in databases:
        known = ", ".join(repr(name) for name in databases) or "none"
        return f"DATABASES has no alias {alias!r} (known: {known})"
    engine = str(databases[alias].get("ENGINE", ""))
    if _vendor(engine) != "postgresql":
        return (
            f"DATABASES[{alias!r}] is not PostgreSQL ({engine or 'no ENGINE'}): change data "
            "capture reads a PostgreSQL logical replication slot"
        )
    return None


def _vendor(engine: str) -> str | None:
    try:
        return str(import_module(f"{engine}.base").DatabaseWrapper.vendor)
    except Exception:  # not importable (its driver missing): judge by the name
        return "postgresql" if "postgresql" in engine or "postgis" in engine else None


def conninfo(alias: str) -> tuple[str, str]:
    """The libpq connection string of a ``DATABASES`` alias, and how to name it in messages
    (without its password); :class:`~cacheplug.integration.OperationError` when it is not a
    PostgreSQL database."""
    problem = database_problem(alias)
    if problem is not None:
        raise OperationError(problem)
    config: dict[str, Any] = settings.DATABASES[alias]
    params = {
        **(config.get("OPTIONS") or {}),
        "dbname": config.get("NAME"),
        "user": config.get("USER"),
        "password": config.get("PASSWORD"),
        "host": config.get("HOST"),
        "port": config.get("PORT"),
    }
    return postgres_conninfo(params), f"database {alias!r} ({describe_conninfo(params)})"


tags_for = orm_tags_for(written_tags)
"""A change's tags as the ORM hooks give the same write (single-column keys name the row;
a composite key, which the hooks cannot name either, invalidates the table's rows)."""


def feed_for(
    cache: Cache,
    *,
    slot: str | None = None,
    drop_slot: bool = False,
    source: str | None = None,
    streams: tuple[str, ...] = (),
) -> tuple[ChangeFeed, str]:
    """The change feed the ``CDC`` setting describes (the command line's ``--slot``,
    ``--source`` and ``--stream`` overriding it), and what it reads, for messages; raises
    ``OperationError`` (or ``SettingsError``)."""
    cdc = configured_cdc(
        read_settings().cdc,
        slot=slot,
        setting=f"{SETTING}['CDC']",
        drop_slot=drop_slot,
        source=source,
        streams=streams,
    )
    return feed_of(cache, cdc)


def feed_of(cache: Cache, cdc: CdcSettings) -> tuple[ChangeFeed, str]:
    if cdc.source == DEBEZIUM_REDIS:
        return stream_feed(cache, cdc, tags_for=tags_for)
    dsn, database = conninfo(cdc.database or DEFAULT_DATABASE)
    return change_feed(cache, dsn, slot=cdc.slot, tags_for=tags_for), database


def configured_feed(cache: Cache, warn: Callable[[str], object] | None = None) -> ChangeFeed | None:
    """The change feed ``CACHEPLUG["CDC"]`` configures, for its lag (the stats command, the
    dashboard): None when CDC is off, or cannot run here (``warn`` is told why)."""
    cdc = read_settings().cdc
    if cdc is None:
        return None
    try:
        return feed_of(cache, cdc)[0]
    except OperationError as exc:
        if warn is not None:
            warn(f"cdc: {exc}")
        return None
