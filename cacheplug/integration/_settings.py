"""The framework adapters' settings, checked in one place, every problem at once.

Django's ``CACHEPLUG`` dict and Flask's ``CACHEPLUG_*`` keys name the same options (``STORE``,
``DEFAULT_TTL``, ...). Each adapter hands the values the user gave to
:func:`validate_settings` when the application is configured (Django: a system check and the
first read of the setting; Flask: ``init_app``), before any request, and reports what comes
back: every problem, each with a stable code and a hint. The rules are the ones ``Cache``
itself applies to its options, so a value that passes here cannot fail later.

Codes (the Django system check id is ``cacheplug.<code>``):

- ``E001``: the setting is not a dict, or has a key nobody reads (a typo: "did you mean").
- ``E002``: ``STORE`` cannot be used: not a URL, a dotted path or a ``Store`` (here), or one
  that :func:`cacheplug.stores.resolve_store` refuses (checked by the adapter, which
  resolves it).
- ``E003``: ``NAMESPACE``. ``E004``: ``DEFAULT_TTL``. ``E005``: ``STALE_TTL``.
  ``E006``: ``LOCK_TIMEOUT``. ``E007``: ``NEGATIVE_TTL``.
- ``E008``: ``SECRET`` or ``SECRET_FALLBACKS``. ``E009``: ``L1``.
  ``E010``: ``HOT_KEY_REPLICAS``. ``E011``: ``STRICT`` or ``INVALIDATE_ON_WRITE``.
- ``E012``: a ``PAGES`` rule. ``E013``: ``PRIVATE_COOKIES``. ``E014``: ``UNKNOWN_SQL``.
- ``E015``: ``CDC`` (and, in Django, a ``DATABASE`` that is not a PostgreSQL alias).
  ``E016``: ``OUTBOX``.
- ``E017``: ``AUTO_DEPENDENCIES``. ``E018``: ``AUDIT_DEPENDENCIES``.
- ``E019``: ``COMPRESSION`` (not ``"none"``/``"zlib"``/``"zstd"``, or ``"zstd"`` without the
  ``zstandard`` package). ``E020``: ``EDGE``.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from cacheplug._config import non_negative, positive, ttl_seconds
from cacheplug._engine.local import LocalTier
from cacheplug.encoding._compression import check_compression
from cacheplug.encoding._keys import KeyBuilder
from cacheplug.exceptions import ConfigurationError
from cacheplug.integration._cdc_setup import CDC_HINT, cdc_settings
from cacheplug.integration._edge import EDGE_HINT, edge_settings
from cacheplug.integration._page_records import cookie_names
from cacheplug.stores import Store

__all__ = [
    "PAGE_RULE_KEYS",
    "STORE_HINT",
    "UNKNOWN_SQL_CHOICES",
    "SettingProblem",
    "SettingsError",
    "local_tier",
    "unknown_settings",
    "validate_settings",
]

_CHECK_FAILED: Final = (ConfigurationError, TypeError, ValueError)
_L1_FIELDS: Final = tuple(field.name for field in fields(LocalTier))
PAGE_RULE_KEYS: Final = frozenset(
    {"PATH", "VIEW", "TTL", "DEPENDS_ON", "TAGS", "PER_USER", "STATUSES", "STALE_TTL", "EDGE"}
)
"""The keys of one ``PAGES`` rule (Django's ``CachePlugMiddleware``)."""
STORE_HINT: Final = (
    "Use a URL such as 'redis://127.0.0.1:6379/0', a dotted path 'package.module:Name' to a "
    "Store class or factory, a Store instance, or None for the in-process store "
    "(pip install 'cacheplug[redis]' for Redis)."
)
"""What to do about a ``STORE`` that cannot be used (``E002``)."""
UNKNOWN_SQL_CHOICES: Final = ("all-tables", "ignore")
"""The values of ``UNKNOWN_SQL``: what a statement the SQL reader cannot classify as a read
(``CALL``, ``DO``, ``EXECUTE``, ...) invalidates: every table, or nothing."""


@dataclass(frozen=True)
class SettingProblem:
    """One thing wrong with the settings: ``setting`` as the user spells it
    (``CACHEPLUG['DEFAULT_TTL']``, ``CACHEPLUG_DEFAULT_TTL``), what is wrong, what to do."""

    code: str
    setting: str
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}. {self.hint} [cacheplug.{self.code}]"


