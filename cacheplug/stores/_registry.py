"""The store registry: a URL's scheme names the store, and the store's module is imported
only when that scheme is chosen (as dogpile.cache registers its backends), so ``redis`` is
imported by the Redis stores alone.

A store is named in one of three ways, all accepted by :func:`resolve_store` (and so by
``Cache(store=...)`` and the adapters' ``STORE`` setting):

- a URL, ``redis://127.0.0.1:6379/0``: its scheme picks a registered store, whose
  ``from_url(url)`` builds it;
- a dotted path, ``package.module:Name``: ``Name`` is a :class:`Store` subclass or a
  factory, called with no arguments, that returns a store;
- a :class:`Store` instance, used as it is.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Final

from cacheplug._redact import redact
from cacheplug.exceptions import ConfigurationError
from cacheplug.stores.base import Store

_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.\-]*")
_DOTTED_PATH: Final = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")

_by_scheme: dict[str, str] = {
    "memory": "cacheplug.stores.memory:MemoryStore",
    "null": "cacheplug.stores.null:NullStore",
    "redis": "cacheplug.stores.redis:RedisStore",
    "rediss": "cacheplug.stores.redis:RedisStore",
    "unix": "cacheplug.stores.redis:RedisStore",
    "redis+sentinel": "cacheplug.stores.redis:RedisStore",
    "redis+cluster": "cacheplug.stores.redis:RedisClusterStore",
}
# The optional dependency behind a built-in store, named in the error when it is missing.
_EXTRA_FOR_PACKAGE: Final = {"cacheplug.stores.redis": "redis"}


def register_store(scheme: str, path: str) -> None:
    """Make URLs with ``scheme`` build the store that ``path`` names.

    ``path`` is ``"package.module:Name"``; it is imported the first time a URL with this
    scheme is used, not now. ``Name`` is a store class with a ``from_url(url)`` classmethod,
    or a callable taking the URL and returning a :class:`Store`. Registering a scheme again
    replaces the earlier store (a built-in one too)::

        register_store("dynamo", "mypackage.stores:DynamoStore")
        Cache("dynamo://table-name")
    """
    if not isinstance(scheme, str) or not _SCHEME.fullmatch(scheme):
        raise ConfigurationError(
            f"a store URL scheme is lowercase letters, digits, '+', '-' or '.', starting "
            f"with a letter (like 'redis+cluster'), not {scheme!r}"
        )
    if not isinstance(path, str) or not _DOTTED_PATH.fullmatch(path):
        raise ConfigurationError(
            f"register_store({scheme!r}, ...) needs a path like 'package.module:Name', not {path!r}"
        )
    _by_scheme[scheme] = path


def store_from_url(url: str) -> Store:
    """The store a URL names, by its scheme: ``memory://``, ``redis://``, ``rediss://``,
    ``unix://``, ``redis+sentinel://``, ``redis+cluster://``, ``null://`` and every scheme
    added with :func:`register_store`."""
    if not isinstance(url, str) or "://" not in url:
        shown = redact(url) if isinstance(url, str) else f"a {type(url).__name__}"
        raise ConfigurationError(
            f"a store URL looks like 'redis://127.0.0.1:6379/0', not {shown!r}"
        )
    scheme = url.split("://", 1)[0].lower()
    path = _by_scheme.get(scheme)
    if path is None:
        known = ", ".join(f"{name}://" for name in sorted(_by_scheme))
        raise ConfigurationError(
            f"unknown store URL scheme in {redact(url)!r}; use one of: {known} "
            f"(or add one with cacheplug.register_store)"
        )
    target = import_path(path)
    build = getattr(target, "from_url", target)
    if not callable(build):
        raise ConfigurationError(
            f"the store registered for {scheme}:// ({path}) has no from_url and cannot be called"
        )
    return _checked(build(url), f"the store registered for {scheme}:// ({path})")


def resolve_store(spec: Store | str) -> Store:
    """The store ``spec`` names: a :class:`Store` instance (returned as it is), a URL
    (see :func:`store_from_url`) or a dotted path ``"package.module:Name"`` whose ``Name``
    is a store class or a factory, called with no arguments.

    Raises :class:`~cacheplug.ConfigurationError` saying what was wrong and what is
    accepted.
    """
    if isinstance(spec, Store):
        return spec
    if not isinstance(spec, str):
        raise ConfigurationError(
            "a store is a URL ('redis://127.0.0.1:6379/0'), a dotted path ('package.module:Name') "
            f"or a Store instance, not a value of type {type(spec).__name__}"
        )
    if "://" in spec:
        return store_from_url(spec)
    if not _DOTTED_PATH.fullmatch(spec):
        raise ConfigurationError(
            "a store is a URL ('redis://127.0.0.1:6379/0'), a dotted path "
            f"('package.module:Name') or a Store instance, not {redact(spec)!r}"
        )
    target = import_path(spec)
    if not callable(target):
        raise ConfigurationError(f"{spec} is not a store class nor a factory of stores")
    return _checked(target(), spec)


def import_path(path: str) -> Any:
    """What ``"package.module:Name"`` names, imported now; a ConfigurationError if it cannot be."""
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = next(
            (
                extra
                for package, extra in _EXTRA_FOR_PACKAGE.items()
                if module_name == package or module_name.startswith(package + ".")
            ),
            None,
        )
        if extra is not None and exc.name != module_name:
            raise ConfigurationError(
                f"{module_name} needs a package that is not installed ({exc.name}); "
                f"install it with: pip install 'cacheplug[{extra}]'"
            ) from exc
        raise ConfigurationError(
            f"cannot import {module_name} (for the store {path}): {exc}"
        ) from exc
    target = module
    for name in attribute.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise ConfigurationError(
                f"{module_name} has no {attribute} (for the store {path})"
            ) from None
    return target


def _checked(store: object, origin: str) -> Store:
    if not isinstance(store, Store):
        raise ConfigurationError(
            f"{origin} gave a value of type {type(store).__name__}, not a cacheplug.stores.Store"
        )
    return store
