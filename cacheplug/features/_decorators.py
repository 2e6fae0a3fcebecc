"""``@cache.cached``: caching a function's results under keys built from its arguments.

The wrapper is chosen once, at decoration time (sync or async), so a call does not branch on
the kind of function. Keys are built from the *bound* arguments, so ``f(1)``, ``f(x=1)`` and a
default of ``x=1`` share one entry.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import string
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, ParamSpec, TypeAlias, TypeVar, overload

from cacheplug._engine.protocol import CacheState
from cacheplug._types import DefaultType, Ttl

if TYPE_CHECKING:
    from cacheplug._engine.plans import XFetch

P = ParamSpec("P")
R = TypeVar("R")
KeySpec: TypeAlias = "str | Callable[..., str]"
TagSpec: TypeAlias = "str | Sequence[str] | Callable[..., Iterable[str]]"

_SIMPLE_TYPES = (str, int, float, bool, type(None), bytes)


class ReadOptions(NamedTuple):
    """The ``get_or_load`` options a decorated function reads with."""

    stale_ttl: float | DefaultType
    early: XFetch | DefaultType | None
    refresh_ahead: float | DefaultType | None


def _encode_argument(name: str, value: Any) -> str:
    if isinstance(value, _SIMPLE_TYPES):
        return repr(value)
    if isinstance(value, tuple | list):
        inner = ",".join(_encode_argument(name, v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, frozenset | set):
        return "{" + ",".join(sorted(_encode_argument(name, v) for v in value)) + "}"
    if isinstance(value, dict):
        pairs = sorted(
            f"{_encode_argument(name, k)}:{_encode_argument(name, v)}" for k, v in value.items()
        )
        return "{" + ",".join(pairs) + "}"
    raise TypeError(
        f"cannot build a default cache key from argument {name!r} of type "
        f"{type(value).__name__}: pass key='...{{{name}.id}}...' (a format string over the "
        "parameters) or key=callable to @cache.cached"
    )


class _KeyMaker:
    """Builds the user key for one call of the wrapped function."""

    __slots__ = ("_custom", "_prefix", "_signature", "_template")

    def __init__(self, fn: Callable[..., Any], key: KeySpec | None) -> None:
        self._signature = inspect.signature(fn)
        self._template: str | None = None
        self._custom: Callable[..., str] | None = None
        self._prefix = f"{fn.__module__}.{fn.__qualname__}"
        if isinstance(key, str):
            self._check_template(key)
            self._template = key
        elif callable(key):
            self._custom = key
        elif key is not None:
            raise TypeError("key must be a format string, a callable or None")

    def _check_template(self, template: str) -> None:
        names = set(self._signature.parameters)
        for _, field, _, _ in string.Formatter().parse(template):
            if field is None:
                continue
            base = field.split(".", 1)[0].split("[", 1)[0]
            if base not in names:
                raise ValueError(
                    f"key template {template!r} names {{{field}}}, but the function's "
                    f"parameters are: {', '.join(names) or '(none)'}"
                )

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if self._custom is not None:
            return self._custom(*args, **kwargs)
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        if self._template is not None:
            return self._template.format_map(bound.arguments)
        parts = ",".join(
            f"{name}={_encode_argument(name, value)}" for name, value in bound.arguments.items()
        )
        return f"{self._prefix}({parts})"


class _TagMaker:
    """Builds the tags of one call: format strings over the parameters, or a callable."""

    __slots__ = ("_custom", "_makers")

    def __init__(self, fn: Callable[..., Any], tags: TagSpec | None) -> None:
        self._custom: Callable[..., Iterable[str]] | None = None
        self._makers: tuple[_KeyMaker, ...] = ()
        if isinstance(tags, str):
            tags = (tags,)
        if callable(tags):
            self._custom = tags
        elif tags is not None:
            self._makers = tuple(_KeyMaker(fn, _template(tag)) for tag in tags)

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...] | None:
        if self._custom is not None:
            return tuple(self._custom(*args, **kwargs))
        if not self._makers:
            return None
        return tuple(make(args, kwargs) for make in self._makers)


def _template(tag: object) -> str:
    if not isinstance(tag, str):
        raise TypeError(f"tags must be format strings or a callable, not {type(tag).__name__}")
    return tag


class _BoundMethod:
    """A cached function looked up on an instance: the instance becomes the first argument."""

    __slots__ = ("_instance", "_wrapped")

    def __init__(self, wrapped: _Cached[Any, Any], instance: object) -> None:
        self._wrapped = wrapped
        self._instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._wrapped(self._instance, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._wrapped, name)
        if name in ("invalidate", "ainvalidate", "key_for"):
            return functools.partial(attribute, self._instance)
        return attribute


class _Cached(Generic[P, R]):
    """What the sync and async wrappers share: the key, invalidation, method binding."""

    def __init__(
        self,
        cache: CacheState,
        fn: Callable[P, Any],
        ttl: Ttl,
        key: KeySpec | None,
        options: ReadOptions,
        tags: TagSpec | None = None,
    ) -> None:
        self._cache = cache
        self._fn = fn
        self._ttl = ttl
        self._options = options
        self._make_key = _KeyMaker(fn, key)
        self._make_tags = _TagMaker(fn, tags)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        raise NotImplementedError  # pragma: no cover - the subclasses call the function

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return self if instance is None else _BoundMethod(self, instance)

    def _read(self, args: Any, kwargs: Any) -> tuple[str, Callable[[], Any], dict[str, Any]]:
        """What a call passes to ``get_or_load``: the key, the loader and the options."""
        stale_ttl, early, refresh_ahead = self._options
        options = {
            "tags": self._make_tags(args, kwargs),
            "stale_ttl": stale_ttl,
            "early": early,
            "refresh_ahead": refresh_ahead,
        }
        return self._make_key(args, kwargs), lambda: self._fn(*args, **kwargs), options

    def key_for(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The cache key a call with these arguments uses."""
        return self._make_key(args, kwargs)

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Drop the cached result for these arguments; True if there was one."""
        return self._cache.delete(self._make_key(args, kwargs))


class CachedFunction(_Cached[P, R]):
    """A sync function whose results are cached; call it as the original."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key, load, options = self._read(args, kwargs)
        return self._cache.get_or_load(key, load, self._ttl, **options)  # type: ignore[no-any-return]


