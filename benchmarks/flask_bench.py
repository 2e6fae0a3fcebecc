"""A minimal Flask app used only by ``benchmarks/flask_views.py``: the same page cached two
ways, by Flask-Caching's ``cached`` over its ``RedisCache`` and by cacheplug's
``cached_view``. The ``slow_*`` views take 100 ms. Every view counts its executions in Redis
(``executions:<name>`` in db 2): a hit must not run it, and gunicorn's workers are separate
processes.

Configured by environment variables, one configuration per process:
``CACHEPLUG_BENCH_REDIS``: the Redis server (``redis://127.0.0.1:PORT``; cacheplug uses db 0,
Flask-Caching db 1, the counters db 2). ``CACHEPLUG_BENCH_L1=1``: turn cacheplug's L1 tier on.
gunicorn serves ``flask_bench:create_app()``.
"""

from __future__ import annotations

import hashlib
import html
import os
import threading
import time
from typing import Any

import redis
from _common import VALUE, held_page
from flask import Flask, Response, jsonify, request
from flask_caching import Cache as FlaskCaching

from cacheplug.integration import plain_request
from cacheplug_flask import CachePlug

PRODUCT = VALUE  # the row the other benchmarks cache
SLOW_SECONDS = 0.1
SLOW_TTL = 1  # seconds: the stampede is also run on an expired page
STORED_BODY = "floor:body"  # the page's body in the benchmark's db, for floor_store

cache = CachePlug()
flask_caching = FlaskCaching()

_counter: redis.Redis | None = None
_counter_url = ""
_lock = threading.Lock()


def _client() -> redis.Redis:
    """The benchmark's own Redis client (db 2)."""
    global _counter
    with _lock:
        if _counter is None:
            _counter = redis.Redis.from_url(_counter_url)
    return _counter


def count(name: str) -> None:
    """One more execution of the view ``name``, counted in Redis."""
    _client().incr(f"executions:{name}")


def render() -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in PRODUCT.items()
    )
    related = "".join(f'<li><a href="/products/{i}/">Product {i}</a></li>' for i in range(40))
    return (
        f"<!doctype html><html><head><title>{html.escape(str(PRODUCT['name']))}</title></head>"
        f"<body><h1>{html.escape(str(PRODUCT['name']))}</h1><table>{rows}</table>"
        f"<ul>{related}</ul></body></html>"
    )  # about 2.5 KB, the Django benchmark's page


BODY = render()


def floor() -> str:
    """No cache: the page's body, already made. What any cache's hit costs at least."""
    return BODY


_HIT_PAGE = (
    200,
    (  # the headers cached_view's page of BODY carries
        ("Content-Type", "text/html; charset=utf-8"),
        ("ETag", f'"{hashlib.md5(BODY.encode(), usedforsecurity=False).hexdigest()}"'),
        ("Content-Length", str(len(BODY.encode()))),
    ),
    BODY.encode(),
)


def floor_hit() -> Response | str:
    """No decorator and no policy: the least a correct page hit from the L1 tier does, the
    bound of ``cached_view``'s. It reads what decides whether the request may share a page
    (method, cookie, ``Authorization``, ``If-None-Match``) and the page's key (script root,
    path, query string, host), reads the page from L1 through the public API (which checks
    its tag and namespace versions) and builds the response with the page's headers. (Run
    with the L1 tier on.)"""
    environ = request.environ
    if not plain_request(environ.get("REQUEST_METHOD"), environ):
        return floor()  # the benchmark's requests never come here
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME")
    path = f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO')}"
    key = f"floor-hit:{path}?{environ.get('QUERY_STRING', '')}@{host}"
    status, headers, body = held_page(cache, key, _HIT_PAGE)
    return Response(body, status=status, headers=headers)


def floor_store() -> bytes:
    """No cache logic: the page's body, already made, read with one Redis ``GET``. What a hit
    from a shared store costs at least: one round trip."""
    body: bytes | None = _client().get(STORED_BODY)
    if body is None:
        _client().set(STORED_BODY, BODY)
        body = BODY.encode()
    return body


def stats() -> Any:
    """This process's cacheplug counters (to check that hits were hits, from L1 or not)."""
    counters = cache.stats()
    return jsonify(
        pid=os.getpid(),
        hits=counters.hits,
        l1_hits=counters.l1_hits,
        misses=counters.misses,
    )


@flask_caching.cached(timeout=300)
def page_flask_caching() -> str:
    count("page:flask_caching")
    return render()


@cache.cached_view(ttl=300)
def page_cached_view() -> str:
    count("page:cached_view")
    return render()


@flask_caching.cached(timeout=SLOW_TTL)
def slow_flask_caching(run: int) -> str:
    count("slow:flask_caching")
    time.sleep(SLOW_SECONDS)
    return f"slow page, run {run}"


@cache.cached_view(ttl=SLOW_TTL)
def slow_cached_view(run: int) -> str:
    count("slow:cached_view")
    time.sleep(SLOW_SECONDS)
    return f"slow page, run {run}"


def create_app() -> Flask:
    """The app, configured by the environment (see the module's docstring)."""
    global _counter_url
    base = os.environ.get("CACHEPLUG_BENCH_REDIS", "redis://127.0.0.1:6379").rstrip("/")
    _counter_url = f"{base}/2"
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="flask-views-benchmark-secret-key",  # cacheplug signs its entries with it
        DEBUG=False,
        CACHEPLUG_STORE=f"{base}/0",
        CACHEPLUG_NAMESPACE="bench",
        CACHE_TYPE="RedisCache",
        CACHE_REDIS_URL=f"{base}/1",
        CACHE_DEFAULT_TIMEOUT=300,
    )
    if os.environ.get("CACHEPLUG_BENCH_L1") == "1":
        app.config["CACHEPLUG_L1"] = {"max_entries": 10_000}
    cache.init_app(app)
    flask_caching.init_app(app)
    app.add_url_rule("/floor/", view_func=floor)
    app.add_url_rule("/floor/store/", view_func=floor_store)
    app.add_url_rule("/floor/hit/", view_func=floor_hit)
    app.add_url_rule("/stats/", view_func=stats)
    app.add_url_rule("/flask_caching/", view_func=page_flask_caching)
    app.add_url_rule("/cached_view/", view_func=page_cached_view)
    app.add_url_rule("/slow/flask_caching/<int:run>/", view_func=slow_flask_caching)
    app.add_url_rule("/slow/cached_view/<int:run>/", view_func=slow_cached_view)
    return app
