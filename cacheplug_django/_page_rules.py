"""The rules of ``CACHEPLUG["PAGES"]``, read with the rest of the setting
(``cacheplug_django.conf``) and applied by ``CachePlugMiddleware``: kept below both, so that
reading the setting does not import the middleware (and, through it, the views and the
cache built from the setting)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

from cacheplug import DEFAULT, ConfigurationError
from cacheplug.integration import (
    PAGE_RULE_KEYS,
    PageHits,
    PagePolicy,
    check_page_options,
    is_auto,
)


@dataclass(frozen=True)
class PageRule:
    """One entry of ``CACHEPLUG["PAGES"]``, checked."""

    path: re.Pattern[str] | None
    view: str | None
    policy: PagePolicy
    options: dict[str, Any]
    tags: tuple[str, ...]
    hits: PageHits | None = field(default_factory=PageHits, compare=False)
    """Its plain requests' page hits (``None`` for a per-user rule: none is plain)."""

    def matches(self, request: HttpRequest, view_name: Callable[[], str | None]) -> bool:
        if self.path is not None and not self.path.match(request.path_info):
            return False
        return self.view is None or view_name() == self.view


def page_rules(raw: Any) -> tuple[PageRule, ...]:
    """``CACHEPLUG["PAGES"]`` as rules; raises :class:`~cacheplug.ConfigurationError`."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise ConfigurationError("CACHEPLUG['PAGES'] must be a list of dicts")
    rules = []
    for index, rule in enumerate(raw):
        where = f"CACHEPLUG['PAGES'][{index}]"
        if not isinstance(rule, dict):
            raise ConfigurationError(f"{where} must be a dict")
        unknown = sorted(set(rule) - PAGE_RULE_KEYS)
        if unknown:
            raise ConfigurationError(
                f"{where} has unknown keys {unknown}; known: {sorted(PAGE_RULE_KEYS)}"
            )
        if "PATH" not in rule and "VIEW" not in rule:
            raise ConfigurationError(
                f"{where} needs PATH (a regular expression) or VIEW (a URL name)"
            )
        try:
            path = re.compile(rule["PATH"]) if "PATH" in rule else None
        except (re.error, TypeError) as exc:
            raise ConfigurationError(f"{where}['PATH'] is not a regular expression: {exc}") from exc
        depends_on = rule.get("DEPENDS_ON", ())
        if isinstance(depends_on, str) and not is_auto(depends_on):
            depends_on = (depends_on,)
        tags = rule.get("TAGS", ())
        check_page_options(rule.get("TTL", DEFAULT), rule.get("STALE_TTL", DEFAULT), where)
        rules.append(
            PageRule(
                path=path,
                view=rule.get("VIEW"),
                policy=PagePolicy(
                    statuses=rule.get("STATUSES", (200,)), per_user=bool(rule.get("PER_USER"))
                ),
                options={
                    "ttl": rule.get("TTL", DEFAULT),
                    "stale_ttl": rule.get("STALE_TTL", DEFAULT),
                    "depends_on": depends_on if is_auto(depends_on) else tuple(depends_on),
                    "edge": _edge_flag(rule.get("EDGE", False), where),
                },
                tags=(tags,) if isinstance(tags, str) else tuple(tags),
                hits=None if rule.get("PER_USER") else PageHits(),
            )
        )
    return tuple(rules)


def _edge_flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"{where}['EDGE'] must be True (give its pages to the edge cache CACHEPLUG['EDGE'] "
            f"describes) or False, not {value!r}"
        )
    return value
