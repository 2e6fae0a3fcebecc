"""The extension's configuration keys, with their defaults (seeded by ``init_app``).

For ``CachePlug(config_prefix="CACHEPLUG")`` (the default), every key starts with
``CACHEPLUG_``; a second cache in the same app takes another prefix:

- ``CACHEPLUG_STORE``: ``None`` (the embedded in-process store), a store URL (``redis://``,
  ``rediss://``, ``unix://``, ``redis+sentinel://``, ``redis+cluster://``, ``memory://``, or
  a scheme added with :func:`cacheplug.register_store`), a dotted path
  ``"package.module:Name"`` to a store class or factory (called with no arguments), or a
  :class:`cacheplug.Store` instance (closed with the app's cache).
- ``CACHEPLUG_NAMESPACE``: ``"default"``. ``CACHEPLUG_DEFAULT_TTL``: ``300`` seconds.
  ``CACHEPLUG_STALE_TTL``: ``0``. ``CACHEPLUG_LOCK_TIMEOUT``: ``10``. ``CACHEPLUG_NEGATIVE_TTL``:
  ``None``.
- ``CACHEPLUG_SECRET``: ``None``, meaning ``SECRET_KEY`` when the app has one.
  ``CACHEPLUG_SECRET_FALLBACKS``: ``None``, meaning ``SECRET_KEY_FALLBACKS`` (Flask 3.1+) when
  ``CACHEPLUG_SECRET`` is not set: older secrets whose entries are still accepted.
- ``CACHEPLUG_L1``: ``None``, or a dict of ``max_entries``, ``max_bytes``, ``ttl``,
  ``admission`` (see :class:`cacheplug.LocalTier`).
- ``CACHEPLUG_HOT_KEY_REPLICAS``: ``0``. ``CACHEPLUG_STRICT``: ``False``.
- ``CACHEPLUG_PRIVATE_COOKIES``: ``("remember_token",)`` (Flask-Login's "remember me"):
  cookies that identify somebody besides the session's; a request carrying one is never
  served a shared page.
- ``CACHEPLUG_UNKNOWN_SQL``: ``"all-tables"``: a statement the SQL reader cannot classify as
  a read (``CALL``, ``DO``, ``EXECUTE``, ...) invalidates everything that depends on any
  table; ``"ignore"``: it invalidates nothing.
- ``CACHEPLUG_CDC``: ``None`` (off), or ``{"source": "postgresql", "database": None, "slot":
  "cacheplug"}`` (Django's ``CDC`` keys in lower case; every key optional but ``source``):
  ``flask cacheplug cdc`` reads the logical replication slot ``slot`` of the PostgreSQL
  database ``database`` names: ``None`` the app's default engine, a Flask-SQLAlchemy bind
  name, or a database URL (see ``cacheplug_flask.cdc``).
- ``CACHEPLUG_OUTBOX``: ``True``: the transactional outbox is used where its table exists
  (read ``app.config["CACHEPLUG_OUTBOX"]``, validated and seeded by ``init_app``).
- ``CACHEPLUG_AUTO_DEPENDENCIES``: ``False``; ``True``: every read depends on what its loader
  reads, as ``depends_on="auto"``, plus what it names (``depends_on`` models, ``tags``).
- ``CACHEPLUG_AUDIT_DEPENDENCIES``: ``None`` (on when ``app.debug``): a loader with an
  explicit ``depends_on`` that reads a table it does not name is logged.
- ``CACHEPLUG_COMPRESSION``: ``"none"``; ``"zlib"`` or ``"zstd"`` (``pip install
  'cacheplug[zstd]'``): values of 1 KB and more are stored compressed, and entries compressed
  with either are read.
- ``CACHEPLUG_EDGE``: ``None``; a dict (Django's ``EDGE`` keys, in lower case too: ``header``,
  ``s_maxage``, ``stale_while_revalidate``, ``surrogate_control``, ``purge_url``, ``purge``)
  gives the pages of ``cached_view(edge=True)`` to an edge cache and purges it after each
  invalidation (see :func:`cacheplug.integration.edge_settings`).

These are the defaults of Django's ``CACHEPLUG`` too
(:data:`cacheplug.integration.SETTING_DEFAULTS`), and so is the translation into
:class:`cacheplug.Cache` options (:func:`cacheplug.integration.cache_options`).

``init_app`` checks every ``CACHEPLUG_*`` key first (:func:`validate`): bad values raise,
all of them in one :class:`~cacheplug.integration.SettingsError`; a key nobody reads
raises too when ``app.testing`` or ``app.debug``, and is warned about otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, MutableMapping
from typing import Any

from cacheplug import Cache
from cacheplug.integration import (
    SETTING_DEFAULTS,
    STORE_HINT,
    SettingProblem,
    SettingsError,
    cache_options,
    unknown_settings,
    validate_settings,
)
from cacheplug.stores import resolve_store


class UnknownSettingWarning(UserWarning):
    """A ``CACHEPLUG_*`` key that no cacheplug code reads (a typo, most likely)."""


def seed(config: MutableMapping[str, Any], prefix: str) -> None:
    """Put the defaults into ``config`` where the app set nothing."""
    for name, value in SETTING_DEFAULTS.items():
        config.setdefault(f"{prefix}_{name}", value)


def validate(config: Mapping[str, Any], prefix: str, *, strict_keys: bool) -> None:
    """Check every ``<prefix>_*`` key of ``config`` (before :func:`seed`): raise
    :class:`~cacheplug.integration.SettingsError` listing every bad value, and every
    unknown key too when ``strict_keys`` (testing, debug); otherwise warn about unknown keys
    (:class:`UnknownSettingWarning`)."""
    start = f"{prefix}_"

    def spell(name: str) -> str:
        return f"{start}{name}"

    given = {
        key.removeprefix(start): value for key, value in config.items() if key.startswith(start)
    }
    # Another extension's keys (``CACHEPLUG_SESSIONS_STORE`` next to prefix ``CACHEPLUG``)
    # end with one of ours: they are that prefix's business.
    unknown = unknown_settings(
        [
            name
            for name in given
            if not any(name.endswith(f"_{known}") for known in SETTING_DEFAULTS)
        ],
        SETTING_DEFAULTS,
        spell=spell,
    )
    problems = validate_settings(
        {k: v for k, v in given.items() if k in SETTING_DEFAULTS}, spell=spell
    )
    if strict_keys:
        problems = [*unknown, *problems]
    else:
        for problem in unknown:
            warnings.warn(
                f"{problem} (an error when app.testing or app.debug)",
                UnknownSettingWarning,
                stacklevel=4,
            )
    if problems:
        raise SettingsError(problems)


def build_cache(config: MutableMapping[str, Any], prefix: str) -> Cache:
    """The cache the app's (validated, seeded) configuration describes; raises
    :class:`~cacheplug.integration.SettingsError` when the store cannot be used."""

    values = {name: config[f"{prefix}_{name}"] for name in SETTING_DEFAULTS}
    spec = values["STORE"]
    try:
        store = None if spec is None else resolve_store(spec)
    except (ValueError, ImportError) as exc:  # ConfigurationError is a ValueError
        raise SettingsError(
            [SettingProblem("E002", f"{prefix}_STORE", f"cannot be used: {exc}", STORE_HINT)]
        ) from exc
    # Flask 3.1+ rotates its secret with SECRET_KEY_FALLBACKS (absent in 3.0): the cache
    # follows, or a rotation would empty it.
    return Cache(
        store,
        **cache_options(
            values,
            secret_key=config.get("SECRET_KEY"),
            secret_key_fallbacks=config.get("SECRET_KEY_FALLBACKS"),
        ),
    )
