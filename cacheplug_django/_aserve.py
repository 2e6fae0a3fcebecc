"""Serving a page on Django's async path: the counterpart of ``cacheplug_django._serve.serve``
for ``CachePlugMiddleware`` under ASGI and for ``cache_view`` on an ``async def`` view.

The same page request, the same watch of what rendering read, the same response: only the
waiting differs (the core's ``aserve_page`` over the cache's ``aget_or_load``), so that a hit
is served on the event loop, from the store or from the L1 tier, without a thread.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import LazyObject, empty

from cacheplug.integration import Page, PageHits, PagePolicy, PageRequest, Watched, aserve_page
from cacheplug_django._page_hits import quick_hit, shared_cache
from cacheplug_django._request_facts import ReadWatch, session_cookie_name
from cacheplug_django._serve import (
    Plain,
    TagsArg,
    View,
    edge_settings_for,
    page_of,
    page_request_of,
    page_tags,
    rendered_now,
    response_of,
    split_tags,
)


async def aserve(
    request: HttpRequest,
    respond: Callable[[], Awaitable[HttpResponseBase]],
    policy: PagePolicy,
    tags: Callable[[], list[str]],
    *,
    watch: Callable[[HttpRequest], ReadWatch] = ReadWatch,
    plain: Plain | None = None,
    **options: Any,
) -> HttpResponseBase:
    """Async ``serve``: the response to ``request``, a shared page if the policy allows one,
    else what ``respond()`` gives (stored if the policy allows). ``watch`` starts watching
    what ``respond()`` reads of the client; ``plain``, as for ``serve``."""

    async def render() -> tuple[HttpResponseBase, Page | None]:
        with Watched[HttpResponseBase](watch(request)) as made:
            response = rendered_now(made.keep(await respond()))
        return response, page_of(policy, request, response, made.reads)

    cache = shared_cache()
    page_request = await _page_request(request, policy.per_user)
    if plain is not None:
        hits, facts, named = plain
        hits.learn(cache, policy, page_request, facts, tags, options.get("depends_on", ()), named)
    edge = edge_settings_for(options.pop("edge", False))
    found = await aserve_page(
        cache, policy, page_request, respond, render, tags=tags, edge=edge, **options
    )
    return response_of(found)


def async_cached_view(
    view: View,
    policy: PagePolicy,
    tags: TagsArg,
    hits: PageHits | None,
    options: dict[str, Any],
) -> View:
    """``cache_view`` of an ``async def`` view: :func:`aserve`, after its plain hits (from
    L1 only: a store read would block the event loop)."""
    dynamic, static = split_tags(tags)

    @functools.wraps(view)
    async def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        named = None if dynamic is None else tuple(dynamic(request, *args, **kwargs))
        response, facts = quick_hit(hits, request, named, store=False)
        if response is not None:
            return response

        def entry_tags() -> list[str]:
            return [*(static if named is None else named), *page_tags(request, view)]

        return await aserve(
            request,
            lambda: view(request, *args, **kwargs),
            policy,
            entry_tags,
            plain=None if facts is None or hits is None else (hits, facts, named),
            **options,
        )

    wrapped.page_policy = policy  # type: ignore[attr-defined]
    return wrapped


async def _page_request(request: HttpRequest, per_user: bool) -> PageRequest:
    """``page_request_of(request, per_user)``, worked out off the event loop only when it
    must load the user of a session (a query, which Django refuses to run on the loop)."""
    if per_user and session_cookie_name() in request.COOKIES:
        user = request.__dict__.get("user")  # AuthenticationMiddleware's lazy user, if any
        if isinstance(user, LazyObject) and user._wrapped is empty:
            # A per-user page of a client with a session: its user is loaded from the
            # database (its hit needs the database anyway). Loaded as the sync path does it,
            # by request.user, so that both paths key the page by the same user and leave
            # the request in the same state.
            return await sync_to_async(page_request_of, thread_sensitive=True)(request, per_user)
    # Anything else is worked out without the database: who a client is, if it matters, is
    # read from an empty session (a client without a session cookie has none to load).
    return page_request_of(request, per_user)
