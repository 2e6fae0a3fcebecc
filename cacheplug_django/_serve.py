"""Serving a cached page on Django's sync path, and what page caching reads of a Django
request and makes of a Django response: ``serve`` (``cache_view``'s and
``CachePlugMiddleware``'s), ``page_request_of``, ``page_of``, ``response_of``, the tags every
page carries. Below ``views``, ``_aserve`` and ``middleware``, which all use it."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.utils.functional import LazyObject, empty
from django.utils.translation import get_language

from cacheplug.integration import (
    Answer,
    ClientReads,
    EdgeSettings,
    EnvironHeaders,
    Page,
    PageHits,
    PagePolicy,
    PageRequest,
    Watched,
    private_user,
    serve_page,
)
from cacheplug_django._page_hits import Facts
from cacheplug_django._request_facts import (
    ReadWatch,
    private_cookie_names,
    session_cookie_name,
    use_i18n,
    validated_host,
)

logger = logging.getLogger("cacheplug_django")
View = Callable[..., Any]  # sync, or async returning an awaitable response
Plain = tuple[PageHits, Facts, tuple[str, ...] | None]
"""Where to remember what a plain request's page was read with: its view's (or rule's) page
hits, the request's facts, the tags a callable named."""
TagsArg = Iterable[str] | Callable[..., Iterable[str]] | None


def split_tags(
    tags: TagsArg,
) -> tuple[Callable[..., Iterable[str]] | None, tuple[str, ...]]:
    """A view's ``tags`` as ``(a callable asked per request, or None; the fixed tags)``."""
    if callable(tags):
        return tags, ()
    return None, () if tags is None else tuple(tags)


def serve(
    request: HttpRequest,
    respond: Callable[[], HttpResponseBase],
    policy: PagePolicy,
    tags: Callable[[], list[str]],
    *,
    watch: Callable[[HttpRequest], ReadWatch] = ReadWatch,
    plain: Plain | None = None,
    **options: Any,
) -> HttpResponseBase:
    """The response to ``request``: a shared page if the policy allows one, else what
    ``respond()`` gives (stored if the policy allows). ``watch`` starts watching what
    ``respond()`` reads of the client. ``plain``: where to remember the key and tags read
    for a plain request (its page hits, its facts, the tags a callable named)."""

    def render() -> tuple[HttpResponseBase, Page | None]:
        with Watched[HttpResponseBase](watch(request)) as made:
            response = rendered_now(made.keep(respond()))
        return response, page_of(policy, request, response, made.reads)

    from cacheplug_django._state import cache

    page_request = page_request_of(request, policy.per_user)
    if plain is not None:
        hits, facts, named = plain
        hits.learn(cache, policy, page_request, facts, tags, options.get("depends_on", ()), named)
    edge = edge_settings_for(options.pop("edge", False))
    found = serve_page(
        cache, policy, page_request, respond, render, tags=tags, edge=edge, **options
    )
    return response_of(found)


def edge_settings_for(wanted: bool) -> EdgeSettings | None:
    """``CACHEPLUG["EDGE"]`` for a page that asks to be given to the edge; ``None`` for one
    that does not, or when the setting is off (said once: the page is then the app's only)."""
    if not wanted:
        return None
    from cacheplug_django._state import settings

    edge = settings.get().edge
    if edge is None and not _warned_edge_off:
        _warned_edge_off.append(True)
        logger.warning(
            "cacheplug: a page asks for the edge (edge=True, or a PAGES rule's EDGE) but "
            "CACHEPLUG['EDGE'] is not set: it gets no edge headers"
        )
    return edge


_warned_edge_off: list[bool] = []


VIEW_TAG = "dj:v:"
URL_NAME_TAG = "dj:n:"
PATH_TAG = "dj:p:"


def page_tags(request: HttpRequest, view: Callable[..., Any] | None) -> list[str]:
    """The tags every cached page carries, so that :func:`invalidate_pages` can find it: its
    path, its view, and its URL name."""
    tags = [PATH_TAG + request.path]
    if view is not None:
        tags.append(_view_tag(view))
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name:
        tags.append(URL_NAME_TAG + match.view_name)
    return tags


@functools.lru_cache(maxsize=1024)
def _view_tag(view: Callable[..., Any]) -> str:
    return VIEW_TAG + view_label(view)


def view_label(view: Callable[..., Any]) -> str:
    view = getattr(view, "__wrapped__", view)
    return f"{view.__module__}.{view.__qualname__}"


def page_request_of(request: HttpRequest, per_user: bool) -> PageRequest:
    """What page caching needs of a Django request. The user is ``None`` for an anonymous
    client without a session cookie (and looked up only if there is one, so that a cached
    view does not touch the session of everybody else)."""
    user = None
    cookie_name = session_cookie_name()
    if cookie_name in request.COOKIES:
        user = "session"
        if per_user:
            account = getattr(request, "user", None)
            if account is not None and account.is_authenticated:
                user = f"user:{account.pk}"
            else:
                user = f"session:{request.COOKIES[cookie_name]}"
    elif per_user:
        account = getattr(request, "user", None)
        if account is not None and account.is_authenticated:  # authenticated without a session
            user = f"user:{account.pk}"
    elif _authenticated_user(request, evaluate=bool(request.META.get("HTTP_COOKIE"))) is not None:
        # Logged in by other means than the session (a token cookie, a middleware of one's
        # own): not shared. Only worked out when the request has a cookie to be known by.
        user = "user"
    if user is None and request.META.get("HTTP_COOKIE"):
        user = private_user(request.COOKIES, private_cookie_names(), per_user)
    query = (
        [(name, value) for name, values in request.GET.lists() for value in values]
        if request.META.get("QUERY_STRING")
        else ()
    )
    scheme = request.scheme or "http"
    return PageRequest(
        method=request.method or "GET",
        host=validated_host(request, scheme),
        path=request.path,
        query=query,
        headers=EnvironHeaders(request.META),
        user=user,
        scheme=scheme,
        # LocaleMiddleware adds its Vary after a decorator has stored the page: key by the
        # active language, as Django's cache_page does.
        variant=f"lang={get_language()}" if use_i18n() else "",
    )


def _authenticated_user(request: HttpRequest, *, evaluate: bool) -> Any:
    """``request.user`` if it is authenticated; ``None`` if not, or if nobody has worked it
    out yet and ``evaluate`` is false (working it out reads the session)."""
    user = request.__dict__.get("user")
    if user is None:
        return None
    if not evaluate and isinstance(user, LazyObject) and user._wrapped is empty:
        return None
    return user if getattr(user, "is_authenticated", False) else None


def rendered_now(response: HttpResponseBase) -> HttpResponseBase:
    render = getattr(response, "render", None)
    if render is not None and not getattr(response, "is_rendered", True):
        render()  # a TemplateResponse: its content is needed now, and what it reads counts
    return response


def page_of(
    policy: PagePolicy, request: HttpRequest, response: HttpResponseBase, reads: ClientReads
) -> Page | None:
    """The storable form of a Django response made with ``reads`` of its client, or ``None``
    if it may not be shared (the rule is the core's)."""
    if response.streaming or not isinstance(response, HttpResponse):
        return None
    return policy.page_of(response.status_code, response.items(), response.content, reads=reads)


def response_of(answer: Answer[HttpResponseBase]) -> HttpResponseBase:
    """The Django response of an :class:`~cacheplug.integration.Answer`."""
    response = answer.own
    if response is not None:
        for name, value in answer.headers:
            if not response.has_header(name):
                response[name] = value
        for name, value in answer.edge:
            response[name] = value
        return response
    if answer.status == 304:
        response = HttpResponseNotModified()
        for name, value in answer.headers:
            response[name] = value
        return response
    return HttpResponse(answer.body, status=answer.status, headers=dict(answer.headers))
