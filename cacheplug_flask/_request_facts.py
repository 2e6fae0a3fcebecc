"""What rendering a page or a fragment read of the client, collected from Flask's own records
for the core's rule (``cacheplug.integration.unshared_reason``): the session's ``accessed`` flag,
the flashed messages taken, Flask-Login's user worked out, a CSRF token made (Flask-WTF keeps
it in ``g``), the client's cookies read, and the credentials the request carries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from flask import g, has_request_context, request
from flask.globals import request_ctx

from cacheplug.integration import ClientReads, CookieReads, private_user

T = TypeVar("T")
_LOGIN_USER: Final = "_login_user"  # where Flask-Login keeps the user it worked out
_CSRF_TOKEN: Final = "csrf_token"  # where Flask-WTF keeps the token it made (g.csrf_token)


class ReadWatch:
    """What the current request reads of its client from now until :meth:`stop`.

    The session's ``accessed`` flag is cleared when the watch starts and put back, when it
    stops, to what it was or became: the watch sees the reads made while it ran (a fragment's,
    say) and Flask still sees every read. What was worked out before and cannot be watched (a
    logged-in user, flashed messages taken) counts as read when it holds the client's state."""

    def __init__(self, private_cookies: Sequence[str] = ()) -> None:
        ctx = request_ctx._get_current_object()  # type: ignore[attr-defined]
        self._ctx = ctx
        self._private_cookies = private_cookies
        self._session = _session_of(ctx)
        self._accessed = bool(getattr(self._session, "accessed", False))
        if self._session is not None and hasattr(self._session, "accessed"):
            self._session.accessed = False
        self._flashes = ctx.flashes
        self._user_known = _LOGIN_USER in g
        self._csrf = _CSRF_TOKEN in g
        req = ctx.request
        session_cookie = ctx.app.config.get("SESSION_COOKIE_NAME", "session")
        self._cookies = CookieReads(req.cookies, (session_cookie, *private_cookies))
        req.cookies = self._cookies

    def stop(self, response: Any = None) -> ClientReads:
        """The reads made while the watch ran (and ``response``'s cookies)."""
        ctx = self._ctx
        session = _session_of(ctx)
        session_read = bool(getattr(session, "accessed", False))
        if session is self._session and hasattr(session, "accessed"):
            session.accessed = self._accessed or session_read
        flashes = ctx.flashes
        messages = bool(self._flashes) or (self._flashes is None and flashes is not None)
        user = g.get(_LOGIN_USER)
        user_read = (_LOGIN_USER in g and not self._user_known) or bool(
            getattr(user, "is_authenticated", False)
        )
        req = ctx.request
        if req.__dict__.get("cookies") is self._cookies:
            req.cookies = self._cookies.original
        return ClientReads(
            session=session_read,
            messages=messages,
            user=user_read,
            csrf_token=_CSRF_TOKEN in g and not self._csrf,
            cookie_read=self._cookies.read,
            identity_cookie_read=self._cookies.identity_read,
            cookie_set=response is not None and "Set-Cookie" in response.headers,
            credentials=carries_credentials(self._private_cookies),
        )


def csrf_token() -> str | None:
    """The CSRF token made for this request so far (Flask-WTF's ``g.csrf_token``), if any;
    ``None`` outside a request or before one is made."""
    if not has_request_context():
        return None
    token = g.get(_CSRF_TOKEN)
    return token if isinstance(token, str) and token else None


def signed_in() -> bool:
    """True when Flask-Login already worked out this request's user and it is logged in."""
    if not has_request_context():
        return False
    return bool(getattr(g.get(_LOGIN_USER), "is_authenticated", False))


def in_request(render: Callable[[], T]) -> Callable[[], T]:
    """``render`` run in the current request's context wherever it runs: a background
    refresh (``stale_ttl``) renders on another thread, which has no request of its own.
    Outside a request, ``render`` itself."""
    if not has_request_context():
        return render
    ctx = request_ctx._get_current_object()  # type: ignore[attr-defined]

    def run() -> T:
        if has_request_context():
            return render()
        with ctx.copy():
            return render()

    return run


def _session_of(ctx: Any) -> Any:
    # Not through ``ctx.session``: since Flask 3.1.3 that property is itself a read (it sets
    # ``accessed``); before, it was a plain attribute.
    found = vars(ctx)
    return found["_session"] if "_session" in found else found.get("session")


def carries_credentials(private_cookies: Sequence[str]) -> bool:
    """True when the current request names somebody by itself: an ``Authorization`` header,
    or one of the private cookies (Flask-Login's "remember me")."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    environ = req.environ
    if "HTTP_AUTHORIZATION" in environ:
        return True
    if not private_cookies or "HTTP_COOKIE" not in environ:
        return False
    cookies = req.cookies
    if isinstance(cookies, CookieReads):
        cookies = cookies.original
    return private_user(cookies, private_cookies, False) is not None
