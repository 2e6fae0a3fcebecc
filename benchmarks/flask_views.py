"""Whole-page caching in Flask: cacheplug's ``cached_view`` against Flask-Caching's ``cached``
over its ``RedisCache``, through the test client, through gunicorn, and in a stampede.

    python benchmarks/flask_views.py [--redis-url URL] [--rounds N] [--ops N]
        [--duration S] [--http-rounds N] [--connections N] [--workers N]
        [--http-threads N] [--clients N] [--skip-http]

The app is ``benchmarks/flask_bench.py``: one ~2.5 KB page (the Django benchmark's) cached
for 300 s by Flask-Caching's ``@cache.cached(timeout=300)`` (``CACHE_TYPE = "RedisCache"``,
db 1) and by ``CachePlug.cached_view(ttl=300)`` (``CACHEPLUG_STORE`` = db 0, namespace
``bench``, signed pickle with ``SECRET_KEY``), with ``DEBUG = False`` and no other
extension. Each configuration runs in processes of its own. Every view counts its executions
in Redis, so a measurement that ran a view says so. An uncached view returning the same body,
already made, is the upper bound: what a cache that cost nothing would reach.

1. Hits through Flask's test client: one spawned process per contender (Flask-Caching;
   Flask-Caching again, the noise floor; ``cached_view``; ``cached_view`` with
   ``CACHEPLUG_L1 = {"max_entries": 10000}``; the upper bound), ``--ops`` requests per round,
   contenders interleaved round by round in shuffled order (as in ``overhead.py``); each
   line is the median over ``--rounds`` of the per-round hits/s ratio to Flask-Caching.
   Targets: ``cached_view`` >= 1.15x Flask-Caching (issue 20; 1.0x in issue 7); with the L1
   tier >= 2.0x, and within 15 % of the upper bound's requests/s. Then (1b; target: an L1
   hit costs at most 1.5x the upper bound's time per request) the same views called
   directly, each call in a request context of
   its own built from a ready WSGI environ, with ``make_response`` applied to what they
   return as Flask's dispatch does: the decorators alone, without the test client and
   Flask's full dispatch.
2. The same through gunicorn on 127.0.0.1 (``--workers`` sync workers, or gthread workers
   with ``--http-threads`` threads each; one server with the L1 tier off, one with it on),
   loaded by ``--connections`` HTTP/1.1 clients in threads of this process (keep-alive where
   the server allows it; the sync worker closes after each response) for ``--duration``
   seconds per contender and round, ``--http-rounds`` interleaved rounds. Same ratios, same
   targets, but the L1 tier within 10 % of the upper bound.
3. A stampede: ``--clients`` threads (default 64), each on a connection of its own, request
   at the same moment a page whose view takes 100 ms (cached 1 s), first cold and then just
   expired, with Flask-Caching's ``cached`` and with ``cached_view``, through gunicorn
   gthread workers with a thread for every client. The view's executions are counted in
   Redis (the workers are separate processes). Target (issue 7): ``cached_view`` runs the
   view exactly once each time; Flask-Caching, which has no stampede protection, is expected
   to run it many times.

Without ``--redis-url`` a throwaway redis-server is started on a free loopback port; the
benchmark uses its databases 0, 1 and 2. Without gunicorn (``pip install gunicorn``, in the
``bench`` extra) part 2 says so and is skipped, and the stampede runs through the test client
in threads of one process instead. The HTTP load client, the interleaving and the stampede's
clients are ``django_views.py``'s, imported from it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis
from django_views import (
    BOUND_NOTE,
    CLIENT_BOUND,
    DIRECT_BOUND,
    HIT_BOUND,
    HTTP_BOUND,
    HttpClient,
    WorkerPool,
    http_stampede,
    interleave,
    load,
    report,
    server_shape,
    worker_stats,
)
from django_views import Gunicorn as DjangoGunicorn

from cacheplug.testing import RedisServer

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)

# contender -> (URL path, L1 tier on); the first is the baseline.
PAGES: dict[str, tuple[str, bool]] = {
    "Flask-Caching cached, RedisCache": ("/flask_caching/", False),
    "Flask-Caching again (noise floor)": ("/flask_caching/", False),
    "cacheplug cached_view": ("/cached_view/", False),
    "cacheplug cached_view, L1 tier on": ("/cached_view/", True),
    "no cache, body prebuilt (upper bound)": ("/floor/", False),
    "body from one Redis GET (store-hit bound)": ("/floor/store/", False),
    HIT_BOUND: ("/floor/hit/", True),
}
BASELINE = "Flask-Caching cached, RedisCache"
TARGETS = {"cacheplug cached_view": 1.15, "cacheplug cached_view, L1 tier on": 2.0}
L2 = "cacheplug cached_view"
L1 = "cacheplug cached_view, L1 tier on"
UPPER = "no cache, body prebuilt (upper bound)"
STORE_BOUND = "body from one Redis GET (store-hit bound)"
VARIANTS = ("flask_caching", "cached_view")  # the views' names in their execution counters
SLOW_TTL = 1.0  # the slow views' ttl (flask_bench.SLOW_TTL)


def checks(most: float) -> dict[str, Any]:
    """``report``'s baseline, targets and upper-bound checks for parts 1 and 2."""
    return {"baseline": BASELINE, "targets": TARGETS, "upper_bounds": bounds(most)}


