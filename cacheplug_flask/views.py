"""``cached_view``: whole-response caching for Flask views, by allow-list (the same rules as
the Django adapter's; see ``cacheplug.integration``)."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypedDict

from flask import Response, current_app, make_response, request

from cacheplug import DEFAULT, ConfigurationError
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
    aserve_page,
    check_page_options,
    is_auto,
    private_user,
    serve_page,
)
from cacheplug_flask._page_hits import Facts, quick_hit
from cacheplug_flask._request_facts import ReadWatch, in_request


class PageCache(Protocol):
    """What ``cached_view`` uses of its extension: a ``CachePlug``, which imports this module
    for its ``cached_view`` method (naming the class here would import it back). Pages are
    read and stored through its ``get_or_load`` and ``aget_or_load``, which
    ``cacheplug.integration.serve_page`` takes untyped."""

    @property
    def private_cookies(self) -> tuple[str, ...]: ...

    @property
    def edge(self) -> EdgeSettings | None: ...


logger = logging.getLogger("cacheplug_flask")
PATH_TAG = "page:p:"
VIEW_TAG = "page:v:"


class CachedViewOptions(TypedDict, total=False):
    """The keyword options of :func:`cached_view` (and ``CachePlug.cached_view``), whose
    defaults :func:`cached_view` declares."""

    depends_on: Sequence[Any] | str
    tags: Any
    per_user: Callable[[], Any] | None
    statuses: Iterable[int]
    stale_ttl: Any
    edge: bool


def cached_view(
    extension: PageCache,
    ttl: Any,
    *,
    depends_on: Sequence[Any] | str = (),
    tags: Any = None,
    per_user: Callable[[], Any] | None = None,
    statuses: Iterable[int] = (200,),
    stale_ttl: Any = None,
    edge: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Cache a view's responses. Only ``GET``/``HEAD`` requests without a session cookie or
    ``Authorization`` (``per_user``: a callable giving the current user's id, which keys the
    page instead), and only responses with an allowed status, no cookie (the session's
    included), no ``Cache-Control: private/no-store/no-cache``, no ``Vary: *``, not streamed,
    are shared; and only if rendering read nothing of the client: no session, flashed
    messages, Flask-Login user (unless ``per_user``), CSRF token or cookie it sent.
    ``depends_on``: mapped classes whose writes invalidate the page, or ``"auto"``: what
    rendering it read through SQLAlchemy. ``tags``:
    tags, or a callable taking the view's arguments. ``edge=True``: a shared page also goes to
    the edge cache ``CACHEPLUG_EDGE`` describes (``Cache-Control: public, s-maxage``, its
    keys; purged when its data changes), unless it is per user or ``depends_on="auto"``. The
    arguments are checked here: a mistake raises :class:`~cacheplug.ConfigurationError` when
    the view is decorated."""
    if not isinstance(edge, bool):
        raise ConfigurationError(f"cached_view(edge=...) takes True or False, not {edge!r}")
    if per_user is not None and not callable(per_user):
        raise ConfigurationError(
            f"cached_view(per_user=...) takes a callable giving the current user's id, "
            f"not {per_user!r}"
        )
    policy = PagePolicy(statuses=statuses, per_user=per_user is not None)
    check_page_options(ttl, DEFAULT if stale_ttl is None else stale_ttl, "cached_view()")
    if not is_auto(depends_on) and (
        isinstance(depends_on, str | bytes) or not isinstance(depends_on, Iterable)
    ):
        raise ConfigurationError(
            f"cached_view(depends_on=...) takes a list of mapped classes or 'auto', not "
            f"{depends_on!r}"
        )
    if isinstance(tags, str):
        tags = (tags,)
    elif not (tags is None or callable(tags)) and (
        not isinstance(tags, Iterable) or not all(isinstance(tag, str) for tag in tags)
    ):
        raise ConfigurationError(
            f"cached_view(tags=...) takes tag names, or a callable taking the view's "
            f"arguments and giving tag names, not {tags!r}"
        )

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        label = f"{view.__module__}.{view.__qualname__}"
        hits = None if per_user is not None else PageHits()
        dynamic = tags if callable(tags) else None
        static: tuple[str, ...] = () if tags is None or callable(tags) else tuple(tags)

        def entry_tags(named: tuple[str, ...] | None) -> list[str]:
            return [
                *(static if named is None else named),
                PATH_TAG + request.script_root + request.path,
                VIEW_TAG + label,
            ]

        options = {"ttl": ttl, "depends_on": depends_on}
        if stale_ttl is not None:
            options["stale_ttl"] = stale_ttl

        def learned(
            facts: Facts | None, named: tuple[str, ...] | None, page_request: PageRequest
        ) -> PageRequest:
            if facts is not None and hits is not None:
                hits.learn(
                    extension,  # type: ignore[arg-type]
                    policy,
                    page_request,
                    facts,
                    lambda: entry_tags(named),
                    depends_on,
                    named,
                )
            return page_request

        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapped(**kwargs: Any) -> Any:
                named = None if dynamic is None else tuple(dynamic(**kwargs))
                # From L1 only: a store read would block the event loop.
                found, facts = quick_hit(hits, extension, named, store=False)
                if found is not None:
                    return response_of(found)
                private_cookies = extension.private_cookies

                async def respond() -> Response:
                    return make_response(await view(**kwargs))

                async def render() -> tuple[Response, Page | None]:
                    with Watched[Response](ReadWatch(private_cookies)) as made:
                        response = made.keep(await respond())
                    return response, page_of(policy, response, made.reads)

                found = await aserve_page(
                    extension,
                    policy,
                    learned(facts, named, page_request_of(per_user, private_cookies)),
                    respond,
                    render,
                    tags=lambda: entry_tags(named),
                    edge=edge_settings_for(extension, edge),
                    **options,
                )
                return response_of(found)

            async_wrapped.page_policy = policy  # type: ignore[attr-defined]
            return async_wrapped

        @functools.wraps(view)
        def wrapped(**kwargs: Any) -> Any:
            named = None if dynamic is None else tuple(dynamic(**kwargs))
            found, facts = quick_hit(hits, extension, named)
            if found is not None:
                return response_of(found)
            private_cookies = extension.private_cookies

            def respond() -> Response:
                return make_response(view(**kwargs))

            def render() -> tuple[Response, Page | None]:
                with Watched[Response](ReadWatch(private_cookies)) as made:
                    response = made.keep(respond())
                return response, page_of(policy, response, made.reads)

            found = serve_page(
                extension,
                policy,
                learned(facts, named, page_request_of(per_user, private_cookies)),
                respond,
                in_request(render),
                tags=lambda: entry_tags(named),
                edge=edge_settings_for(extension, edge),
                **options,
            )
            return response_of(found)

        wrapped.page_policy = policy  # type: ignore[attr-defined]
        return wrapped

    return decorator


