"""The pytest plugin: ``cacheplug_isolated``, ``cacheplug_disabled``, ``cacheplug_calls``.

Installed with cacheplug (entry point ``pytest11``), so the fixtures are there in any test
suite; nothing happens unless a test asks for one. They act on the caches that the fixture
``cacheplug_cache`` returns:

- in a Django project that has ``cacheplug_django`` in ``INSTALLED_APPS`` (pytest-django
  set up), ``cacheplug_django.cache`` by default;
- anywhere else, whatever a ``cacheplug_cache`` fixture in the project's ``conftest.py``
  returns: a :class:`cacheplug.Cache` (a Flask app's ``CachePlug(...).cache``, inside its app
  context), an adapter's cache (``cacheplug_django.cache``), or a list of them.

See ``docs/testing.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from cacheplug.testing.calls import CallCounts, count_calls

if TYPE_CHECKING:
    from cacheplug.cache import Cache

_HINT = (
    "tell cacheplug's pytest plugin which cache your code uses: define a fixture "
    "'cacheplug_cache' in conftest.py that returns it (a cacheplug.Cache, a Flask app's "
    "CachePlug(...).cache inside app.app_context(), or a list of them); in a Django project "
    "it is found by itself once 'cacheplug_django' is in INSTALLED_APPS and pytest-django is "
    "set up (see docs/testing.md)"
)


@pytest.fixture
def cacheplug_cache() -> Any:
    """The cache (or list of caches) the ``cacheplug_*`` fixtures act on; override it in
    ``conftest.py`` outside Django."""
    found = _django_cache()
    if found is None:
        pytest.fail(f"no cacheplug cache to act on: {_HINT}", pytrace=False)
    return found


@pytest.fixture
def cacheplug_isolated(cacheplug_cache: Any) -> Iterator[Any]:
    """For this test, the caches keep their keys in a fresh namespace of their own (nothing
    written before is seen, nothing written now is seen after); gives ``cacheplug_cache``."""
    with ExitStack() as stack:
        for cache in core_caches(cacheplug_cache):
            stack.enter_context(cache.isolated())
        yield cacheplug_cache


@pytest.fixture
def cacheplug_disabled(cacheplug_cache: Any) -> Iterator[Any]:
    """For this test, every read misses and nothing is stored: loaders always run;
    invalidations are harmless. Gives ``cacheplug_cache``."""
    with ExitStack() as stack:
        for cache in core_caches(cacheplug_cache):
            stack.enter_context(cache.disabled())
        yield cacheplug_cache


@pytest.fixture
def cacheplug_calls(
    cacheplug_cache: Any,
) -> Callable[..., AbstractContextManager[CallCounts]]:
    """``with cacheplug_calls() as calls: ...`` counts the hits, misses and loads of the
    block (:class:`cacheplug.testing.CallCounts`) of ``cacheplug_cache``'s caches, or of
    the caches given: ``cacheplug_calls(other_cache)``."""

    def counting(*caches: Any) -> AbstractContextManager[CallCounts]:
        # Resolved when the block starts: a cache rebuilt since (a Django setting changed)
        # is the one counted.
        return count_calls(*core_caches(list(caches) if caches else cacheplug_cache))

    return counting


def core_caches(given: Any) -> list[Cache]:
    """The :class:`cacheplug.Cache` objects behind what ``cacheplug_cache`` returned."""
    from cacheplug.cache import Cache

    if isinstance(given, Cache):
        return [given]
    if isinstance(given, Iterable) and not isinstance(given, str | bytes):
        return [cache for item in given for cache in core_caches(item)]
    try:
        # An adapter's cache (cacheplug.integration.TaggedCache): ``core`` is the Cache of
        # the current app (Flask: it needs the app's context).
        core = given.core
    except AttributeError:
        pass
    except RuntimeError as exc:
        pytest.fail(
            f"cacheplug_cache gave {given!r}, whose cache is unknown here: {exc}; {_HINT}",
            pytrace=False,
        )
    else:
        if isinstance(core, Cache):
            return [core]
    pytest.fail(f"cacheplug_cache gave {given!r}, which is not a cache: {_HINT}", pytrace=False)


def _django_cache() -> Any:
    """``cacheplug_django.cache`` when this process runs Django with ``cacheplug_django``
    installed, else None.

    Only modules the project has already imported are looked at: the core never imports an
    adapter or a framework (Django's app registry imports every installed app when it is set
    up, so an installed ``cacheplug_django`` is loaded by then)."""
    adapter = sys.modules.get("cacheplug_django")
    django_apps = sys.modules.get("django.apps")
    if adapter is None or django_apps is None:
        return None
    registry = django_apps.apps
    if not registry.ready or not registry.is_installed("cacheplug_django"):
        return None
    return adapter.cache