def bounds(most: float) -> list[tuple[str, str, float | None]]:
    """As ``django_views.bounds``: L1 against the prebuilt page, the store against one GET,
    and the least correct L1 hit against the prebuilt page (is the target above it?)."""
    return [
        (L1, UPPER, most),
        (L2, STORE_BOUND, None),
        (L1, HIT_BOUND, None),
        (HIT_BOUND, UPPER, most),
    ]


def bench_env(redis_base: str, l1: bool) -> dict[str, str]:
    """The environment that configures ``flask_bench`` for one contender."""
    return {"CACHEPLUG_BENCH_REDIS": redis_base, "CACHEPLUG_BENCH_L1": "1" if l1 else "0"}


def counter(redis_base: str) -> redis.Redis:
    """Where the views count their executions (``executions:<name>``)."""
    return redis.Redis.from_url(f"{redis_base}/2")


def executions(client: redis.Redis, name: str) -> int:
    return int(client.get(f"executions:{name}") or 0)


# -- 1. The test client, one process per contender ----------------------------------------


def client_worker(conn: Connection, env: dict[str, str], path: str) -> None:
    """Serve the parent's commands in a process configured for one contender:
    ``("run", ops)`` -> seconds taken by ``ops`` GETs of ``path`` through the test client;
    ``("direct", ops)`` -> the same calling the view function in a request context of its
    own (no test client, no full dispatch); ``("stats",)`` -> what the process saw;
    ``("stampede", path, clients)`` -> latencies; ``("stop",)``."""
    os.environ.update(env)
    if BENCH_DIR not in sys.path:
        sys.path.insert(0, BENCH_DIR)
    import flask_bench
    from werkzeug.test import EnvironBuilder

    app = flask_bench.create_app()
    client = app.test_client()
    endpoint, view_args = app.url_map.bind("localhost").match(path)
    view: Callable[..., Any] = app.view_functions[endpoint]
    builder = EnvironBuilder(path=path, base_url="http://localhost/")
    environ = builder.get_environ()
    builder.close()

    def direct() -> Any:
        with app.request_context(dict(environ)):
            return app.make_response(view(**view_args))

    first = client.get(path)
    if first.status_code != 200 or len(first.data) < 2000:
        raise RuntimeError(f"GET {path}: {first.status_code}, {len(first.data)} bytes")
    for _ in range(200):  # warm up connections, code paths and, with L1 on, the tier
        client.get(path)
        direct()
    cached = "cached_view" in path
    with app.app_context():
        measured_from = flask_bench.cache.stats() if cached else None
    conn.send("ready")
    while True:
        command = conn.recv()
        if command[0] == "run":
            started = time.perf_counter()
            for _ in range(command[1]):
                client.get(path)
            conn.send(time.perf_counter() - started)
        elif command[0] == "direct":
            started = time.perf_counter()
            for _ in range(command[1]):
                direct()
            conn.send(time.perf_counter() - started)
        elif command[0] == "stats":
            stats: dict[str, Any] = {}
            if measured_from is not None:
                with app.app_context():
                    now = flask_bench.cache.stats()
                stats["hits"] = now.hits - measured_from.hits
                stats["misses"] = now.misses - measured_from.misses
                stats["l1 hits"] = now.l1_hits - measured_from.l1_hits
            conn.send(stats)
        elif command[0] == "stampede":
            conn.send(client_stampede(app, command[1], command[2]))
        else:
            break
    flask_bench.cache.close(app)  # before the server goes away
    conn.close()


