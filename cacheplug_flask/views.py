"""``cached_view``: whole-response caching for Flask views, by allow-list (the same rules as
the Django adapter's; see ``cacheplug.integration``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, make_response, request

from cacheplug import DEFAULT, ConfigurationError
from cacheplug.integration import (
    ClientReads,
    EnvironHeaders,
    Page,
    PagePolicy,
    PageRequest,
    Uncacheable,
    check_page_options,
    not_modified,
    private_user,
    unshared_reason,
)
from cacheplug_flask._request_facts import ReadWatch

if TYPE_CHECKING:
    from cacheplug_flask.extension import CachePlug

PATH_TAG = "page:p:"
VIEW_TAG = "page:v:"


def cached_view(
    extension: CachePlug,
    ttl: Any,
    *,
    depends_on: Sequence[Any] = (),
    tags: Any = None,
    per_user: Callable[[], Any] | None = None,
    statuses: Iterable[int] = (200,),
    stale_ttl: Any = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Cache a view's responses. Only ``GET``/``HEAD`` requests without a session cookie or
    ``Authorization`` (``per_user``: a callable giving the current user's id, which keys the
    page instead), and only responses with an allowed status, no cookie (the session's
    included), no ``Cache-Control: private/no-store/no-cache``, no ``Vary: *``, not streamed,
    are shared; and only if rendering read nothing of the client: no session, flashed
    messages, Flask-Login user (unless ``per_user``), CSRF token or cookie it sent. ``tags``:
    tags, or a callable taking the view's arguments. The arguments are checked here: a mistake
    raises :class:`~cacheplug.ConfigurationError` when the view is decorated."""
    if per_user is not None and not callable(per_user):
        raise ConfigurationError(
            f"cached_view(per_user=...) takes a callable giving the current user's id, "
            f"not {per_user!r}"
        )
    policy = PagePolicy(statuses=statuses, per_user=per_user is not None)
    check_page_options(ttl, DEFAULT if stale_ttl is None else stale_ttl, "cached_view()")
    if isinstance(depends_on, str | bytes) or not isinstance(depends_on, Iterable):
        raise ConfigurationError(
            f"cached_view(depends_on=...) takes a list of mapped classes, not {depends_on!r}"
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

        def entry_tags(kwargs: dict[str, Any]) -> list[str]:
            named = tags(**kwargs) if callable(tags) else tags or ()
            return [*named, PATH_TAG + request.script_root + request.path, VIEW_TAG + label]

        options = {"ttl": ttl, "depends_on": depends_on}
        if stale_ttl is not None:
            options["stale_ttl"] = stale_ttl

        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapped(**kwargs: Any) -> Any:
                private_cookies = extension._state.private_cookies
                page_request = page_request_of(per_user, private_cookies)
                if not policy.request_cacheable(page_request):
                    return await view(**kwargs)
                own: list[Response] = []

                async def render() -> Page:
                    watch = ReadWatch(private_cookies)
                    try:
                        response = make_response(await view(**kwargs))
                        own.append(response)
                    finally:
                        reads = watch.stop(own[-1] if own else None)
                    return _page_or_raise(policy, response, reads)

                try:
                    page = await policy.afetch(
                        extension, page_request, render, tags=entry_tags(kwargs), **options
                    )
                except Uncacheable:
                    return own[0] if own else await view(**kwargs)
                return _answer(page_request, page, own)

            async_wrapped.page_policy = policy  # type: ignore[attr-defined]
            return async_wrapped

        @functools.wraps(view)
        def wrapped(**kwargs: Any) -> Any:
            private_cookies = extension._state.private_cookies
            page_request = page_request_of(per_user, private_cookies)
            if not policy.request_cacheable(page_request):
                return view(**kwargs)
            own: list[Response] = []

            def render() -> Page:
                watch = ReadWatch(private_cookies)
                try:
                    response = make_response(view(**kwargs))
                    own.append(response)
                finally:
                    reads = watch.stop(own[-1] if own else None)
                return _page_or_raise(policy, response, reads)

            try:
                page = policy.fetch(
                    extension, page_request, render, tags=entry_tags(kwargs), **options
                )
            except Uncacheable:
                return own[0] if own else view(**kwargs)
            return _answer(page_request, page, own)

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


def _page_or_raise(policy: PagePolicy, response: Response, reads: ClientReads) -> Page:
    # What the view read of its client (the session, whose cookie is only written after the
    # view returns, included) decides first: the core's rule.
    if unshared_reason(reads, keyed_by_client=policy.per_user) is not None:
        raise Uncacheable(response)
    if response.is_streamed:
        raise Uncacheable(response)
    page = policy.page_of(
        response.status_code, response.headers.items(), response.get_data(), streamed=False
    )
    if page is None:
        raise Uncacheable(response)
    return page


def _answer(page_request: PageRequest, page: Page, own: list[Response]) -> Response:
    if not_modified(page_request, page):
        response = Response(status=304)
        response.headers["ETag"] = page.etag
        return response
    if own:
        response = own[-1]
        if "ETag" not in response.headers:
            response.headers["ETag"] = page.etag
        return response
    headers = list(page.headers)
    if not any(name.lower() == "etag" for name, _ in headers):
        headers.append(("ETag", page.etag))
    # The body even for HEAD: Werkzeug sends a HEAD response's headers only, with the
    # Content-Length of the body a GET gets (a response made with an empty body says 0).
    return Response(page.body, status=page.status, headers=headers)


__all__: Sequence[str] = ["cached_view"]
