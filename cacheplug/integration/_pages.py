"""Whole-response (page) caching by allow-list, for the framework adapters.

A response is shared between clients only if everything about it says it may be:

- the request is ``GET`` or ``HEAD``, and carries no session, login or ``Authorization``
  (unless the view caches per user, then it is keyed by the user);
- the response's status is allowed (200 by default); it sets no cookie; its
  ``Cache-Control`` says none of ``private``, ``no-store``, ``no-cache`` (in any case); it
  does not ``Vary: *``; and it is not streamed.

Anything else is served as rendered and not stored. Django's own cache middleware decides
by a deny-list, and has needed security fixes for the gaps.

The stored form is a plain record: the status, the headers from an allow-list, and the body.
It is never a pickled response object. The key is made of the host (as the framework
validated it), the path, the query string as the framework parses it (sorted), the user
when caching per user, and the values of the request headers the response's ``Vary`` names.
A hit costs one round trip: each process remembers which headers a URL's responses vary on.
When it does not know yet, it finds out from the entry stored under the key without them,
and then reads again.

Hits carry an ``ETag`` (a hash of the body, unless the response set its own) and answer a
matching ``If-None-Match`` with 304 (``_serving``). Page keys are
:class:`~cacheplug.encoding._keys.ReservedKey` objects: no application key can read or
replace a page.
What rendering read of the client decides whether a page is stored at all
(``_client_reads``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import Any, Final, Protocol
from urllib.parse import quote

from cacheplug._config import non_negative, ttl_seconds
from cacheplug._types import DEFAULT
from cacheplug.encoding._keys import ReservedKey
from cacheplug.exceptions import ConfigurationError
from cacheplug.integration._client_reads import NOTHING_READ, ClientReads, unshared_reason
from cacheplug.integration._page_records import (
    STORED_HEADERS,
    Page,
    PageRequest,
    current_task,
    current_thread,
    etag_of,
    vary_of,
)

_MEMO_ENTRIES: Final = 10_000

_UNSHAREABLE: Final = ("private", "no-store", "no-cache")
_fetching: ContextVar[frozenset[str]] = ContextVar("cacheplug_pages_fetching", default=frozenset())
"""The pages this request (thread or task) is fetching: a nested fetch of one renders it."""


class _Reader(Protocol):
    def get_or_load(
        self, key: str, loader: Callable[[], Any], ttl: Any = ..., **kw: Any
    ) -> Any: ...


class _AsyncReader(Protocol):
    async def aget_or_load(
        self, key: str, loader: Callable[[], Any], ttl: Any = ..., **kw: Any
    ) -> Any: ...


class PagePolicy:
    """Which requests and responses may be shared, and under which key."""

    def __init__(self, *, statuses: Iterable[int] = (200,), per_user: bool = False) -> None:
        if isinstance(statuses, str | bytes) or not isinstance(statuses, Iterable):
            raise ConfigurationError(
                f"statuses must be HTTP status codes such as (200, 404), not {statuses!r}"
            )
        statuses = tuple(statuses)
        if not statuses or not all(type(code) is int and 100 <= code <= 599 for code in statuses):
            raise ConfigurationError(
                f"statuses must be HTTP status codes (ints 100-599) such as (200, 404), "
                f"not {statuses!r}"
            )
        if not isinstance(per_user, bool):
            raise ConfigurationError(f"per_user must be True or False, not {per_user!r}")
        self.statuses = frozenset(statuses)
        self.per_user = per_user
        self._vary: dict[str, tuple[str, ...]] = {}

    def request_cacheable(self, request: PageRequest) -> bool:
        """True if the cache may answer ``request`` (or store its response)."""
        if request.method not in ("GET", "HEAD"):
            return False
        if request.user is None:
            # Nobody the adapter can name: shareable only if nothing else identifies the
            # client (an Authorization header handled by the view itself, say).
            return "authorization" not in request.headers
        return self.per_user

    def page_of(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        streamed: bool = False,
        *,
        reads: ClientReads = NOTHING_READ,
    ) -> Page | None:
        """The storable form of a response made with ``reads`` of its client; ``None`` if it
        may not be shared (``unshared_reason`` decides what the reads allow)."""
        if streamed or status not in self.statuses:
            return None
        if unshared_reason(reads, keyed_by_client=self.per_user) is not None:
            return None
        kept: list[tuple[str, str]] = []
        has_etag = False
        for name, value in headers:
            lower = name.lower()
            if lower == "set-cookie":
                return None
            if lower == "cache-control":
                tokens = {token.strip().split("=")[0].lower() for token in value.split(",")}
                if tokens.intersection(_UNSHAREABLE):
                    return None
            if lower == "vary" and "*" in value:
                return None
            if lower in STORED_HEADERS:
                kept.append((name, value))
                has_etag = has_etag or lower == "etag"
        etag = etag_of(body)
        if not has_etag:
            kept.append(("ETag", etag))
        kept.append(("Content-Length", str(len(body))))
        kept_headers = tuple(kept)
        return Page(status, kept_headers, body, etag, complete=True, varies=vary_of(kept_headers))

    def base_key(self, request: PageRequest) -> ReservedKey:
        """The key of a URL before any ``Vary`` header (GET and HEAD share it)."""
        # Sorted by name only: a repeated name keeps the order of its values, since frameworks
        # read the first or the last of them.
        query = (
            "&".join(
                f"{quote(name, safe='')}={quote(value, safe='')}"
                for name, value in sorted(request.query, key=lambda pair: pair[0])
            )
            if request.query
            else ""
        )
        user = f"|user={quote(request.user, safe='')}" if self.per_user and request.user else ""
        variant = f"|{quote(request.variant, safe='')}" if request.variant else ""
        return ReservedKey(
            f"page:{request.scheme}://{request.host}{quote(request.path)}?{query}{user}{variant}"
        )

    def key(
        self, request: PageRequest, vary: Sequence[str], base: ReservedKey | None = None
    ) -> ReservedKey:
        """The key of ``request``'s page given the headers its URL varies on (``base``:
        :meth:`base_key`, if the caller has it)."""
        if base is None:
            base = self.base_key(request)
        if not vary:
            return base
        values = "|".join(f"{name}={request.headers.get(name, '')}" for name in vary)
        digest = hashlib.blake2b(values.encode("utf-8", "surrogatepass"), digest_size=16)
        return ReservedKey(f"{base}|vary={digest.hexdigest()}")

    def fetch(
        self,
        cache: _Reader,
        request: PageRequest,
        render: Callable[[], Page],
        **options: Any,
    ) -> Page:
        """The page for ``request``: from the cache, or ``render()``'s (stored). ``render``
        raises :class:`Uncacheable` for a response that may not be stored; it propagates."""
        base = self.base_key(request)
        if base in _fetching.get():
            # The same page cached twice over (a decorated view under a middleware rule), met
            # while the outer one renders it: the outer fetch stores it; waiting for it here
            # would wait for ourselves.
            return render()
        return self._fetch(cache, request, render, base, **options)

    def _fetch(
        self,
        cache: _Reader,
        request: PageRequest,
        render: Callable[[], Page],
        base: ReservedKey,
        **options: Any,
    ) -> Page:
        vary = self._vary.get(base, ())
        rendered: list[Page] = []
        caller = current_thread()

        def render_once() -> tuple[Any, ...]:
            # Marked only while rendering (where the page can be met again), not on every hit.
            token = _fetching.set(_fetching.get() | {base})
            try:
                page = render()
            finally:
                _fetching.reset(token)
            if current_thread() is caller:  # not a background refresh's
                rendered.append(page)
            return page.record()

        found = cache.get_or_load(self.key(request, vary, base), render_once, **options)
        page = rendered[-1] if rendered else Page.from_record(found)
        if page.vary == vary:
            return page
        # This URL varies on other headers than this process knew: key it by them.
        self._remember(base, page.vary)
        if rendered:
            return page  # ours, just rendered: stored under its right key next time
        found = cache.get_or_load(self.key(request, page.vary, base), render_once, **options)
        page = rendered[-1] if rendered else Page.from_record(found)
        if page.vary != self._vary.get(base) and not rendered:
            # It changed again between the two reads: share nothing, render ourselves.
            render_once()
            return rendered[-1]
        return page

    async def afetch(
        self,
        cache: _AsyncReader,
        request: PageRequest,
        render: Callable[[], Awaitable[Page]],
        **options: Any,
    ) -> Page:
        """Async :meth:`fetch`: ``render`` is a coroutine function."""
        base = self.base_key(request)
        if base in _fetching.get():
            return await render()
        return await self._afetch(cache, request, render, base, **options)

    async def _afetch(
        self,
        cache: _AsyncReader,
        request: PageRequest,
        render: Callable[[], Awaitable[Page]],
        base: ReservedKey,
        **options: Any,
    ) -> Page:
        vary = self._vary.get(base, ())
        rendered: list[Page] = []
        caller = current_task()

        async def render_once() -> tuple[Any, ...]:
            token = _fetching.set(_fetching.get() | {base})
            try:
                page = await render()
            finally:
                _fetching.reset(token)
            if current_task() is caller:  # not a background refresh's
                rendered.append(page)
            return page.record()

        found = await cache.aget_or_load(self.key(request, vary, base), render_once, **options)
        page = rendered[-1] if rendered else Page.from_record(found)
        if page.vary == vary:
            return page
        self._remember(base, page.vary)
        if rendered:
            return page
        found = await cache.aget_or_load(self.key(request, page.vary, base), render_once, **options)
        page = rendered[-1] if rendered else Page.from_record(found)
        if page.vary != self._vary.get(base) and not rendered:
            await render_once()
            return rendered[-1]
        return page

    def forget(self) -> None:
        """Forget which headers URLs vary on (they are found out again from the store)."""
        self._vary.clear()

    def _remember(self, base: str, vary: tuple[str, ...]) -> None:
        if len(self._vary) >= _MEMO_ENTRIES:
            self._vary.clear()
        self._vary[base] = vary


def check_page_options(ttl: Any, stale_ttl: Any, where: str) -> None:
    """Check a page decorator's ``ttl`` and ``stale_ttl`` when it is applied, not when the
    first request comes; raises :class:`~cacheplug.ConfigurationError`."""
    try:
        ttl_seconds(ttl, None)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{where}: {exc}; pass a number of seconds > 0, None (no expiry), or leave ttl "
            "out (the cache's default)"
        ) from None
    if stale_ttl is not DEFAULT and stale_ttl is not None:
        non_negative(f"{where}: stale_ttl", stale_ttl)
