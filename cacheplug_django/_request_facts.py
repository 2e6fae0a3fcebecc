"""What page and fragment caching read of every request.

- Kept between requests where Django would work it out again each time: the validated host
  (``get_host()`` checks ``ALLOWED_HOSTS`` on every call, which was the largest part of a
  cached page's hit) and two settings. Forgotten when a setting it depends on changes.
- :class:`ReadWatch`: what rendering a page or a fragment read of the client, collected from
  Django's own records (the session's ``accessed``, the message storage's ``used``, a lazy
  ``request.user`` evaluated, the CSRF token's flag, the cookies) for the core's rule
  (``cacheplug.integration.unshared_reason``).
"""

from __future__ import annotations

from typing import Any, Final

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import LazyObject, empty

from cacheplug.integration import ClientReads, CookieReads, private_user

_MAX_HOSTS: Final = 1024
_HOST_SETTINGS: Final = frozenset(
    {"ALLOWED_HOSTS", "USE_X_FORWARDED_HOST", "USE_X_FORWARDED_PORT", "DEBUG"}
)
_SETTINGS: Final = _HOST_SETTINGS | {"SESSION_COOKIE_NAME", "USE_I18N"}

_hosts: dict[tuple[object, ...], str] = {}
_settings: dict[str, object] = {}
_generation = [0]


def validated_host(request: HttpRequest, scheme: str) -> str:
    """``request.get_host()``: the same answer, and the same ``DisallowedHost`` for a host
    that is not allowed (which is never remembered). ``scheme``: ``request.scheme``."""
    meta = request.META
    # Everything get_host() reads of the request (the scheme decides the default port).
    raw = (
        meta.get("HTTP_HOST"),
        meta.get("HTTP_X_FORWARDED_HOST"),
        meta.get("SERVER_NAME"),
        meta.get("SERVER_PORT"),
        meta.get("HTTP_X_FORWARDED_PORT"),
        scheme,
    )
    host = _hosts.get(raw)
    if host is None:
        host = request.get_host()
        if len(_hosts) >= _MAX_HOSTS:
            _hosts.clear()  # a wildcard ALLOWED_HOSTS lets clients name any number of hosts
        _hosts[raw] = host
    return host


def session_cookie_name() -> str:
    name = _settings.get("SESSION_COOKIE_NAME")
    if name is None:
        name = _settings["SESSION_COOKIE_NAME"] = settings.SESSION_COOKIE_NAME
    return str(name)


def use_i18n() -> bool:
    value = _settings.get("USE_I18N")
    if value is None:
        value = _settings["USE_I18N"] = bool(settings.USE_I18N)
    return bool(value)


def private_cookie_names() -> tuple[str, ...]:
    """``CACHEPLUG["PRIVATE_COOKIES"]``."""
    from cacheplug_django._state import settings as cacheplug_settings

    return cacheplug_settings.get().private_cookies


def settings_generation() -> int:
    """Moves on with every setting changed (tests change them; a running site does not):
    what was worked out from settings before is not looked up again."""
    return _generation[0]


def forget(setting: str) -> None:
    """Called on ``setting_changed``."""
    _generation[0] += 1
    if setting in _SETTINGS:
        _hosts.clear()
        _settings.clear()


_CSRF_FLAG: Final = "CSRF_COOKIE_NEEDS_UPDATE"