class SettingsError(ConfigurationError):
    """The settings have problems; ``problems`` lists every one of them."""

    def __init__(self, problems: Iterable[SettingProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"- {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} cacheplug setting(s) are not valid:\n{lines}")


@dataclass(frozen=True)
class _Rule:
    code: str
    check: Callable[[Any], object]
    """Raises ``ConfigurationError``/``TypeError``/``ValueError`` saying what is wrong."""
    hint: str


def _none_or(check: Callable[[Any], object]) -> Callable[[Any], object]:
    return lambda value: None if value is None else check(value)


def _ttl(value: Any) -> object:
    if value is None:
        return None
    return ttl_seconds(value, None)


def _store(value: Any) -> object:
    # Whether a URL or dotted path can be used is the adapter's check (it resolves it).
    if (
        value is not None
        and not isinstance(value, Store)
        and (not isinstance(value, str) or not value)
    ):
        raise ConfigurationError(
            f"must be a store URL, a dotted path 'package.module:Name', a Store or None, "
            f"not {type(value).__name__}"
        )
    return value


def _secret(value: Any) -> object:
    if value is not None and not isinstance(value, str | bytes):
        raise ConfigurationError(f"must be a string (or None), not {type(value).__name__}")
    return value


def _secrets(value: Any) -> object:
    if value is None:
        return value
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ConfigurationError(f"must be a list of older secrets, not {value!r}")
    wrong = [item for item in value if not isinstance(item, str | bytes) or not item]
    if wrong:
        raise ConfigurationError(f"holds {wrong!r}: each older secret is a non-empty string")
    return value


def _flag(value: Any) -> object:
    if not isinstance(value, bool):
        raise ConfigurationError(f"must be True or False, not {value!r}")
    return value


def _optional_flag(value: Any) -> object:
    return value if value is None else _flag(value)


def _unknown_sql(value: Any) -> object:
    if value not in UNKNOWN_SQL_CHOICES:
        choices = " or ".join(repr(choice) for choice in UNKNOWN_SQL_CHOICES)
        raise ConfigurationError(f"must be {choices}, not {value!r}")
    return value


def _replicas(value: Any) -> object:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"must be an int >= 0, not {value!r}")
    return value


