"""The parity suite's fixtures: ``site``, the same small site on each adapter (Django through
its test client, Flask through its test client), both on the session's redis-server, behind
one interface, so that each case of the table runs unchanged on both.

Time stands still in these tests (``time.time`` is a :class:`~cacheplug.testing.FakeClock`
that a case moves on): entries expire when a case says so, never because a test was slow."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import parity_django
import parity_flask
import pytest
from parity_site import DjangoBrowser, FlaskBrowser, Site

from cacheplug.testing import FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """``time.time`` stands still from now on, until the test moves it."""
    fake = FakeClock(start=time.time())
    monkeypatch.setattr(time, "time", fake.time)
    return fake


@pytest.fixture(params=["django", "flask"])
def site(request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path) -> Iterator[Site]:
    """The parity site on each adapter in turn (a fresh cache namespace on the session's
    redis-server each time)."""
    redis_url = request.getfixturevalue("redis_url")
    if request.param == "django":
        yield from _django_site(request, clock, redis_url)
    else:
        yield from _flask_site(clock, redis_url, tmp_path)


def _django_site(
    request: pytest.FixtureRequest, clock: FakeClock, redis_url: str
) -> Iterator[Site]:
    settings = request.getfixturevalue("settings")
    from cacheplug_django import cache, cache_view

    settings.ROOT_URLCONF = "parity_django"
    settings.CACHEPLUG = {"NAMESPACE": "parity", "STORE": redis_url}
    parity_django.renders.clear()
    for pattern in parity_django.urlpatterns:
        policy = getattr(pattern.callback, "page_policy", None)
        if policy is not None:
            policy.forget()  # as a fresh process (the Flask site is made anew each test)
    try:
        yield Site("django", parity_django.renders, DjangoBrowser, clock, cache_view)
    finally:
        cache.reset()


def _flask_site(clock: FakeClock, redis_url: str, tmp_path: Path) -> Iterator[Site]:
    parity_flask.renders.clear()
    app = parity_flask.create_app(redis_url, f"sqlite:///{tmp_path / 'parity.sqlite3'}")
    try:
        yield Site(
            "flask",
            parity_flask.renders,
            lambda: FlaskBrowser(app),
            clock,
            parity_flask.cache.cached_view,
        )
    finally:
        parity_flask.cache.close(app)
