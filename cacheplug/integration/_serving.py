"""Serving a shared page: the one flow every adapter's page view and middleware call, so that
the answer (200, 304, HEAD, the headers sent) is the same whichever framework asks.

The adapter parses its request into a :class:`~cacheplug.integration.PageRequest`, gives a
``render`` callable returning its framework's response and that response's storable
:class:`~cacheplug.integration.Page` (``None`` when it may not be shared), and builds its
framework's response from the :class:`Answer`:

- a response this request rendered itself is sent as it is (``Answer.own``), with
  ``Answer.headers`` added where it lacks them (the ``ETag`` and ``Content-Length`` a hit
  would carry);
- a stored page is sent as ``Answer.status``, ``Answer.headers``, ``Answer.body`` (the body is
  empty for ``HEAD``, the ``Content-Length`` that of the ``GET``);
- a client that already has the page gets 304 with the headers RFC 9110 §15.4.5 says a 304
  carries as the 200 would: ``Cache-Control``, ``Content-Location``, ``ETag``, ``Expires`` and
  ``Vary`` (``Date`` is the server's to add, as on the 200).

A response that may not be shared is this request's own to send; another request's is not
(it may carry that client's cookie or token): a request that waited for one renders its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from cacheplug.integration._edge import EDGE_HEADER_NAMES, EdgeSettings, edge_part, page_for_edge
from cacheplug.integration._page_records import (
    Page,
    PageRequest,
    Uncacheable,
    current_task,
    current_thread,
)
from cacheplug.integration._pages import PagePolicy

R = TypeVar("R")

NOT_MODIFIED_HEADERS: Final = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "vary", *EDGE_HEADER_NAMES}
)
"""The headers of the 200 that a 304 repeats (RFC 9110 §15.4.5), and the edge's (a CDN
revalidating a page keeps its keys)."""


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~1 us on every hit
class Answer(Generic[R]):
    """What to send: the adapter's own response (``own``, with ``headers`` added where it lacks
    them), or a response made of ``status``, ``headers`` and ``body``."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    own: R | None = None
    edge: tuple[tuple[str, str], ...] = ()
    """Headers to set on ``own``, replacing its own: the edge's ``Cache-Control`` and keys,
    for a page given to the edge (a hit's are in ``headers`` already)."""


def etag_sent(page: Page) -> str:
    """The ``ETag`` a page is sent with: the response's own if it set one, else the hash of
    its body."""
    for name, value in page.headers:
        if name.lower() == "etag":
            return value
    return page.etag


def _opaque(tag: str) -> str:
    # If-None-Match compares weakly (RFC 9110 §13.1.2): W/"x" matches "x".
    return tag.strip().removeprefix("W/")


def not_modified(request: PageRequest, page: Page) -> bool:
    """True when the client already has this page (``If-None-Match`` names the ETag it is
    sent with)."""
    return _matches(request.headers.get("if-none-match"), etag_sent(page))


def _matches(wanted: str | None, sent: str) -> bool:
    if not wanted or not sent:
        return False
    tags = {_opaque(tag) for tag in wanted.split(",")}
    return "*" in tags or _opaque(sent) in tags


def answer(request: PageRequest, page: Page, own: R | None = None) -> Answer[R]:
    """The answer to ``request`` with ``page``; ``own``: the response this request rendered
    (the page was made from it)."""
    wanted = request.headers.get("if-none-match")
    if own is None and not wanted and page.complete:  # the usual hit: sent as stored
        return Answer(page.status, page.headers, b"" if request.method == "HEAD" else page.body)
    # One pass over the stored headers (this runs on every hit): the response's own ETag, if
    # it set one, and the headers to send again.
    etag = ""
    sent: list[tuple[str, str]] = []
    for header in page.headers:
        name = header[0].lower()
        if name == "etag":
            etag = header[1]
        elif name == "content-length":
            continue
        sent.append(header)
    has_etag = bool(etag)
    if not has_etag:
        etag = page.etag
    if _matches(wanted, etag):
        kept = tuple(header for header in sent if header[0].lower() in NOT_MODIFIED_HEADERS)
        return Answer(304, kept if has_etag else (*kept, ("ETag", etag)))
    length = ("Content-Length", str(len(page.body)))
    if own is not None:
        return Answer(page.status, (("ETag", etag), length), own=own, edge=edge_part(page))
    if not has_etag:
        sent.append(("ETag", etag))
    sent.append(length)
    body = b"" if request.method == "HEAD" else page.body
    return Answer(page.status, tuple(sent), body)


