"""System checks (``manage.py check``, and before ``migrate`` and ``runserver``) for the
``CACHEPLUG`` setting: every problem at once, each with its id and a hint.

The ids are those of :mod:`cacheplug.integration` (``cacheplug.E001`` an unknown key
or a setting that is not a dict, ``E002`` a store that cannot be used, ``E003``-``E016`` one
value each; ``E015`` also for a ``CDC`` ``DATABASE`` that is not a PostgreSQL alias of
``DATABASES``), plus ``cacheplug.W001``: entries on a shared store would not be signed.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning
from django.db import models

from cacheplug import ConfigurationError
from cacheplug.integration import (
    POSTGRESQL,
    STORE_HINT,
    SettingProblem,
    cdc_settings,
    is_auto,
)
from cacheplug_django.conf import SETTING, build_store, secret_key, setting_problems


def check_settings(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    """Every problem of the ``CACHEPLUG`` setting (see the module docstring for the ids)."""
    from django.conf import settings

    raw = getattr(settings, SETTING, None)
    if raw is None:
        raw = {}
    problems = setting_problems(raw)
    if isinstance(raw, dict):
        problems += _model_problems(raw.get("PAGES"))
        if not any(problem.code == "E015" for problem in problems):
            problems += _cdc_problems(raw.get("CDC"))
    messages: list[CheckMessage] = [_error(problem) for problem in problems]
    if not isinstance(raw, dict) or any(p.code == "E002" for p in problems):
        return messages
    store = raw.get("STORE")
    try:
        built = build_store(store)
    except (ConfigurationError, ImportError) as exc:
        messages.append(
            Error(
                f"{SETTING}['STORE'] cannot be used: {exc}",
                hint=f"{STORE_HINT} Or 'django:<CACHES alias>' for the server of a Redis cache.",
                id="cacheplug.E002",
            )
        )
        return messages
    if built is not None:
        secret = raw.get("SECRET") or secret_key()
        if built.shared and not secret:
            messages.append(
                Warning(
                    f"{SETTING} uses a shared store without a secret: entries are stored as "
                    "unsigned, data-only MessagePack, and values it cannot hold are not cached.",
                    hint="Set SECRET_KEY (or CACHEPLUG['SECRET']).",
                    id="cacheplug.W001",
                )
            )
        if built is not store:  # made for this check (a Store given is the cache's to close)
            built.close()
    return messages


def _error(problem: SettingProblem) -> Error:
    return Error(f"{problem.setting}: {problem.message}", hint=problem.hint, id=_id(problem))


def _id(problem: SettingProblem) -> str:
    return f"cacheplug.{problem.code}"


def _model_problems(pages: Any) -> list[SettingProblem]:
    """``DEPENDS_ON`` models of ``PAGES`` rules that do not exist (only Django can tell)."""
    from cacheplug_django.tags import model_tags

    if not isinstance(pages, list | tuple):
        return []
    problems = []
    for index, rule in enumerate(pages):
        depends_on = rule.get("DEPENDS_ON", ()) if isinstance(rule, dict) else ()
        if is_auto(depends_on):
            continue
        for model in (depends_on,) if isinstance(depends_on, str) else depends_on:
            if not isinstance(model, str | type) or (
                isinstance(model, type) and not issubclass(model, models.Model)
            ):
                continue  # reported with the rule's other problems
            try:
                model_tags(model)
            except (LookupError, TypeError, ValueError) as exc:
                problems.append(
                    SettingProblem(
                        "E012",
                        f"{SETTING}['PAGES'][{index}]['DEPENDS_ON']",
                        f"names {model!r}, which is not a model: {exc}",
                        "Use 'app_label.ModelName' of an installed app.",
                    )
                )
    return problems


def _cdc_problems(value: Any) -> list[SettingProblem]:
    """A ``CDC`` ``DATABASE`` that is not a PostgreSQL alias of ``DATABASES`` (only Django
    can tell; the rest of ``CDC`` is checked with every adapter's rules)."""
    from cacheplug_django.cdc import DEFAULT_DATABASE, database_problem

    cdc = cdc_settings(value)
    if cdc is None or cdc.source != POSTGRESQL:
        return []  # Debezium's events come from Redis: no database of Django's is read
    problem = database_problem(cdc.database or DEFAULT_DATABASE)
    if problem is None:
        return []
    return [
        SettingProblem(
            "E015",
            f"{SETTING}['CDC']",
            problem,
            "Name in DATABASE an alias of DATABASES whose ENGINE is "
            "'django.db.backends.postgresql' (default: 'default').",
        )
    ]
