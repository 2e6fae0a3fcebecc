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

It runs both ways (Django's pattern for middleware that can): asynchronously when what is
below it can be awaited (under ASGI, with Django's own middleware), and a cached page is then
served on the event loop, from the L1 tier or the store, without a thread; synchronously
otherwise. Both ways take the same decisions and give the same answers. The one thread on the
async path: a ``PER_USER`` rule placed below ``AuthenticationMiddleware`` loads a session's
user from the database, which Django does not allow on the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, resolve

from cacheplug_django._aserve import aserve
from cacheplug_django._page_hits import quick_hit
from cacheplug_django._page_rules import PageRule, page_rules
from cacheplug_django._request_facts import ReadWatch, settings_generation
from cacheplug_django._serve import PATH_TAG, URL_NAME_TAG, serve

# The watch of a request this middleware is rendering for the cache; its cookie reads are
# watched from the view on (the middleware below read the session and CSRF cookies of every
# request before: what they found counts through the session and the CSRF token).
_WATCH_ATTR = "_cacheplug_page_watch"

__all__ = ["CachePlugMiddleware", "PageRule", "page_rules"]

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]
ProcessView = Callable[
    [HttpRequest, Callable[..., Any], tuple[Any, ...], dict[str, Any]], Awaitable[None] | None
]


class CachePlugMiddleware:
    """Caches the responses of allow-listed URLs (``CACHEPLUG["PAGES"]``)."""

    sync_capable = True
    async_capable = True
    process_view: ProcessView

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)  # Django then awaits what __call__ returns
            # Django runs a sync process_view in a thread when it serves asynchronously.
            self.process_view = self._aprocess_view
        else:
            self.process_view = self._process_view

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        get_response = cast(GetResponse, self.get_response)
        page = _page_for(request)
        if page is None:
            return get_response(request)
        rule, tags, options = page
        response, facts = quick_hit(rule.hits, request, None)
        if response is not None:
            return response
        plain = None if facts is None or rule.hits is None else (rule.hits, facts, None)
        respond = lambda: get_response(request)  # noqa: E731
        return serve(request, respond, rule.policy, tags, plain=plain, **options)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response = cast(AsyncGetResponse, self.get_response)
        page = _page_for(request)
        if page is None:
            return await get_response(request)
        rule, tags, options = page
        # From L1 only: a store read would block the event loop.
        response, facts = quick_hit(rule.hits, request, None, store=False)
        if response is not None:
            return response
        plain = None if facts is None or rule.hits is None else (rule.hits, facts, None)
        respond = lambda: get_response(request)  # noqa: E731
        return await aserve(request, respond, rule.policy, tags, plain=plain, **options)

    def _process_view(self, request: HttpRequest, *view_and_arguments: Any) -> None:
        """``process_view``: the view is about to run; watch its cookie reads from now on."""
        watch = request.__dict__.get(_WATCH_ATTR)
        if watch is not None:
            watch.track_cookies()

    async def _aprocess_view(self, request: HttpRequest, *view_and_arguments: Any) -> None:
        self._process_view(request)


def _page_for(
    request: HttpRequest,
) -> tuple[PageRule, Callable[[], list[str]], dict[str, Any]] | None:
    """How the first rule of ``CACHEPLUG["PAGES"]`` that matches ``request`` caches it: the
    rule, the page's tags and the options of ``serve`` / ``aserve``; ``None`` when no rule
    matches. The same for both paths."""
    from cacheplug_django._state import settings

    rules = settings.get().pages
    if not rules or request.method not in ("GET", "HEAD"):
        return None
    resolved: list[str | None] = []

    def view_name() -> str | None:
        if not resolved:
            resolved.append(_view_name(request))
        return resolved[0]

    for rule in rules:
        if rule.matches(request, view_name):
            break
    else:
        return None

    def tags() -> list[str]:
        found = [*rule.tags, PATH_TAG + request.path]
        name = view_name()
        if name:
            found.append(URL_NAME_TAG + name)
        return found

    return rule, tags, {"watch": _watch_from_the_view, **rule.options}


_view_names: dict[tuple[object, str, int], str | None] = {}
_MAX_VIEW_NAMES = 4096  # paths differ by their arguments: bounded, forgotten when full


def _view_name(request: HttpRequest) -> str | None:
    """The URL name of ``request``'s path, as ``resolve()`` gives it (remembered: resolving
    walks the URL patterns, about 13 µs in a small project, on every request a rule names by
    view). Keyed by the request's URLconf and the settings (they decide the resolution)."""
    key = (getattr(request, "urlconf", None), request.path_info, settings_generation())
    try:
        return _view_names[key]
    except KeyError:
        pass
    try:
        name: str | None = resolve(request.path_info, key[0]).view_name
    except Resolver404:
        name = None
    if len(_view_names) >= _MAX_VIEW_NAMES:
        _view_names.clear()
    _view_names[key] = name
    return name


def _watch_from_the_view(request: HttpRequest) -> ReadWatch:
    watch = ReadWatch(request, cookies=False)
    setattr(request, _WATCH_ATTR, watch)
    return watch
