"""The staff dashboard, a page of the Django admin: what this process's cache is doing,
refreshing on its own (the figures: :func:`cacheplug.integration.dashboard_figures`).

Mount it under the admin's prefix, before the admin's own URLs::

    urlpatterns = [
        path("admin/cacheplug/", include("cacheplug_django.dashboard")),
        path("admin/", admin.site.urls),
    ]

Staff only (``staff_member_required``): anyone else is sent to the admin's login page, the
JSON endpoint the page polls included. ``?refresh=N`` sets the refresh interval (seconds,
5 by default).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache

from cacheplug import Cache
from cacheplug.integration import (
    dashboard_figures,
    dashboard_html,
    dashboard_page,
    refresh_interval,
)
from cacheplug_django.cdc import configured_feed

__all__ = ["app_name", "dashboard", "dashboard_data", "urlpatterns"]


def _cache() -> Cache:
    from cacheplug_django._state import cache

    return cache.core


def _figures() -> dict[str, Any]:
    from cacheplug_django._state import outbox_relays

    cache = _cache()
    return dashboard_figures(cache, change_feed=configured_feed(cache), outbox=outbox_relays())


@never_cache
@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The dashboard page, in the admin's frame."""
    markup = dashboard_page(
        _figures(),
        reverse("cacheplug:dashboard-data"),
        refresh_interval(request.GET.get("refresh")),
    )
    context = {
        **admin.site.each_context(request),
        "title": "cacheplug",
        "dashboard": mark_safe(markup),  # built by dashboard_page, values escaped
    }
    return TemplateResponse(request, "cacheplug_django/dashboard.html", context)


@never_cache
@staff_member_required
def dashboard_data(request: HttpRequest) -> JsonResponse:
    """The figures and their markup, for the page's refresh."""
    figures = _figures()
    return JsonResponse({"figures": figures, "html": dashboard_html(figures)})


app_name = "cacheplug"
urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("data.json", dashboard_data, name="dashboard-data"),
]