def page_request_of(
    per_user: Callable[[], Any] | None, private_cookies: Sequence[str] = ()
) -> PageRequest:
    """What page caching needs of the current Flask request (read from the request object
    itself: each attribute through the context-local proxy costs a lookup)."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    environ = req.environ
    user = None
    cookie = current_app.config.get("SESSION_COOKIE_NAME", "session")
    has_cookie = "HTTP_COOKIE" in environ and cookie in req.cookies
    if per_user is not None:
        found = per_user()
        user = None if found is None else f"user:{found}"
        if user is None and has_cookie:
            user = f"session:{req.cookies[cookie]}"
    elif has_cookie:
        user = "session"
    if user is None and private_cookies and "HTTP_COOKIE" in environ:
        user = private_user(req.cookies, private_cookies, per_user is not None)
    return PageRequest(
        method=req.method,
        host=req.host,
        path=req.script_root + req.path,  # the prefix too: links are built with it
        query=list(req.args.items(multi=True)) if environ.get("QUERY_STRING") else (),
        headers=EnvironHeaders(environ),
        user=user,
        scheme=req.scheme,
    )


def page_of(policy: PagePolicy, response: Response, reads: ClientReads) -> Page | None:
    """The storable form of a Flask response made with ``reads`` of its client (the session,
    whose cookie is only written after the view returns, included), or ``None`` if it may not
    be shared (the rule is the core's)."""
    if response.is_streamed:
        return None
    return policy.page_of(
        response.status_code, response.headers.items(), response.get_data(), reads=reads
    )


def response_of(answer: Answer[Response]) -> Response:
    """The Flask response of an :class:`~cacheplug.integration.Answer`."""
    response = answer.own
    if response is not None:
        for name, value in answer.headers:
            if name not in response.headers:
                response.headers[name] = value
        for name, value in answer.edge:
            response.headers[name] = value
        return response
    response = Response(answer.body, status=answer.status, headers=answer.headers)
    if not answer.body:
        # Werkzeug set the length of the body it was given (none for a HEAD): the answer's
        # is the GET's.
        for name, value in answer.headers:
            if name.lower() == "content-length":
                response.headers["Content-Length"] = value
    return response


def edge_settings_for(extension: PageCache, wanted: bool) -> EdgeSettings | None:
    """The app's ``CACHEPLUG_EDGE`` for a page that asks to be given to the edge; ``None`` for
    one that does not, or when the setting is off (said once: the page is the app's only)."""
    if not wanted:
        return None
    edge = extension.edge
    if edge is None and not _warned_edge_off:
        _warned_edge_off.append(True)
        logger.warning(
            "cacheplug: a page asks for the edge (cached_view(edge=True)) but CACHEPLUG_EDGE "
            "is not set: it gets no edge headers"
        )
    return edge


_warned_edge_off: list[bool] = []

__all__: Sequence[str] = ["cached_view"]
