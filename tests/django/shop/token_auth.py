"""Authentication by a ``token`` cookie naming the user, not by the session: what custom
authentication middleware looks like (eager, or lazy as Django's own)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import SimpleLazyObject


def _user(request: HttpRequest) -> User | AnonymousUser:
    name = request.COOKIES.get("token")
    found = User.objects.filter(username=name).first() if name else None
    return found or AnonymousUser()


class EagerTokenMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request.user = _user(request)
        return self.get_response(request)


class LazyTokenMiddleware(EagerTokenMiddleware):
    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request.user = SimpleLazyObject(lambda: _user(request))  # type: ignore[assignment]
        return self.get_response(request)
