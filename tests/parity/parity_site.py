"""What the parity cases see of a site: :class:`Site` (one adapter's site) and its clients
(:class:`Browser`), each reply as a :class:`Reply`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cacheplug.testing import FakeClock


@dataclass(frozen=True)
class Reply:
    """What a client got: the status, the headers by lower-case name, the body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


class Browser(Protocol):
    """One client, with its own cookies."""

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply: ...
    def head(self, path: str, headers: dict[str, str] | None = None) -> Reply: ...
    def login(self, name: str) -> None:
        """Log in as ``name`` (the session holds ``name`` too)."""


@dataclass
class Site:
    adapter: str
    renders: Counter[str]
    browser: Callable[[], Browser]
    clock: FakeClock
    decorator: Callable[..., Any]
    """The adapter's page decorator: ``cache_view`` or the extension's ``cached_view``."""


def _reply(status: int, headers: Any, body: bytes) -> Reply:
    return Reply(status, {name.lower(): value for name, value in headers}, body)


class DjangoBrowser:
    def __init__(self) -> None:
        from django.test import Client

        self.client = Client()

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        response = self.client.get(path, headers=headers or {})
        return _reply(response.status_code, response.items(), response.content)

    def head(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        response = self.client.head(path, headers=headers or {})
        return _reply(response.status_code, response.items(), response.content)

    def login(self, name: str) -> None:
        assert self.client.post(f"/login/{name}/").status_code == 200


class FlaskBrowser:
    def __init__(self, app: Any) -> None:
        self.client = app.test_client()

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        response = self.client.get(path, headers=headers or {})
        return _reply(response.status_code, response.headers.items(), response.get_data())

    def head(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        response = self.client.head(path, headers=headers or {})
        return _reply(response.status_code, response.headers.items(), response.get_data())

    def login(self, name: str) -> None:
        assert self.client.post(f"/login/{name}/").status_code == 200