def local_tier(value: Any) -> LocalTier | None:
    """The :class:`~cacheplug.LocalTier` an ``L1`` setting describes: ``None``, a dict of its
    fields (keys in any case: ``MAX_ENTRIES`` or ``max_entries``), or a ``LocalTier``.
    Raises :class:`~cacheplug.ConfigurationError` saying what is wrong."""
    if value is None or isinstance(value, LocalTier):
        return value
    if not isinstance(value, dict):
        raise ConfigurationError(f"must be a dict such as {{'MAX_ENTRIES': 10000}}, not {value!r}")
    wrong = sorted(str(key) for key in value if str(key).lower() not in _L1_FIELDS)
    if wrong:
        known = ", ".join(name.upper() for name in _L1_FIELDS)
        raise ConfigurationError(f"has unknown keys {wrong}; known: {known}")
    try:
        return LocalTier(**{str(key).lower(): item for key, item in value.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(str(exc)) from exc


_RULES: Final[dict[str, _Rule]] = {
    "STORE": _Rule(
        "E002",
        _store,
        STORE_HINT,
    ),
    "NAMESPACE": _Rule(
        "E003",
        KeyBuilder,
        "Use 1 to 31 characters from A-Z a-z 0-9 _ . - (e.g. 'my-shop').",
    ),
    "DEFAULT_TTL": _Rule(
        "E004", _ttl, "Use a number of seconds > 0 (e.g. 300), or None for no expiry."
    ),
    "STALE_TTL": _Rule("E005", lambda v: non_negative("stale_ttl", v), "Use seconds >= 0."),
    "LOCK_TIMEOUT": _Rule(
        "E006", lambda v: positive("lock_timeout", v), "Use a number of seconds > 0 (e.g. 10)."
    ),
    "NEGATIVE_TTL": _Rule(
        "E007",
        _none_or(lambda v: non_negative("negative_ttl", v)),
        "Use seconds >= 0 (0: never cache a None result), or None to cache it like any value.",
    ),
    "SECRET": _Rule(
        "E008", _secret, "Use a long random string, or None for the framework's secret key."
    ),
    "SECRET_FALLBACKS": _Rule(
        "E008",
        _secrets,
        "Use a list of the secrets used before (e.g. [old_secret]), or None for the "
        "framework's secret key fallbacks.",
    ),
    "L1": _Rule(
        "E009",
        local_tier,
        "Use None, or a dict of MAX_ENTRIES, MAX_BYTES, TTL, ADMISSION (see LocalTier).",
    ),
    "HOT_KEY_REPLICAS": _Rule("E010", _replicas, "Use 0 (off) or a small int such as 2."),
    "STRICT": _Rule("E011", _flag, "Use True or False."),
    "INVALIDATE_ON_WRITE": _Rule("E011", _flag, "Use True or False."),
    "PRIVATE_COOKIES": _Rule(
        "E013",
        lambda v: cookie_names(v, "the setting"),
        "Use a list of cookie names, e.g. ['remember_token'].",
    ),
    "UNKNOWN_SQL": _Rule(
        "E014",
        _unknown_sql,
        "Use 'all-tables' (the default: a statement that cannot be classified as a read, such "
        "as CALL, invalidates every table) or 'ignore' (it invalidates nothing).",
    ),
    "CDC": _Rule("E015", cdc_settings, CDC_HINT),
    "OUTBOX": _Rule(
        "E016",
        _flag,
        "Use True (the default: the transactional outbox, where its table exists) or False.",
    ),
    "AUTO_DEPENDENCIES": _Rule(
        "E017",
        _flag,
        "Use False (the default: a read depends on what it names) or True (every read depends "
        "on what its loader reads too, as depends_on='auto').",
    ),
    "AUDIT_DEPENDENCIES": _Rule(
        "E018",
        _optional_flag,
        "Use None (the default: on in debug mode), True or False.",
    ),
    "EDGE": _Rule("E020", edge_settings, EDGE_HINT),
    "COMPRESSION": _Rule(
        "E019",
        check_compression,
        "Use 'none' (the default), 'zlib', or 'zstd' (pip install 'cacheplug[zstd]'): "
        "values of 1 KB and more are stored compressed.",
    ),
}


def validate_settings(
    values: Mapping[str, Any], *, spell: Callable[[str], str]
) -> list[SettingProblem]:
    """Every problem with the settings ``values`` (by bare name: ``"DEFAULT_TTL"``), in the
    order of ``values``; ``spell(name)`` is how the user writes a setting
    (``"CACHEPLUG['DEFAULT_TTL']"``). Names without a rule here (the adapter's own) are left
    to the adapter; unknown names are :func:`unknown_settings`'s job."""
    problems: list[SettingProblem] = []
    for name, value in values.items():
        if name == "PAGES":
            problems += _page_problems(value, spell(name))
            continue
        rule = _RULES.get(name)
        if rule is None:
            continue
        try:
            rule.check(value)
        except _CHECK_FAILED as exc:
            problems.append(SettingProblem(rule.code, spell(name), _reason(exc, value), rule.hint))
    return problems


def unknown_settings(
    given: Iterable[str], known: Collection[str], *, spell: Callable[[str], str]
) -> list[SettingProblem]:
    """``E001`` for every name in ``given`` that is not in ``known``, suggesting the closest
    known one."""
    problems = []
    for name in given:
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = (
            f"Did you mean {spell(close[0])}?"
            if close
            else f"Known settings: {', '.join(spell(key) for key in sorted(known))}."
        )
        problems.append(SettingProblem("E001", spell(name), "is not a cacheplug setting", hint))
    return problems


def _reason(exc: BaseException, value: Any) -> str:
    message = str(exc)
    shown = repr(value)
    return message if shown in message else f"{message} (got {shown})"


def _page_problems(raw: Any, where: str) -> list[SettingProblem]:
    """The problems of a ``PAGES`` list of rules (each rule's own, all of them)."""
    hint = "See the PAGES rules in docs/settings.md."

    def problem(setting: str, message: str, what_to_do: str = hint) -> SettingProblem:
        return SettingProblem("E012", setting, message, what_to_do)

    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        return [problem(where, f"must be a list of rules (dicts), not {raw!r}")]
    problems = []
    for index, rule in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(rule, dict):
            problems.append(problem(at, f"must be a dict, not {rule!r}"))
            continue
        unknown = unknown_settings(rule, PAGE_RULE_KEYS, spell=functools.partial(_item, at))
        problems += [problem(found.setting, found.message, found.hint) for found in unknown]
        if "PATH" not in rule and "VIEW" not in rule:
            problems.append(problem(at, "needs PATH (a regular expression) or VIEW (a URL name)"))
        for key, check, what_to_do in _PAGE_RULE_CHECKS:
            if key in rule:
                try:
                    check(rule[key])
                except _CHECK_FAILED as exc:
                    problems.append(problem(f"{at}[{key!r}]", _reason(exc, rule[key]), what_to_do))
    return problems


def _item(where: str, key: str) -> str:
    return f"{where}[{key!r}]"


def _pattern(value: Any) -> object:
    try:
        return re.compile(value)
    except (re.error, TypeError) as exc:
        raise ConfigurationError(f"is not a regular expression: {exc}") from exc


def _name(value: Any) -> object:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"must be a URL name such as 'shop:catalog', not {value!r}")
    return value


def _names(value: Any) -> object:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(
        isinstance(item, str | type) and item for item in items
    ):
        raise ConfigurationError(f"must be a string or a list of strings, not {value!r}")
    return value


def _statuses(value: Any) -> object:
    if (
        isinstance(value, str)
        or not isinstance(value, list | tuple | set | frozenset)
        or not value
        or not all(
            isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599
            for code in value
        )
    ):
        raise ConfigurationError(f"must be a list of HTTP statuses, not {value!r}")
    return value


_PAGE_RULE_CHECKS: Final[tuple[tuple[str, Callable[[Any], object], str], ...]] = (
    ("PATH", _pattern, "Use a regular expression such as r'^/products/'."),
    ("VIEW", _name, "Use a URL name such as 'shop:catalog'."),
    ("TTL", _ttl, "Use a number of seconds > 0 (e.g. 60), or leave TTL out for DEFAULT_TTL."),
    (
        "STALE_TTL",
        lambda v: non_negative("stale_ttl", v),
        "Use seconds >= 0, or leave STALE_TTL out.",
    ),
    ("STATUSES", _statuses, "Use a list such as [200, 404]."),
    ("PER_USER", _flag, "Use True or False."),
    ("EDGE", _flag, "Use True (give its pages to the edge cache EDGE describes) or False."),
    ("TAGS", _names, "Use a tag or a list of tags."),
    ("DEPENDS_ON", _names, "Use 'app.Model' or a list of them."),
)
