"""``CachePlugMiddleware``: page caching for URLs on an allow-list, without touching views.

``CACHEPLUG["PAGES"]`` lists rules; a request is cached under the first rule that matches
(by ``PATH``, a regular expression matched at the start of the path, or ``VIEW``, a URL name
such as ``"shop:catalog"``), and under no rule otherwise. Each rule takes the options of
:func:`~cacheplug_django.cache_view` in upper case: ``TTL``, ``DEPENDS_ON``, ``TAGS``,
``PER_USER``, ``STATUSES``, ``STALE_TTL``. What may be shared is decided exactly as for
``cache_view``.

Put it near the top of ``MIDDLEWARE`` (right after ``SecurityMiddleware``): it then sees each
response after every middleware below it has had its say, so their cookies (a session, a
CSRF token) and ``Vary`` headers count when it decides what may be shared. What the view, the
templates and the middleware below read of the client (the session, flash messages, the user,
a CSRF token; the cookies from the view on) decides it too, by the rule ``cache_view`` applies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve

from cacheplug_django._page_rules import PageRule, page_rules
from cacheplug_django._request_facts import ReadWatch
from cacheplug_django.views import PATH_TAG, URL_NAME_TAG, serve

# The watch of a request this middleware is rendering for the cache; its cookie reads are
# watched from the view on (the middleware below read the session and CSRF cookies of every
# request before: what they found counts through the session and the CSRF token).
_WATCH_ATTR = "_cacheplug_page_watch"

__all__ = ["CachePlugMiddleware", "PageRule", "page_rules"]


class CachePlugMiddleware:
    """Caches the responses of allow-listed URLs (``CACHEPLUG["PAGES"]``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        from cacheplug_django._state import settings

        rules = settings.get().pages
        if not rules or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        resolved: list[str | None] = []

        def view_name() -> str | None:
            if not resolved:
                try:
                    resolved.append(resolve(request.path_info).view_name)
                except Resolver404:
                    resolved.append(None)
            return resolved[0]

        for rule in rules:
            if rule.matches(request, view_name):
                return self._serve(request, rule, view_name)
        return self.get_response(request)

    def _serve(
        self, request: HttpRequest, rule: PageRule, view_name: Callable[[], str | None]
    ) -> HttpResponseBase:
        def tags() -> list[str]:
            found = [*rule.tags, PATH_TAG + request.path]
            name = view_name()
            if name:
                found.append(URL_NAME_TAG + name)
            return found

        return serve(
            request,
            lambda: self.get_response(request),
            rule.policy,
            tags,
            watch=_watch_from_the_view,
            **rule.options,
        )

    def process_view(
        self,
        request: HttpRequest,
        view: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        watch = request.__dict__.get(_WATCH_ATTR)
        if watch is not None:
            watch.track_cookies()


def _watch_from_the_view(request: HttpRequest) -> ReadWatch:
    watch = ReadWatch(request, cookies=False)
    setattr(request, _WATCH_ATTR, watch)
    return watch