def client_stampede(app: Any, path: str, clients: int) -> list[float]:
    """Latencies of ``clients`` test clients in threads requesting ``path`` at once."""
    barrier = threading.Barrier(clients)
    latencies: list[float] = []

    def one() -> None:
        client = app.test_client()
        barrier.wait()
        started = time.perf_counter()
        response = client.get(path)
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")

    pool = [threading.Thread(target=one) for _ in range(clients)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies


def test_client_hits(redis_base: str, rounds: int, ops: int) -> None:
    count = counter(redis_base)
    pool = WorkerPool(
        client_worker,
        {name: (bench_env(redis_base, l1), path) for name, (path, l1) in PAGES.items()},
    )
    renders_before = {v: executions(count, f"page:{v}") for v in VARIANTS}
    times, direct, stats = pool.measure(rounds, ops)
    renders = {v: executions(count, f"page:{v}") - n for v, n in renders_before.items()}

    print(
        f"\n1. A cached page's hits through Flask's test client "
        f"({rounds} rounds x {ops} requests per contender)"
    )
    report(times, unit_ops=ops, **checks(CLIENT_BOUND))
    print(
        f"  views run while measuring: Flask-Caching {renders['flask_caching']}, "
        f"cached_view {renders['cached_view']} (0 = every request was a hit)"
    )
    for name in ("cacheplug cached_view", "cacheplug cached_view, L1 tier on"):
        s = stats[name]
        print(
            f"  {name}: {s['hits']:,} hits ({s['l1 hits']:,} from L1), {s['misses']} misses "
            "while measuring (1 and 1b)"
        )
    print(
        f"\n1b. The same views called directly, each in a request context of its own, with "
        f"make_response:\n    the decorators alone, no test client, no full dispatch (for "
        f"reading the above; {rounds} rounds x {ops} calls)"
    )
    report(direct, unit_ops=ops, baseline=BASELINE, upper_bounds=bounds(DIRECT_BOUND))
    print(BOUND_NOTE)


# -- 2. gunicorn ----------------------------------------------------------------------------


def Gunicorn(env: dict[str, str], workers: int, threads: int) -> DjangoGunicorn:
    """django_views' gunicorn runner, serving ``flask_bench:create_app()``."""
    return DjangoGunicorn(env, workers, threads, app="flask_bench:create_app()")


def check_page(port: int, path: str) -> None:
    """The server answers ``path`` with the whole page."""
    client = HttpClient(port, path)
    status, body = client.get()
    client.close()
    if status != 200 or len(body) < 2000:
        raise RuntimeError(f"GET {path} on port {port}: {status}, {len(body)} bytes")


def http_hits(
    redis_base: str,
    workers: int,
    threads: int,
    connections: int,
    duration: float,
    rounds: int,
) -> None:
    count = counter(redis_base)
    with (
        Gunicorn(bench_env(redis_base, False), workers, threads) as plain,
        Gunicorn(bench_env(redis_base, True), workers, threads) as with_l1,
    ):
        servers = {name: with_l1 if l1 else plain for name, (_, l1) in PAGES.items()}
        for name, (path, _) in PAGES.items():  # warm up: fill, connect, fill each L1
            check_page(servers[name].port, path)
            load(servers[name].port, path, connections, min(duration, 1.0))
        renders_before = {v: executions(count, f"page:{v}") for v in VARIANTS}

        def contender(name: str) -> Callable[[], float]:
            path = PAGES[name][0]
            return lambda: load(servers[name].port, path, connections, duration)

        times = interleave({name: contender(name) for name in PAGES}, rounds)
        renders = {v: executions(count, f"page:{v}") - n for v, n in renders_before.items()}
        seen = {
            "L1 off": worker_stats(plain.port, workers),
            "L1 on": worker_stats(with_l1.port, workers),
        }
    print(
        f"\n2. The same hits through gunicorn ({server_shape(workers, threads)}; {connections} "
        f"client connections; {rounds} rounds x {duration:g} s per contender)"
    )
    report(times, **checks(HTTP_BOUND))
    print(
        f"  views run while measuring: Flask-Caching {renders['flask_caching']}, "
        f"cached_view {renders['cached_view']} (0 = every request was a hit)"
    )
    for label, per_worker in seen.items():
        hits = sum(s["hits"] for s in per_worker.values())
        l1_hits = sum(s["l1_hits"] for s in per_worker.values())
        misses = sum(s["misses"] for s in per_worker.values())
        print(
            f"  cacheplug in the {label} server's {len(per_worker)} of {workers} workers "
            f"reached: {hits:,} hits ({l1_hits:,} from L1), {misses} misses"
        )


# -- 3. Stampede ----------------------------------------------------------------------------


def stampede(
    redis_base: str,
    clients: int,
    run: Callable[[str, int], list[float]],
    where: str,
) -> None:
    count = counter(redis_base)
    run_id = int(time.time() * 1000) % 1_000_000_000  # a URL no earlier run has cached
    results: list[tuple[str, str, int, list[float]]] = []
    for state in ("cold", "expired"):
        if state == "expired":
            time.sleep(SLOW_TTL + 0.5)  # both pages, cached by the cold run, expire
        for variant in VARIANTS:
            before = executions(count, f"slow:{variant}")
            latencies = run(f"/slow/{variant}/{run_id}/", clients)
            ran = executions(count, f"slow:{variant}") - before
            results.append((state, variant, ran, latencies))
    print(
        f"\n3. Stampede: {clients} clients at once on a page whose view takes 100 ms "
        f"(cached {SLOW_TTL:g} s), {where}"
    )
    for state, variant, ran, latencies in results:
        ordered = sorted(latencies)
        p50 = ordered[len(ordered) // 2] * 1e3
        line = (
            f"  {state:<8} {variant:<13} view executions {ran:3d}   "
            f"latency p50 {p50:6.1f} ms  max {ordered[-1] * 1e3:6.1f} ms"
        )
        if variant == "cached_view":
            line += f"   target == 1: {'OK' if ran == 1 else 'MISSED'}"
        print(line)


def test_client_stampede(redis_base: str, clients: int) -> None:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(
        target=client_worker, args=(child, bench_env(redis_base, False), "/cached_view/")
    )
    process.start()
    if parent.recv() != "ready":
        raise RuntimeError("the stampede worker did not start")

    def run(path: str, n: int) -> list[float]:
        parent.send(("stampede", path, n))
        latencies: list[float] = parent.recv()
        return latencies

    try:
        stampede(redis_base, clients, run, "test client in threads of 1 process")
    finally:
        parent.send(("stop",))
        process.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis (its dbs 0-2) instead of starting one")
    parser.add_argument("--rounds", type=int, default=21, help="test-client rounds")
    parser.add_argument("--ops", type=int, default=300, help="test-client requests per round")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per HTTP round")
    parser.add_argument("--http-rounds", type=int, default=11)
    parser.add_argument("--connections", type=int, default=8, help="HTTP load connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--http-threads",
        type=int,
        default=1,
        help="threads per gunicorn worker for part 2 (1: sync workers; more: gthread)",
    )
    parser.add_argument("--clients", type=int, default=64, help="stampede clients")
    parser.add_argument("--skip-http", action="store_true", help="test client only")
    args = parser.parse_args()
    # The stampede's server takes every client at once: gthread workers with enough threads.
    stampede_threads = max(2, -(-args.clients // args.workers))

    has_gunicorn = importlib.util.find_spec("gunicorn") is not None
    version = importlib.metadata.version
    print(
        f"python {sys.version.split()[0]}, Flask {version('flask')}, Werkzeug "
        f"{version('werkzeug')}, Flask-Caching {version('flask-caching')}, redis-py "
        f"{redis.__version__}, hiredis {'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}, "
        f"gunicorn {version('gunicorn') if has_gunicorn else 'not installed'}, "
        f"{os.cpu_count()} CPUs"
    )

    def run(url: str) -> None:
        base = url.rstrip("/")
        if base.rsplit("/", 1)[-1].isdigit():
            base = base.rsplit("/", 1)[0]  # the benchmark picks its own databases
        test_client_hits(base, args.rounds, args.ops)
        if args.skip_http:
            return
        if not has_gunicorn:
            print(
                "\n2. Through gunicorn: SKIPPED, gunicorn is not installed "
                "(pip install gunicorn, or pip install -e '.[bench]')"
            )
            test_client_stampede(base, args.clients)
            return
        http_hits(
            base,
            args.workers,
            args.http_threads,
            args.connections,
            args.duration,
            args.http_rounds,
        )
        with Gunicorn(bench_env(base, False), args.workers, stampede_threads) as server:
            for _ in range(3):  # every thread of every worker: connected, both caches built
                for path in ("/floor/", "/flask_caching/", "/cached_view/"):
                    http_stampede(server.port, path, args.clients)
            stampede(
                base,
                args.clients,
                lambda path, n: http_stampede(server.port, path, n),
                f"gunicorn {server_shape(args.workers, stampede_threads)}",
            )

    if args.redis_url:
        run(args.redis_url)
    else:
        with RedisServer() as server:
            run(server.url)


if __name__ == "__main__":
    main()
