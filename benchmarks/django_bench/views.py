"""The same page cached two ways: Django's ``cache_page`` over django-redis, and cacheplug's
``cache_view``. The ``slow_*`` views take 100 ms. Every view counts its executions in Redis
(``executions:<name>`` in db 2): a hit must not run it, and gunicorn's workers are separate
processes. The ``async def`` views are for ``asgi_views.py`` (uvicorn): the same page, cached
by ``cache_page``, by ``cache_view``, by ``CachePlugMiddleware`` (``page_middleware``, on no
list of its own: the ``PAGES`` rule of ``CACHEPLUG_BENCH_PAGES=1`` names its path), or not at
all (``async_floor``)."""

from __future__ import annotations

import hashlib
import html
import os
import threading
import time

import redis
from _common import VALUE, held_page
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import get_language
from django.views.decorators.cache import cache_page

from cacheplug.integration import plain_request
from cacheplug_django import cache, cache_view

PRODUCT = VALUE  # the row the other benchmarks cache
SLOW_SECONDS = 0.1
SLOW_TTL = 1  # seconds: the stampede is also run on an expired page
STORED_BODY = "floor:body"  # the page's body in the benchmark's db, for floor_store

_counter: redis.Redis | None = None
_lock = threading.Lock()


def _client() -> redis.Redis:
    """The benchmark's own Redis client (db 2)."""
    global _counter
    with _lock:
        if _counter is None:
            _counter = redis.Redis.from_url(settings.COUNTER_URL)
    return _counter


def count(name: str) -> None:
    """One more execution of the view ``name``, counted in Redis."""
    _client().incr(f"executions:{name}")


def _render() -> HttpResponse:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in PRODUCT.items()
    )
    related = "".join(f'<li><a href="/products/{i}/">Product {i}</a></li>' for i in range(40))
    body = (
        f"<!doctype html><html><head><title>{html.escape(str(PRODUCT['name']))}</title></head>"
        f"<body><h1>{html.escape(str(PRODUCT['name']))}</h1><table>{rows}</table>"
        f"<ul>{related}</ul></body></html>"
    )
    return HttpResponse(body)  # about 2.5 KB


_BODY = _render().content


def floor(request: HttpRequest) -> HttpResponse:
    """No cache: the page's body, already made. What any cache's hit costs at least."""
    return HttpResponse(_BODY)


def floor_store(request: HttpRequest) -> HttpResponse:
    """No cache logic: the page's body, already made, read with one Redis ``GET``. What a hit
    from a shared store costs at least: one round trip."""
    body = _client().get(STORED_BODY)
    if body is None:
        _client().set(STORED_BODY, _BODY)
        body = _BODY
    return HttpResponse(body)


def floor_language(request: HttpRequest) -> HttpResponse:
    """No cache: the page's body, already made, after asking Django for the active language.
    What a hit costs at least when pages are keyed by language (``USE_I18N``, as Django's
    ``cache_page`` keys them too)."""
    get_language()
    return HttpResponse(_BODY)


_HIT_PAGE = (
    200,
    {  # the headers cache_view's page of _BODY carries
        "Content-Type": "text/html; charset=utf-8",
        "ETag": f'"{hashlib.md5(_BODY, usedforsecurity=False).hexdigest()}"',
        "Content-Length": str(len(_BODY)),
    },
    _BODY,
)


def floor_hit(request: HttpRequest) -> HttpResponse:
    """No decorator and no policy: the least a correct page hit from the L1 tier does, the
    bound of ``cache_view``'s. It reads what decides whether the request may share a page
    (method, cookie, ``Authorization``, ``If-None-Match``) and the page's key (path, query
    string, host, active language), reads the page from L1 through the public API (which
    checks its tag and namespace versions) and builds the response with the page's headers.
    (Run with the L1 tier on.)"""
    meta = request.META
    if not plain_request(request.method, meta):
        return floor(request)  # the benchmark's requests never come here
    host = meta.get("HTTP_HOST") or meta.get("SERVER_NAME")
    key = f"floor-hit:{request.path}?{meta.get('QUERY_STRING', '')}@{host}#{get_language()}"
    status, headers, body = held_page(cache, key, _HIT_PAGE)
    return HttpResponse(body, status=status, headers=headers)


def stats(request: HttpRequest) -> JsonResponse:
    """This process's cacheplug counters (to check that hits were hits, from L1 or not)."""
    from cacheplug_django import cache

    counters = cache.stats()
    return JsonResponse(
        {
            "pid": os.getpid(),
            "hits": counters.hits,
            "l1_hits": counters.l1_hits,
            "misses": counters.misses,
        }
    )


@cache_page(300)
def page_cache_page(request: HttpRequest) -> HttpResponse:
    count("page:cache_page")
    return _render()


@cache_view(ttl=300)
def page_cache_view(request: HttpRequest) -> HttpResponse:
    count("page:cache_view")
    return _render()


@cache_page(SLOW_TTL)
def slow_cache_page(request: HttpRequest, run: int) -> HttpResponse:
    count("slow:cache_page")
    time.sleep(SLOW_SECONDS)
    return HttpResponse(f"slow page, run {run}")


@cache_view(ttl=SLOW_TTL)
def slow_cache_view(request: HttpRequest, run: int) -> HttpResponse:
    count("slow:cache_view")
    time.sleep(SLOW_SECONDS)
    return HttpResponse(f"slow page, run {run}")


async def async_floor(request: HttpRequest) -> HttpResponse:
    """``floor`` as an ``async def`` view: no thread under ASGI."""
    return HttpResponse(_BODY)


async def page_middleware(request: HttpRequest) -> HttpResponse:
    count("page:middleware")
    return _render()


@cache_view(ttl=300)
async def page_cache_view_async(request: HttpRequest) -> HttpResponse:
    count("page:cache_view_async")
    return _render()


@cache_page(300)
async def page_cache_page_async(request: HttpRequest) -> HttpResponse:
    count("page:cache_page_async")
    return _render()
