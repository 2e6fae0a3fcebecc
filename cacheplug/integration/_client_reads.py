"""Shared pages and fragments never carry one client's state: the one rule both adapters
apply before they store a page or a template fragment.

A response or fragment is stored for everybody only if producing it read nothing of the
client it was made for. The adapters know their framework and collect the facts
(:class:`ClientReads`: was the session accessed, were flash messages read, the current user
worked out, a CSRF token used, a cookie read or set, credentials sent); :func:`unshared_reason`
decides, here, for both. The facts are taken where the response is final (after every
middleware inside the cache has run), or, when the component that stores cannot see that far,
from the framework's own record of the reads (a session's ``accessed`` flag, a message
storage's ``used`` flag, a lazy user that was evaluated), which is set whoever read.

:class:`CookieReads` is what the adapters put in place of a request's cookies while a page or
fragment renders, to learn which of those the client sent it read. The adapter names the
cookies that identify the client (the session's, a login token's): a page keyed by its client
may read those, as it may read the session, and no other.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ClientReads:
    """What producing a response (or a fragment) read of the client it was made for, as the
    adapter collected it from its framework. Each field is true when that happened."""

    session: bool = False
    """The session was read or written (Django ``session.accessed``, Flask ``accessed``)."""
    messages: bool = False
    """Flash messages were read (or queued) for this client."""
    user: bool = False
    """The current user was worked out (a lazy ``request.user``, Flask-Login's user)."""
    csrf_token: bool = False
    """A CSRF token was used: it is this client's."""
    cookie_read: bool = False
    """A cookie the client sent was read, other than those counted in
    :attr:`identity_cookie_read`."""
    identity_cookie_read: bool = False
    """A cookie that identifies the client (the session's, a private cookie), sent with a
    value, was read: a per-user page's key already names whoever it identifies, and
    middleware looks for the session's on the way out, inside a page cache above it."""
    cookie_set: bool = False
    """A cookie is set on the response (the session's, a message cookie's, any)."""
    credentials: bool = False
    """The request carries credentials: an ``Authorization`` header, or a private cookie
    (a "remember me" token) that names somebody."""

    def __or__(self, other: ClientReads) -> ClientReads:
        return ClientReads(*(getattr(self, f.name) or getattr(other, f.name) for f in _FIELDS))


_FIELDS = fields(ClientReads)
NOTHING_READ = ClientReads()

# What a per-user page's key stands for: cacheplug worked out who is asking (a user, a session,
# or nobody) before rendering, and keyed the page by it.
_KEYED_BY_CLIENT = frozenset({"session", "user", "identity_cookie_read", "credentials"})
_WHY = {
    "session": "the session was accessed",
    "messages": "flash messages were read",
    "user": "the current user was looked up",
    "csrf_token": "a CSRF token was used",
    "cookie_read": "a cookie the client sent was read",
    "identity_cookie_read": "a cookie that identifies the client was read",
    "cookie_set": "a cookie is set on the response",
    "credentials": "the request carries credentials",
}


def unshared_reason(reads: ClientReads, *, keyed_by_client: bool = False) -> str | None:
    """Why a page or fragment produced with ``reads`` must not be stored for others; ``None``
    when it may be. ``keyed_by_client``: the entry's key names who asked (a per-user page), so
    that the session, the user, the credentials and the cookies that identify the client are
    the key's own; flash messages (shown once), a CSRF token (bound to one browser) and any
    other cookie never are."""
    for f in _FIELDS:
        if getattr(reads, f.name) and not (keyed_by_client and f.name in _KEYED_BY_CLIENT):
            return _WHY[f.name]
    return None


class CookieReads(Mapping[str, Any]):
    """A request's cookies that remember which of those the client sent were read. A read of
    a cookie the client did not send is not counted: its answer is the same for everybody.
    ``identity``: the names of the cookies that identify the client (the session's, private
    cookies); a read of one sent with a value counts in :attr:`identity_read`, not in
    :attr:`read`. An empty one identifies nobody, so it counts as any other cookie."""

    __slots__ = ("_cookies", "_identity", "names")

    def __init__(self, cookies: Mapping[str, Any], identity: Collection[str] = ()) -> None:
        self._cookies = cookies
        self._identity = frozenset(identity)
        self.names: set[str] = set()  # of the cookies read, each one the client sent

    @property
    def original(self) -> Mapping[str, Any]:
        """The cookies this wraps (to put back)."""
        return self._cookies

    @property
    def read(self) -> bool:
        """A cookie the client sent was read, other than one that identifies the client."""
        return any(not self._identifies(name) for name in self.names)

    @property
    def identity_read(self) -> bool:
        """A cookie that identifies the client was read."""
        return any(self._identifies(name) for name in self.names)

    def _identifies(self, name: str) -> bool:
        return name in self._identity and bool(self._cookies.get(name))

    def __getitem__(self, name: str) -> Any:
        value = self._cookies[name]
        self.names.add(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        if name in self._cookies:
            self.names.add(name)
            return self._cookies[name]
        return default

    def __contains__(self, name: object) -> bool:
        found = name in self._cookies
        if found and isinstance(name, str):
            self.names.add(name)
        return found

    def __iter__(self) -> Iterator[str]:
        self.names.update(self._cookies)
        return iter(self._cookies)

    def __len__(self) -> int:
        return len(self._cookies)

    def __getattr__(self, name: str) -> Any:
        # The framework's own methods (Werkzeug's ``getlist``...): whatever they return may be
        # any cookie's value.
        self.names.update(self._cookies)
        return getattr(self._cookies, name)


class Watch(Protocol):
    """An adapter's watch of what the request reads of its client, started where it is made:
    ``stop`` gives the reads since (and those of ``response``, its cookies, when given)."""

    def stop(self, response: Any = None) -> ClientReads: ...


class Watched(Generic[T]):
    """What making a page or a fragment read of the client, for sync and async code alike::

        with Watched(watch) as made:
            response = made.keep(respond())
        page = policy.page_of(..., reads=made.reads)

    The watch stops when the block ends, even by an exception (the adapters' watches put the
    framework's records of reads back then), and is given what :meth:`keep` kept (a response,
    whose cookies count; nothing for a fragment, or when making it raised). Without a watch
    (``None``: no request to watch), nothing was read."""

    __slots__ = ("_kept", "_watch", "reads")

    def __init__(self, watch: Watch | None) -> None:
        self._watch = watch
        self._kept: T | None = None
        self.reads = NOTHING_READ

    def keep(self, made: T) -> T:
        """``made`` (returned), to be given to the watch when it stops."""
        self._kept = made
        return made

    def __enter__(self) -> Watched[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._watch is not None:
            self.reads = self._watch.stop(self._kept)
