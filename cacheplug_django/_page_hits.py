"""Django's side of a plain page hit (see :class:`cacheplug.integration.PageHits`): which
requests are plain, the facts that decide their page's key, and the response of a page
found in L1 or with one store read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse
from django.utils.functional import LazyObject, empty
from django.utils.translation import get_language

from cacheplug.integration import PageHits, PlainPage, plain_request
from cacheplug_django._request_facts import settings_generation, use_i18n

if TYPE_CHECKING:
    from cacheplug_django._cache import DjangoCache

Facts = tuple[object, ...]
_shared: list[DjangoCache] = []


def shared_cache() -> DjangoCache:
    """``cacheplug_django.cache``, imported on first use (the app registry must be ready)."""
    if not _shared:
        from cacheplug_django._state import cache

        _shared.append(cache)
    return _shared[0]


def plain_facts(request: HttpRequest) -> Facts | None:
    """What decides the key of ``request``'s page, if it is plain (``plain_request``, and no
    user logged in by other means). ``None`` otherwise: the general path reads the request
    in full."""
    meta = request.META
    if not plain_request(request.method, meta):
        return None
    user = request.__dict__.get("user")
    if (
        user is not None
        and not (isinstance(user, LazyObject) and user._wrapped is empty)
        and getattr(user, "is_authenticated", False)
    ):
        return None  # logged in by other means than a cookie (a middleware of one's own)
    return (
        request.path,
        meta.get("QUERY_STRING"),
        request.scheme,
        # What get_host() reads (the host is validated on the general path first).
        meta.get("HTTP_HOST"),
        meta.get("HTTP_X_FORWARDED_HOST"),
        meta.get("SERVER_NAME"),
        meta.get("SERVER_PORT"),
        meta.get("HTTP_X_FORWARDED_PORT"),
        get_language() if use_i18n() else None,
        settings_generation(),
    )


def hit_response(page: PlainPage, method: str | None) -> HttpResponse:
    """The response of a stored page found for a plain request (its headers are complete:
    ``ETag`` and ``Content-Length`` included)."""
    status, headers, body = page
    named: Iterable[tuple[str, str]] = headers  # type: ignore[assignment]  # pairs, as lists too
    return HttpResponse(b"" if method == "HEAD" else body, status=status, headers=dict(named))


def quick_hit(
    hits: PageHits | None,
    request: HttpRequest,
    named: tuple[str, ...] | None,
    *,
    store: bool = True,
) -> tuple[HttpResponse | None, Facts | None]:
    """``(the response of a page found for a plain request, the request's facts)``; the
    response is ``None`` when the general path must answer (the facts too, for a request
    that is not plain). ``store``: read the store too, not L1 only (not on an event loop)."""
    if hits is None:
        return None, None
    facts = plain_facts(request)
    if facts is None:
        return None, None
    page = hits.find(shared_cache(), facts, named, store=store)
    return (None if page is None else hit_response(page, request.method)), facts
