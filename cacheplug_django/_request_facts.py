"""What page caching reads of every request, kept between requests where Django would work
it out again each time: the validated host (``get_host()`` checks ``ALLOWED_HOSTS`` on every
call, which was the largest part of a cached page's hit) and two settings. Forgotten when a
setting it depends on changes."""

from __future__ import annotations

from typing import Final

from django.conf import settings
from django.http import HttpRequest

_MAX_HOSTS: Final = 1024
_HOST_SETTINGS: Final = frozenset(
    {"ALLOWED_HOSTS", "USE_X_FORWARDED_HOST", "USE_X_FORWARDED_PORT", "DEBUG"}
)
_SETTINGS: Final = _HOST_SETTINGS | {"SESSION_COOKIE_NAME", "USE_I18N"}

_hosts: dict[tuple[object, ...], str] = {}
_settings: dict[str, object] = {}


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


def forget(setting: str) -> None:
    """Called on ``setting_changed``."""
    if setting in _SETTINGS:
        _hosts.clear()
        _settings.clear()