class ReadWatch:
    """What the request reads of its client from now until :meth:`stop`.

    Django's records of a read are sticky flags; the watch clears them when it starts and puts
    back, when it stops, what they were or became, so that the watch sees the reads made while
    it ran (a fragment's, say) and everything else still sees every read. What was worked out
    before it started and cannot be watched (an evaluated user, loaded messages) counts as read
    when it holds the client's state (a logged-in user, messages waiting)."""

    def __init__(self, request: HttpRequest, *, cookies: bool = True) -> None:
        self.request = request
        found = request.__dict__
        self._session: Any = found.get("session")
        self._session_accessed = False
        if self._session is not None:
            self._session_accessed = bool(getattr(self._session, "accessed", False))
            self._session.accessed = False
        self._storage: Any = found.get("_messages")
        self._storage_state: tuple[bool, bool, bool] = (False, False, False)
        self._storage_loaded = False
        if self._storage is not None:
            storage = self._storage
            loaded = "_loaded_data" in vars(storage)
            self._storage_state = (
                bool(getattr(storage, "used", False)),
                bool(getattr(storage, "added_new", False)),
                loaded and bool(vars(storage)["_loaded_data"]),
            )
            storage.used = False
            self._storage_loaded = loaded
        self._user_before = _user_state(request)
        self._csrf = request.META.pop(_CSRF_FLAG, None)
        self._cookies: CookieReads | None = None
        if cookies:
            self.track_cookies()

    def track_cookies(self) -> None:
        """Start noticing reads of the client's cookies (from now on)."""
        if self._cookies is None:
            identity = (session_cookie_name(), *private_cookie_names())
            self._cookies = CookieReads(self.request.COOKIES, identity)
            self.request.COOKIES = self._cookies  # type: ignore[assignment]

    def stop(self, response: HttpResponseBase | None = None) -> ClientReads:
        """The reads made while the watch ran (and ``response``'s cookies); Django's flags are
        left as they would be without the watch."""
        request = self.request
        found = request.__dict__
        session: Any = found.get("session")
        session_read = bool(getattr(session, "accessed", False))
        if session is not None and session is self._session:
            session.accessed = self._session_accessed or session_read
        storage: Any = found.get("_messages")
        messages = False
        if storage is not None:
            used = bool(getattr(storage, "used", False))
            added = bool(getattr(storage, "added_new", False))
            loaded = "_loaded_data" in vars(storage)
            if storage is self._storage:
                used_before, added_before, waiting_before = self._storage_state
                messages = (
                    used
                    or (added and not added_before)
                    or (loaded and not self._storage_loaded)
                    or waiting_before
                )
                storage.used = used_before or used
            else:
                messages = used or added or loaded
        user_after = _user_state(request)
        user = user_after == "somebody" or (
            user_after != "unknown" and self._user_before == "unknown"
        )
        csrf_used = bool(request.META.get(_CSRF_FLAG))
        if self._csrf is not None or csrf_used:
            request.META[_CSRF_FLAG] = self._csrf or csrf_used
        cookie_read = identity_cookie_read = False
        tracker = self._cookies
        if tracker is not None:
            cookie_read = tracker.read
            identity_cookie_read = tracker.identity_read
            original: Any = tracker.original
            if found.get("COOKIES") is tracker:
                request.COOKIES = original
            self._cookies = None
        return ClientReads(
            session=session_read,
            messages=messages,
            user=user,
            csrf_token=csrf_used,
            cookie_read=cookie_read,
            identity_cookie_read=identity_cookie_read,
            cookie_set=bool(response is not None and response.cookies),
            credentials=carries_credentials(request),
        )


def signed_in(request: HttpRequest) -> bool:
    """True when something already worked out the request's user and it is logged in
    (never works it out itself: that would read the session)."""
    return _user_state(request) == "somebody"


def _user_state(request: HttpRequest) -> str:
    """``"unknown"`` (nobody worked out who is asking yet), ``"somebody"`` (a logged-in user)
    or ``"anonymous"``."""
    found = request.__dict__
    user = found.get("user")
    if user is None:
        user = found.get("_acached_user", found.get("_cached_user"))
        if user is None:
            return "unknown"
    elif isinstance(user, LazyObject) and user._wrapped is empty:
        cached = found.get("_acached_user", found.get("_cached_user"))
        if cached is None:
            return "unknown"
        user = cached
    return "somebody" if getattr(user, "is_authenticated", False) else "anonymous"


def carries_credentials(request: HttpRequest) -> bool:
    """True when the request names somebody by itself: an ``Authorization`` header, or one of
    ``CACHEPLUG["PRIVATE_COOKIES"]``."""
    meta = request.META
    if "HTTP_AUTHORIZATION" in meta:
        return True
    if not meta.get("HTTP_COOKIE"):
        return False
    cookies: Any = request.COOKIES
    if isinstance(cookies, CookieReads):
        cookies = cookies.original
    return private_user(cookies, private_cookie_names(), False) is not None
