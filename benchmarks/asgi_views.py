"""Whole-page caching in Django under ASGI: cacheplug's ``CachePlugMiddleware`` (and
``cache_view`` on an ``async def`` view) against Django's ``cache_page`` over django-redis,
through uvicorn.

    python benchmarks/asgi_views.py [--redis-url URL] [--duration S] [--rounds N]
        [--connections N] [--workers N] [--middleware default|none]

The project is ``benchmarks/django_bench`` (see ``django_views.py``: one ~2.5 KB page cached
for 300 s, ``DEBUG = False``, the middleware ``startproject`` writes or, with ``--middleware
none``, none), served by its ASGI application (``django_bench.asgi``) by three uvicorn servers
on 127.0.0.1, ``--workers`` processes each:

- Django alone: ``cache_page(300)`` on the sync view of ``django_views.py`` (the baseline,
  and again as the noise floor), ``cache_page(300)`` on an ``async def`` view, and an
  ``async def`` view answering the body already made (the upper bound of a cache inside the
  view: the whole middleware stack runs, the view costs nothing);
- with cacheplug (``CACHEPLUG_BENCH_PAGES=1``: ``CachePlugMiddleware`` right after
  ``SecurityMiddleware``, caching ``/mw/`` by a ``CACHEPLUG["PAGES"]`` rule): the page of an
  undecorated ``async def`` view cached by the middleware, and ``cache_view(ttl=300)`` on an
  ``async def`` view;
- the same with ``CACHEPLUG["L1"] = {"MAX_ENTRIES": 10000}``.

Under ASGI Django runs a sync view, and each hook of a ``MiddlewareMixin`` middleware
(``process_request``, ``process_view``, ``process_response``), in a thread: ``cache_page`` on
a sync view pays those on every hit; ``CachePlugMiddleware`` answers a hit on the event loop
before the middleware below it runs (``SecurityMiddleware``, above it, still runs its two).

Each contender is loaded by ``--connections`` keep-alive HTTP/1.1 clients in threads of this
process for ``--duration`` seconds, contenders interleaved round by round in shuffled order,
``--rounds`` rounds (as part 2 of ``django_views.py``, whose helpers this uses); each line is
the median requests/s and the median over rounds of the per-round ratio to ``cache_page``.
Target (issue 20): the middleware's page hit >= 1.3x ``cache_page``. Every view counts its
executions in Redis, so a measurement that ran a view (a miss) says so.

Without ``--redis-url`` a throwaway redis-server is started on a free loopback port; the
benchmark uses its databases 0, 1 and 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack, nullcontext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from django_views import (
    BASELINE,
    BENCH_DIR,
    ROOT,
    Gunicorn,
    counter,
    django_env,
    executions,
    interleave,
    load,
    report,
    worker_stats,
)

from cacheplug.testing import RedisServer, free_port

# server -> (CachePlugMiddleware and its PAGES rule, L1 tier on)
SERVERS: dict[str, tuple[bool, bool]] = {
    "django": (False, False),
    "cacheplug": (True, False),
    "cacheplug, L1": (True, True),
}
BOUND = "async view, body prebuilt (bound)"
# contender -> (server, URL path); the first is the baseline (django_views.BASELINE).
CONTENDERS: dict[str, tuple[str, str]] = {
    BASELINE: ("django", "/cache_page/"),
    "cache_page again (noise floor)": ("django", "/cache_page/"),
    "cache_page on an async view": ("django", "/async/cache_page/"),
    "cacheplug middleware (PAGES rule)": ("cacheplug", "/mw/page/"),
    "cacheplug middleware, L1 tier on": ("cacheplug, L1", "/mw/page/"),
    "cacheplug cache_view, async view": ("cacheplug", "/async/cache_view/"),
    "cacheplug cache_view, async, L1 on": ("cacheplug, L1", "/async/cache_view/"),
    BOUND: ("django", "/async/floor/"),
}
TARGETS = {"cacheplug middleware (PAGES rule)": 1.3}
# What a view-level cache cannot beat (the middleware answers above most of the stack).
UPPER_BOUNDS = [
    ("cacheplug cache_view, async view", BOUND, None),
    ("cacheplug cache_view, async, L1 on", BOUND, None),
]
# What each view counts its executions as (django_bench.views): 0 while measuring = all hits.
EXECUTIONS = ("cache_page", "cache_page_async", "middleware", "cache_view_async")


class Uvicorn(Gunicorn):
    """A uvicorn serving ``django_bench``'s ASGI application on a free loopback port,
    ``workers`` processes, configured by ``env`` (started and stopped as ``Gunicorn``)."""

    def __init__(self, env: dict[str, str], workers: int) -> None:
        self.port = free_port()
        self.command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--app-dir",
            BENCH_DIR,
            "--lifespan",
            "off",  # Django's ASGI application does not speak it
            "--no-access-log",
            "--log-level",
            "warning",
            "django_bench.asgi:application",
        ]
        path = os.pathsep.join(p for p in (BENCH_DIR, ROOT, os.environ.get("PYTHONPATH")) if p)
        self.env = {**os.environ, **env, "PYTHONPATH": path}
        self.process = None


def server_env(redis_base: str, pages: bool, l1: bool, middleware: str) -> dict[str, str]:
    return {**django_env(redis_base, l1, middleware), "CACHEPLUG_BENCH_PAGES": str(int(pages))}


def asgi_hits(
    redis_base: str, middleware: str, workers: int, connections: int, duration: float, rounds: int
) -> None:
    count = counter(redis_base)
    with ExitStack() as running:
        servers = {
            name: running.enter_context(
                Uvicorn(server_env(redis_base, pages, l1, middleware), workers)
            )
            for name, (pages, l1) in SERVERS.items()
        }
        for _, (where, path) in CONTENDERS.items():  # warm up: fill, connect, fill each L1
            load(servers[where].port, path, connections, min(duration, 1.0))
        before = {view: executions(count, f"page:{view}") for view in EXECUTIONS}

        def contender(name: str) -> Callable[[], float]:
            where, path = CONTENDERS[name]
            return lambda: load(servers[where].port, path, connections, duration)

        times = interleave({name: contender(name) for name in CONTENDERS}, rounds)
        ran = {view: executions(count, f"page:{view}") - n for view, n in before.items()}
        seen = {
            name: worker_stats(servers[name].port, workers)
            for name in ("cacheplug", "cacheplug, L1")
        }
    print(
        f"\nA cached page's hits through uvicorn ({workers} workers a server, {middleware} "
        f"middleware; {connections} keep-alive connections; {rounds} rounds x {duration:g} s "
        "per contender)"
    )
    report(times, targets=TARGETS, upper_bounds=UPPER_BOUNDS)
    print(
        "  views run while measuring (0 = every request was a hit): "
        + ", ".join(f"{view} {n}" for view, n in ran.items())
    )
    for label, per_worker in seen.items():
        hits = sum(s["hits"] for s in per_worker.values())
        l1_hits = sum(s["l1_hits"] for s in per_worker.values())
        misses = sum(s["misses"] for s in per_worker.values())
        print(
            f"  cacheplug in the '{label}' server's {len(per_worker)} of {workers} workers "
            f"reached: {hits:,} hits ({l1_hits:,} from L1), {misses} misses"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis (its dbs 0-2) instead of starting one")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--connections", type=int, default=8, help="HTTP load connections")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    parser.add_argument("--middleware", choices=("default", "none"), default="default")
    args = parser.parse_args()

    import django
    import django_redis
    import redis
    import uvicorn

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    versions = [
        f"python {sys.version.split()[0]}",
        f"Django {django.__version__}",
        f"django-redis {'.'.join(map(str, django_redis.VERSION))}",
        f"redis-py {redis.__version__}, hiredis {'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}",
        f"uvicorn {uvicorn.__version__} ({loop}, {http})",
        f"{os.cpu_count()} CPUs",
    ]
    print(", ".join(versions))
    with nullcontext(None) if args.redis_url else RedisServer() as server:
        url = args.redis_url or server.url
        # The databases are the benchmark's to pick: a URL's own is dropped.
        head, _, last = url.rstrip("/").rpartition("/")
        base = head if last.isdigit() else url.rstrip("/")
        asgi_hits(base, args.middleware, args.workers, args.connections, args.duration, args.rounds)


if __name__ == "__main__":
    main()