class AsyncCachedFunction(_Cached[P, R]):
    """A coroutine function whose results are cached; await it as the original."""

    def __init__(
        self,
        cache: CacheState,
        fn: Callable[P, Coroutine[Any, Any, R]],
        ttl: Ttl,
        key: KeySpec | None,
        options: ReadOptions,
        tags: TagSpec | None = None,
    ) -> None:
        super().__init__(cache, fn, ttl, key, options, tags)
        _mark_coroutine_function(self)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key, load, options = self._read(args, kwargs)
        return await self._cache.aget_or_load(key, load, self._ttl, **options)

    async def ainvalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Drop the cached result for these arguments; True if there was one."""
        return await self._cache.adelete(self._make_key(args, kwargs))


class CacheDecorator:
    """What ``cache.cached(...)`` returns: applied to a function, it wraps it."""

    __slots__ = ("_cache", "_key", "_options", "_tags", "_ttl")

    def __init__(
        self,
        cache: CacheState,
        ttl: Ttl,
        key: KeySpec | None,
        options: ReadOptions,
        tags: TagSpec | None = None,
    ):
        self._cache = cache
        self._ttl = ttl
        self._key = key
        self._options = options
        self._tags = tags

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> AsyncCachedFunction[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> CachedFunction[P, R]: ...

    def __call__(
        self, fn: Callable[P, Any]
    ) -> CachedFunction[P, Any] | AsyncCachedFunction[P, Any]:
        if inspect.iscoroutinefunction(fn):
            return AsyncCachedFunction(
                self._cache, fn, self._ttl, self._key, self._options, self._tags
            )
        return CachedFunction(self._cache, fn, self._ttl, self._key, self._options, self._tags)


def _mark_coroutine_function(obj: object) -> None:
    """Mark ``obj`` as a coroutine function, as frameworks check to spot async views."""
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:  # Python 3.12+
        mark(obj)
    else:  # Python 3.11: the marker asyncio.iscoroutinefunction (and asgiref) look for
        obj._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
