"""A Django Debug Toolbar panel: what the cache did for one request.

Install the ``toolbar`` extra (``pip install "cacheplug[django,toolbar]"``) and add the panel
to the toolbar's list::

    DEBUG_TOOLBAR_PANELS = [*debug_toolbar.settings.PANELS_DEFAULTS,
                            "cacheplug_django.toolbar.CachePlugPanel"]

It lists every call made through ``cacheplug_django.cache`` (and page caching, which reads
through it) while the request ran: key, outcome (loaded, L1, hit, stale, coalesced, bypass,
miss), time, tags; the loads and how long they took; the invalidations sent after a commit;
and whether the page itself came from the cache. The recording is
:func:`cacheplug.integration.recording_calls`, open only around a request the toolbar
instruments; other requests pay one context-variable lookup a call.

Page caching sits below the toolbar's middleware in ``MIDDLEWARE`` (the toolbar must see the
response the cache gave).
"""

from __future__ import annotations

from typing import Any

from debug_toolbar.panels import Panel
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from cacheplug.integration import recording_calls

__all__ = ["CachePlugPanel"]


class CachePlugPanel(Panel):
    """The cache calls of one request (see the module docstring)."""

    title = _("cacheplug")
    template = "cacheplug_django/toolbar_panel.html"

    @property
    def nav_subtitle(self) -> str:
        stats = self.get_stats()
        if not stats:
            return ""
        counts = stats["counts"]
        answered = sum(counts[name] for name in ("l1", "hit", "stale", "replica", "coalesced"))
        return f"{answered} hit(s), {counts['loaded']} load(s) in {stats['total_ms']:.1f} ms"

    def process_request(self, request: HttpRequest) -> HttpResponse:
        with recording_calls() as log:
            response = super().process_request(request)
        self._log = log
        return response  # type: ignore[no-any-return]

    def generate_stats(self, request: HttpRequest, response: HttpResponse) -> None:
        log = getattr(self, "_log", None)
        if log is None:
            return
        calls: list[dict[str, Any]] = []
        for call in log.calls:
            row = call.as_dict()
            row["ms"] = call.seconds * 1000
            row["load_ms"] = None if call.load_seconds is None else call.load_seconds * 1000
            calls.append(row)
        page = log.page_outcome()
        # Plain data only: the toolbar may keep panels' figures as JSON.
        self.record_stats(
            {
                "calls": calls,
                "loads": [row for row in calls if row["outcome"] == "loaded"],
                "counts": log.counts(),
                "total_ms": log.total_seconds() * 1000,
                "invalidations": log.invalidations,
                "page_outcome": page or "",
                "page_served": log.page_served(),
            }
        )
