"""A cached page's hit answered before the request is read in full.

Why: a page hit read the whole request (cookies, query, host, language), built its key, went
through the read's layers and rebuilt the response: with L1 on it cost 3.8x (Django) and 4.9x
(Flask) a view returning a prebuilt response, although the L1 lookup itself is about 1 µs;
from the store, the work around the one round trip cost more than the round trip. Most
requests for a URL are alike: an anonymous ``GET`` without a cookie, an ``Authorization`` or
an ``If-None-Match`` header. For those the adapter gives the *facts* that decide the page's
key (host as sent, path, query string, scheme, language: whatever its
:class:`~cacheplug.integration.PageRequest` is made of), and :class:`PageHits` remembers which
key and tags the general path read for them last time. A hit is then one dictionary lookup
and a plain read (``TaggedCache.plain_hit``: L1, else one round trip); anything else takes
the general path, which decides (and counts) as it always did:

- only requests the adapter finds plain (the checks above) and facts seen before;
- only pages that vary on no request header (their key is the URL's own) and are complete
  (their headers are those a hit sends);
- only entries held with exactly the version keys of the remembered tags, all current, so a
  page is served here only when the general path would serve the same one; a change of the
  tags (a model's table, a callable's answer) makes the lookup miss, never serve another page;
- not while this request renders a page (a nested read of it must render, see ``_pages``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from cacheplug._memo import BoundedMemo
from cacheplug._types import NOTHING
from cacheplug.encoding._keys import ReservedKey
from cacheplug.integration._page_records import PageRequest
from cacheplug.integration._pages import PagePolicy, _fetching


class _PlainReader(Protocol):
    def plain_hit(
        self,
        key: str,
        tags: tuple[str, ...] | None,
        store: bool = True,
        wanted: Callable[[Any], bool] = ...,
    ) -> Any: ...

    def read_tags(
        self, tags: Iterable[str] | str | None, depends_on: Sequence[Any] | str = ()
    ) -> tuple[str, ...] | None: ...


class _Known:
    """What the general path used for a request's facts."""

    __slots__ = ("key", "named", "not_plain", "tags")

    def __init__(
        self, key: ReservedKey, tags: tuple[str, ...] | None, named: tuple[str, ...] | None
    ) -> None:
        self.key = key
        self.tags = tags
        self.named = named
        self.not_plain = False
        """The page found was not one a plain request can take (it varies on a header): not
        read here again, so that such a URL costs no wasted read."""

    def wanted(self, record: Any) -> bool:
        """Whether a stored record (``Page.record()``) can answer a plain request: complete,
        and varying on no header. Read as it is: building a Page costs a microsecond, a
        third of an L1 hit."""
        kind = type(record)
        plain = (kind is tuple or kind is list) and len(record) == 6
        if plain and record[4] is True and not record[5]:
            return True
        self.not_plain = True
        return False


def plain_request(method: str | None, environ: Mapping[str, Any]) -> bool:
    """Whether a request may take the plain hit, by its WSGI ``environ`` (Django's
    ``request.META``): ``GET`` or ``HEAD``, no cookie (so no session, login or private
    cookie; an empty header, as Django's test client sends, is none), no ``Authorization``,
    no ``If-None-Match`` (the general path answers 304s)."""
    return (
        (method == "GET" or method == "HEAD")
        and not environ.get("HTTP_COOKIE")
        and "HTTP_AUTHORIZATION" not in environ
        and "HTTP_IF_NONE_MATCH" not in environ
    )


PlainPage = tuple[int, Sequence[Sequence[str]], bytes]
"""A page found for a plain request: status, headers (those a hit sends, ``ETag`` and
``Content-Length`` included), body."""


class PageHits:
    """The pages a view (or a page rule) served lately, by the facts of the request."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: BoundedMemo[Hashable, _Known] = BoundedMemo()

    def find(
        self,
        cache: _PlainReader,
        facts: Hashable,
        named: tuple[str, ...] | None = None,
        *,
        store: bool = True,
    ) -> PlainPage | None:
        """The page held for a plain request with ``facts`` (in L1, or in the store too if
        ``store``), or ``None``: take the general path. ``named``: the tags a callable gave
        for this request (``None`` for tags that do not depend on it); a page remembered
        with others is not found."""
        known = self._known.get(facts)
        if known is None or known.named != named or known.not_plain or _fetching.get():
            return None
        record = cache.plain_hit(known.key, known.tags, store, known.wanted)
        if record is NOTHING:
            return None
        return record[0], record[1], record[2]

    def learn(
        self,
        cache: _PlainReader,
        policy: PagePolicy,
        request: PageRequest,
        facts: Hashable,
        tags: Callable[[], Sequence[str]],
        depends_on: Any,
        named: tuple[str, ...] | None = None,
    ) -> None:
        """Called by the general path for a plain request with ``facts``: remember the key
        and tags (``tags()`` and ``depends_on`` as the read is given them) it reads, unless
        known already (or the request may not share a page)."""
        known = self._known.get(facts)
        if known is not None and known.named == named:
            return
        if request.user is None and policy.request_cacheable(request):
            read_tags = cache.read_tags(tags(), depends_on)
            self._known.remember(facts, _Known(policy.base_key(request), read_tags, named))
