"""The extension's configuration keys, with their defaults (seeded by ``init_app``).

For ``CachePlug(config_prefix="CACHEPLUG")`` (the default), every key starts with
``CACHEPLUG_``; a second cache in the same app takes another prefix:

- ``CACHEPLUG_STORE``: ``None`` (the embedded in-process store) or a store URL
  (``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``, ``redis+cluster://``).
- ``CACHEPLUG_NAMESPACE``: ``"flask"``. ``CACHEPLUG_DEFAULT_TTL``: ``300`` seconds.
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

``init_app`` checks every ``CACHEPLUG_*`` key first (:func:`validate`): bad values raise,
all of them in one :class:`~cacheplug.integration.SettingsError`; a key nobody reads
raises too when ``app.testing`` or ``app.debug``, and is warned about otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

from cacheplug import Cache, store_from_url
from cacheplug.integration import (
    SettingProblem,
    SettingsError,
    local_tier,
    unknown_settings,
    validate_settings,
)

DEFAULTS: Final[dict[str, Any]] = {
    "STORE": None,
    "NAMESPACE": "flask",
    "DEFAULT_TTL": 300.0,
    "STALE_TTL": 0.0,
    "LOCK_TIMEOUT": 10.0,
    "NEGATIVE_TTL": None,
    "SECRET": None,
    "SECRET_FALLBACKS": None,
    "L1": None,
    "HOT_KEY_REPLICAS": 0,
    "STRICT": False,
    "PRIVATE_COOKIES": ("remember_token",),
}


class UnknownSettingWarning(UserWarning):
    """A ``CACHEPLUG_*`` key that no cacheplug code reads (a typo, most likely)."""


def seed(config: MutableMapping[str, Any], prefix: str) -> None:
    """Put the defaults into ``config`` where the app set nothing."""
    for name, value in DEFAULTS.items():
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
        [name for name in given if not any(name.endswith(f"_{known}") for known in DEFAULTS)],
        DEFAULTS,
        spell=spell,
    )
    problems = validate_settings({k: v for k, v in given.items() if k in DEFAULTS}, spell=spell)
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

    def get(name: str) -> Any:
        return config[f"{prefix}_{name}"]

    url = get("STORE")
    try:
        store = None if url is None else store_from_url(url)
    except (ValueError, ImportError) as exc:
        raise SettingsError(
            [
                SettingProblem(
                    "E002",
                    f"{prefix}_STORE",
                    f"cannot be used: {exc}",
                    "Use a URL such as 'redis://127.0.0.1:6379/0', or None for the "
                    "in-process store (pip install 'cacheplug[redis]' for Redis).",
                )
            ]
        ) from exc
    secret = get("SECRET") or None
    fallbacks = get("SECRET_FALLBACKS")
    if secret is None:
        secret = config.get("SECRET_KEY") or None
        if fallbacks is None:
            # Flask 3.1+ rotates its secret with SECRET_KEY_FALLBACKS (absent in 3.0): the
            # cache follows, or a rotation would empty it.
            fallbacks = config.get("SECRET_KEY_FALLBACKS") or ()
    return Cache(
        store,
        namespace=get("NAMESPACE"),
        default_ttl=get("DEFAULT_TTL"),
        stale_ttl=get("STALE_TTL"),
        lock_timeout=get("LOCK_TIMEOUT"),
        negative_ttl=get("NEGATIVE_TTL"),
        secret=secret,
        secret_fallbacks=tuple(fallbacks or ()),
        l1=local_tier(get("L1")),
        hot_key_replicas=get("HOT_KEY_REPLICAS"),
        strict=get("STRICT"),
    )