def _own(response: R) -> Answer[R]:
    return Answer(0, (), own=response)


class _Rendered(Generic[R]):
    """The responses the current request rendered for its page, for :func:`serve_page` and
    :func:`aserve_page` alike: a background refresh's are not ours to send (they may carry
    that request's client's cookie or token)."""

    __slots__ = ("caller", "current", "edge", "own")

    def __init__(
        self,
        current: Callable[[], object],
        edge: tuple[EdgeSettings, Sequence[str]] | None = None,
    ) -> None:
        self.current = current  # current_thread on the sync path, current_task on the async
        self.caller = current()
        self.own: list[R] = []
        self.edge = edge  # the settings and version keys of a page given to the edge

    def page(self, response: R, page: Page | None) -> Page:
        """``page`` to store (with the edge's headers, if it is for the edge), ``response``
        kept to send if ours; raises :class:`Uncacheable` when ``page`` is ``None`` (the
        response may not be shared)."""
        if self.current() is self.caller:  # not a background refresh's: ours to send
            self.own.append(response)
        if page is None:
            raise Uncacheable(response)
        if self.edge is not None:
            page = page_for_edge(page, *self.edge)
        return page

    def answer(self, request: PageRequest, page: Page) -> Answer[R]:
        return answer(request, page, self.own[-1] if self.own else None)


def serve_page(
    cache: Any,
    policy: PagePolicy,
    request: PageRequest,
    respond: Callable[[], R],
    render: Callable[[], tuple[R, Page | None]],
    *,
    tags: Callable[[], Sequence[str]] | Sequence[str] = (),
    edge: EdgeSettings | None = None,
    **options: Any,
) -> Answer[R]:
    """The answer to ``request``: a shared page if ``policy`` allows one, else a response of
    this request's own: ``respond()``'s, or ``render()``'s (``render`` responds too, watching
    what that reads of the client, and gives the page to store, if any). ``cache``: anything
    with ``get_or_load`` (the adapter's cache, which reads around the cache what an open
    transaction wrote); ``options`` go to it (``ttl``, ``stale_ttl``, ...). ``tags``: the
    page's tags, or a function giving them, called only for a request the cache may answer
    (working tags out can cost: resolving a URL name, say). ``edge``: give the page to the
    edge (:func:`edge_headers`) as it is stored, unless it is keyed by user or its
    dependencies are discovered (``auto``)."""
    if not policy.request_cacheable(request):
        return _own(respond())
    if callable(tags):
        tags = tags()
    # Not _Rendered[R](...): subscripting a generic class at run time costs ~1 us a call.
    rendered: _Rendered[R] = _Rendered(
        current_thread, _for_edge(cache, policy, edge, tags, options)
    )
    try:
        page = policy.fetch(cache, request, lambda: rendered.page(*render()), tags=tags, **options)
    except Uncacheable:
        return _own(rendered.own[0] if rendered.own else respond())
    return rendered.answer(request, page)


async def aserve_page(
    cache: Any,
    policy: PagePolicy,
    request: PageRequest,
    respond: Callable[[], Awaitable[R]],
    render: Callable[[], Awaitable[tuple[R, Page | None]]],
    *,
    tags: Callable[[], Sequence[str]] | Sequence[str] = (),
    edge: EdgeSettings | None = None,
    **options: Any,
) -> Answer[R]:
    """Async :func:`serve_page`: ``respond`` and ``render`` are coroutine functions and
    ``cache`` has ``aget_or_load``."""
    if not policy.request_cacheable(request):
        return _own(await respond())
    if callable(tags):
        tags = tags()
    rendered: _Rendered[R] = _Rendered(current_task, _for_edge(cache, policy, edge, tags, options))

    async def render_page() -> Page:
        return rendered.page(*await render())

    try:
        page = await policy.afetch(cache, request, render_page, tags=tags, **options)
    except Uncacheable:
        return _own(rendered.own[0] if rendered.own else await respond())
    return rendered.answer(request, page)


def _for_edge(
    cache: Any,
    policy: PagePolicy,
    edge: EdgeSettings | None,
    tags: Sequence[str],
    options: dict[str, Any],
) -> tuple[EdgeSettings, Sequence[str]] | None:
    """What a page is given to the edge with, if it is: never a page keyed by user (an edge
    would serve it to everybody), nor one whose dependencies are discovered."""
    if edge is None or policy.per_user:
        return None
    version_keys = cache.edge_version_keys(tags, options.get("depends_on", ()))
    return None if version_keys is None else (edge, version_keys)
