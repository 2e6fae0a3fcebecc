"""Flask's side of a plain page hit (see :class:`cacheplug.integration.PageHits`): which
requests are plain, and the facts that decide their page's key."""

from __future__ import annotations

from typing import Any, cast

from flask.globals import request_ctx

from cacheplug.integration import Answer, PageHits, plain_request

Facts = tuple[object, ...]
Headers = tuple[tuple[str, str], ...]


def plain_facts() -> Facts | None:
    """What decides the key of the current request's page, if it is plain
    (``plain_request``). ``None`` otherwise: the general path reads the request in full."""
    ctx = request_ctx._get_current_object()  # type: ignore[attr-defined]
    environ = ctx.request.environ
    if not plain_request(environ.get("REQUEST_METHOD"), environ):
        return None
    return (
        # What request.path, .script_root, .args, .scheme and .host are read from.
        environ.get("PATH_INFO"),
        environ.get("SCRIPT_NAME"),
        environ.get("QUERY_STRING"),
        environ.get("wsgi.url_scheme"),
        environ.get("HTTP_HOST"),
        environ.get("SERVER_NAME"),
        environ.get("SERVER_PORT"),
        ctx.app,  # an extension (and a view) may serve several apps, each its own cache
    )


def quick_hit(
    hits: PageHits | None,
    extension: Any,
    named: tuple[str, ...] | None,
    *,
    store: bool = True,
) -> tuple[Answer[Any] | None, Facts | None]:
    """``(the answer of a page found for a plain request, the request's facts)``; the
    answer is ``None`` when the general path must answer (the facts too, for a request
    that is not plain). ``store``: read the store too, not L1 only (not on an event loop)."""
    if hits is None:
        return None, None
    facts = plain_facts()
    if facts is None:
        return None, None
    page = hits.find(extension, facts, named, store=store)
    if page is None:
        return None, facts
    status, headers, body = page
    if type(headers) is not tuple:  # lists, from a data-only codec
        headers = tuple((name, value) for name, value in headers)
    head = request_ctx.request.environ.get("REQUEST_METHOD") == "HEAD"
    return Answer(status, cast("Headers", headers), b"" if head else body), facts
