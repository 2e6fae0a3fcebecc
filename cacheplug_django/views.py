"""``@cache_view``: whole-response caching for Django views, by allow-list (see
``cacheplug.integration`` for what is shared, and why; ``_serve`` serves the pages)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponseBase

from cacheplug import DEFAULT, ConfigurationError
from cacheplug.integration import AUTO, PageHits, PagePolicy, check_page_options, is_auto
from cacheplug_django._aserve import async_cached_view
from cacheplug_django._cache import Models
from cacheplug_django._page_hits import quick_hit
from cacheplug_django._serve import (
    PATH_TAG,
    URL_NAME_TAG,
    VIEW_TAG,
    TagsArg,
    View,
    page_tags,
    serve,
    split_tags,
    view_label,
)


def cache_view(
    ttl: Any = DEFAULT,
    *,
    depends_on: Models | str = (),
    tags: TagsArg = None,
    per_user: bool = False,
    statuses: Iterable[int] = (200,),
    stale_ttl: Any = DEFAULT,
    edge: bool = False,
) -> Callable[[View], View]:
    """Cache a view's responses.

    Only ``GET``/``HEAD`` requests without a session or login (``per_user=True``: keyed by
    the user instead), and only responses with an allowed status (200), no cookie, no
    ``Cache-Control: private/no-store/no-cache``, no ``Vary: *``, not streamed, are shared;
    and only if rendering read nothing of the client: no session, flash messages, user
    (unless ``per_user``), CSRF token or cookie it sent. ``depends_on``: models whose writes
    invalidate the page, or ``"auto"``: what rendering it read through the ORM; ``tags``:
    tags or a callable ``(request, *args, **kwargs) -> tags`` (e.g. ``instance_tag(Product,
    pk)``). Concurrent misses render once; ``stale_ttl`` serves an expired page while one
    request renders it again. ``edge=True``: a shared page also goes to the edge cache
    ``CACHEPLUG["EDGE"]`` describes (``Cache-Control: public, s-maxage``, its keys; purged
    when its data changes), unless it is per user or ``depends_on="auto"``. The arguments are
    checked here: a mistake raises
    :class:`~cacheplug.ConfigurationError` when the module is imported.
    """
    policy = PagePolicy(statuses=statuses, per_user=per_user)
    check_page_options(ttl, stale_ttl, "cache_view()")
    if not isinstance(edge, bool):
        raise ConfigurationError(f"cache_view(edge=...) takes True or False, not {edge!r}")
    depends_on = _models(depends_on)
    tags = _tags(tags)

    def decorator(view: View) -> View:
        hits = None if per_user else PageHits()
        options = {"ttl": ttl, "depends_on": depends_on, "stale_ttl": stale_ttl, "edge": edge}
        if inspect.iscoroutinefunction(view):
            return async_cached_view(view, policy, tags, hits, options)
        dynamic, static = split_tags(tags)

        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            named = None if dynamic is None else tuple(dynamic(request, *args, **kwargs))
            response, facts = quick_hit(hits, request, named)
            if response is not None:
                return response

            def entry_tags() -> list[str]:
                return [*(static if named is None else named), *page_tags(request, view)]

            return serve(
                request,
                lambda: view(request, *args, **kwargs),
                policy,
                entry_tags,
                plain=None if facts is None else (hits, facts, named),  # type: ignore[arg-type]
                **options,
            )

        wrapped.page_policy = policy  # type: ignore[attr-defined]
        return wrapped

    return decorator


def _models(depends_on: Any) -> Models | str:
    if is_auto(depends_on):
        return AUTO
    if isinstance(depends_on, str):
        depends_on = (depends_on,)
    if not isinstance(depends_on, Iterable):
        raise ConfigurationError(
            f"cache_view(depends_on=...) takes models (classes or 'app.Model' names), not "
            f"{depends_on!r}"
        )
    models = tuple(depends_on)
    for model in models:
        named = isinstance(model, str) and model.count(".") == 1
        if not named and not hasattr(model, "_meta"):
            raise ConfigurationError(
                f"cache_view(depends_on=...) takes models (classes or 'app.Model' names), "
                f"not {model!r}"
            )
    return models


def _tags(tags: Any) -> TagsArg:
    if tags is None or callable(tags):
        return tags  # type: ignore[no-any-return]
    if isinstance(tags, str):
        return (tags,)
    if not isinstance(tags, Iterable) or not all(isinstance(tag, str) for tag in tags):
        raise ConfigurationError(
            f"cache_view(tags=...) takes tag names, or a callable (request, *args, **kwargs) "
            f"-> tag names, not {tags!r}"
        )
    return tuple(tags)


def invalidate_pages(
    *, path: str | None = None, view: Callable[..., Any] | str | None = None
) -> None:
    """Invalidate cached pages by URL path (``"/catalog/"``, every query string and host),
    or by view: a view function, or a URL name (``"shop:catalog"``)."""
    from cacheplug_django._state import cache

    tags = []
    if path is not None:
        tags.append(PATH_TAG + path)
    if callable(view):
        tags.append(VIEW_TAG + view_label(view))
    elif view is not None:
        tags.append(URL_NAME_TAG + view)
    if not tags:
        raise TypeError("invalidate_pages() needs path= or view=")
    cache.invalidate_tags(*tags)


__all__: Sequence[str] = ["cache_view", "invalidate_pages"]
