"""The values page caching passes around, and how they are read from a request.

- :class:`PageRequest`: what page caching needs of a request, as an adapter read it;
  :class:`EnvironHeaders` reads request headers lazily from a WSGI environ or Django's META;
  :func:`private_user` and :func:`cookie_names` are the private-cookie rule and its setting.
- :class:`Page`: a response as stored (status, allow-listed headers, body, ETag), and
  :data:`STORED_HEADERS`, the allow-list; :class:`Uncacheable` carries a response that may not
  be shared.
- :func:`current_thread`, :func:`current_task`: which thread or task is rendering (a
  background refresh is not the request that started it).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cacheplug.exceptions import ConfigurationError

STORED_HEADERS: Final = frozenset(
    {
        "content-type",
        "content-language",
        "content-disposition",
        "content-location",
        "content-security-policy",
        "cache-control",
        "expires",
        "last-modified",
        "etag",
        "vary",
        "link",
        "location",
        "content-encoding",
        "allow",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-expose-headers",
        "x-frame-options",
        "x-content-type-options",
        "strict-transport-security",
        "referrer-policy",
        "cross-origin-opener-policy",
        "permissions-policy",
    }
)
"""The response headers a cached page keeps (others are dropped: ``Set-Cookie`` never gets
this far, and per-response headers such as ``Date`` are the server's to add)."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What page caching needs of a request, as the adapter read it from its framework."""

    method: str
    host: str
    path: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]
    """Request headers by lower-case name."""
    user: str | None = None
    """Who is asking: ``None`` for an anonymous client without a session."""
    scheme: str = "http"
    variant: str = ""
    """Anything else the framework renders by that no header names (the active language)."""


@dataclass(frozen=True, slots=True)
class Page:
    """A response as stored: status, allow-listed headers, body (and its ETag).

    ``complete``: ``headers`` are already those a hit sends, the ``ETag`` and the
    ``Content-Length`` included (pages made by ``PagePolicy.page_of``), so that a hit sends
    them as they are instead of working them out again on every request."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    etag: str = field(default="")
    complete: bool = False
    varies: tuple[str, ...] | None = None
    """:attr:`vary`, worked out when the page was made (read on every hit)."""

    @property
    def vary(self) -> tuple[str, ...]:
        """The request headers this response varies on (lower case, sorted)."""
        return vary_of(self.headers) if self.varies is None else self.varies

    def record(self) -> tuple[Any, ...]:
        """The stored form: builtins only (a pickled dataclass costs more to load)."""
        return (self.status, self.headers, self.body, self.etag, self.complete, self.varies)

    @classmethod
    def from_record(cls, record: Any) -> Page:
        if isinstance(record, Page):
            return record
        status, headers, body, etag, *made = record
        if type(headers) is not tuple or (headers and type(headers[0]) is not tuple):
            headers = tuple(tuple(pair) for pair in headers)  # JSON gives lists
        if len(made) == 2:
            complete, varies = made
            return cls(
                status, headers, body, etag, complete, None if varies is None else tuple(varies)
            )
        return cls(status, headers, body, etag)


class Uncacheable(Exception):
    """Raised by a render function whose response may not be shared; carries it."""

    def __init__(self, response: Any) -> None:
        super().__init__("the response may not be cached")
        self.response = response


class EnvironHeaders(Mapping[str, str]):
    """Request headers by lower-case name, read from a WSGI environ (or Django's ``META``,
    which has the same form) when asked: a hit needs two or three of them, and copying them
    all, or a framework's lookup that raises for every absent one, costs more than the rest
    of the lookup."""

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    @staticmethod
    def _key(name: str) -> str:
        upper = name.upper().replace("-", "_")
        return upper if upper in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + upper

    def __getitem__(self, name: str) -> str:
        return str(self._environ[self._key(name)])

    def get(self, name: str, default: Any = None) -> Any:
        value = self._environ.get(self._key(name))
        return default if value is None else str(value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._environ

    def __iter__(self) -> Iterator[str]:
        for key in self._environ:
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").lower()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                yield key.replace("_", "-").lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)


def cookie_names(raw: Any, where: str) -> tuple[str, ...]:
    """A setting listing cookie names, checked; raises
    :class:`~cacheplug.ConfigurationError`."""
    if isinstance(raw, str) or not isinstance(raw, list | tuple):
        raise ConfigurationError(f"{where} must be a list of cookie names, not {raw!r}")
    if not all(isinstance(name, str) and name for name in raw):
        raise ConfigurationError(f"{where} must hold cookie names (non-empty strings)")
    return tuple(raw)


def private_user(cookies: Mapping[str, str], names: Sequence[str], per_user: bool) -> str | None:
    """The :attr:`PageRequest.user` of a request carrying one of the cookies ``names`` (a
    login token, a "remember me": whoever it names, the page is theirs): keyed by the cookie
    when caching per user, else one that is never shared. ``None`` without such a cookie."""
    for name in names:
        value = cookies.get(name)
        if value:
            return f"cookie:{name}={value}" if per_user else "private"
    return None


def vary_of(headers: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    names: set[str] = set()
    for name, value in headers:
        if name.lower() == "vary":
            names.update(part.strip().lower() for part in value.split(",") if part.strip())
    return tuple(sorted(names))


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def current_thread() -> object:
    """Who is rendering on a sync path: the thread. A page rendered by a background refresh
    (``stale_ttl``) is not the rendering of the request that started it: that request was
    served the stale page, and the refreshed one is the next request's. A sync read refreshes
    on a pool thread, so the thread tells them apart (and costs a tenth of asking asyncio,
    which raises where no loop runs)."""
    return _thread_key()


def current_task() -> object:
    """Who is rendering on an async path: the asyncio task (an async read refreshes in another
    task of the same loop), or the thread outside any task."""
    task = asyncio.current_task()
    return task if task is not None else _thread_key()


def _thread_key() -> object:
    key = getattr(_threads, "key", None)
    if key is None:
        key = _threads.key = object()
    return key


_threads = threading.local()
