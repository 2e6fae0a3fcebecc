"""Whole-page caching in Django: cacheplug's ``cache_view`` against Django's ``cache_page``
over django-redis, through the test client, through gunicorn, and in a stampede.

    python benchmarks/django_views.py [--redis-url URL] [--rounds N] [--ops N]
        [--duration S] [--http-rounds N] [--connections N] [--workers N]
        [--http-threads N] [--clients N] [--middleware default|none] [--skip-http]

The project is ``benchmarks/django_bench``: one ~2.5 KB page cached for 300 s by
``cache_page(300)`` (``django_redis.cache.RedisCache``, db 1) and by ``cache_view(ttl=300)``
(``CACHEPLUG = {"STORE": <db 0>, "NAMESPACE": "bench"}``, signed pickle with ``SECRET_KEY``),
behind the middleware ``startproject`` writes (``--middleware none``: no middleware), with
``DEBUG = False``; no view touches the database. Each Django configuration runs in processes
of its own. Every view counts its executions in Redis, so a measurement that ran a view says
so. An uncached view answering the same body, already made, is the upper bound: what a cache
that cost nothing would reach.

1. Hits through the Django test client: one spawned process per contender (``cache_page``;
   ``cache_page`` again, the noise floor; ``cache_view``; ``cache_view`` with
   ``CACHEPLUG["L1"] = {"MAX_ENTRIES": 10000}``; the upper bound), ``--ops`` requests per
   round, contenders interleaved round by round in shuffled order (as in ``overhead.py``);
   each line is the median over ``--rounds`` of the per-round hits/s ratio to ``cache_page``.
   Targets: ``cache_view`` >= 1.6x ``cache_page`` (issue 20; 1.5x in issue 6); with the L1
   tier >= 3x, and within 15 % of the upper bound's requests/s (time per request at most
   1/0.85 of its). Then (1b) the same views called directly with a ``RequestFactory``
   request: the decorators alone, without the test client and the middleware. Target: an L1
   hit costs at most 1.5x the upper bound's time per request. Its own bound is the row
   ``least correct hit from L1``: a view with no decorator that does only what a correct L1
   page hit must (the request's sharing and key facts, the language, an L1 read that checks
   versions, the response with the page's headers), run with the L1 tier on.
2. The same through gunicorn on 127.0.0.1 (``--workers`` sync workers, or gthread workers
   with ``--http-threads`` threads each; one server with the L1 tier off, one with it on),
   loaded by ``--connections`` HTTP/1.1 clients in threads of this process (keep-alive where
   the server allows it; the sync worker closes after each response) for ``--duration``
   seconds per contender and round, ``--http-rounds`` interleaved rounds. Same ratios, same
   targets, but the L1 tier within 10 % of the upper bound.
3. A stampede: ``--clients`` threads (default 64), each on a connection of its own, request
   at the same moment a page whose view takes 100 ms (cached 1 s), first cold and then just
   expired, with ``cache_page`` and with ``cache_view``, through gunicorn gthread workers with
   a thread for every client. The view's executions are counted in Redis (the workers are
   separate processes). Target (issue 6): ``cache_view`` runs the view exactly once each time;
   ``cache_page`` is expected to run it many times.

Without ``--redis-url`` a throwaway redis-server is started on a free loopback port; the
benchmark uses its databases 0, 1 and 2. Without gunicorn (``pip install gunicorn``, in the
``bench`` extra) part 2 says so and is skipped, and the stampede runs through the test client
in threads of one process instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis

from cacheplug.testing import RedisServer, free_port

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)

# contender -> (URL path, L1 tier on); the first is the baseline.
PAGES: dict[str, tuple[str, bool]] = {
    "cache_page over django-redis": ("/cache_page/", False),
    "cache_page again (noise floor)": ("/cache_page/", False),
    "cacheplug cache_view": ("/cache_view/", False),
    "cacheplug cache_view, L1 tier on": ("/cache_view/", True),
    "no cache, body prebuilt (upper bound)": ("/floor/", False),
    "body prebuilt, language read (i18n bound)": ("/floor/language/", False),
    "body from one Redis GET (store-hit bound)": ("/floor/store/", False),
    "least correct hit from L1 (L1-hit bound)": ("/floor/hit/", True),
}
BASELINE = "cache_page over django-redis"
TARGETS = {"cacheplug cache_view": 1.6, "cacheplug cache_view, L1 tier on": 3.0}
L2 = "cacheplug cache_view"
L1 = "cacheplug cache_view, L1 tier on"
UPPER = "no cache, body prebuilt (upper bound)"
LANGUAGE_BOUND = "body prebuilt, language read (i18n bound)"
STORE_BOUND = "body from one Redis GET (store-hit bound)"
HIT_BOUND = "least correct hit from L1 (L1-hit bound)"
BOUND_NOTE = (
    f"  ({HIT_BOUND!r}: what a correct L1 page hit cannot skip, with no decorator;\n"
    "   where it misses a target, that target is above its bound)"
)
# An L1 hit's time per request at most this many times the upper bound's: through the test
# client (within 15 % of its requests/s), through gunicorn (10 %), and called directly (1b).
CLIENT_BOUND, HTTP_BOUND, DIRECT_BOUND = 1 / 0.85, 1 / 0.90, 1.5
SLOW_TTL = 1.0  # the slow views' ttl (django_bench.views.SLOW_TTL)


def bounds(most: float) -> list[tuple[str, str, float | None]]:
    """The upper-bound checks: the L1 tier's against the prebuilt page (at most ``most``
    times its time per request), the store's against one round trip, and the least correct
    L1 hit's against the prebuilt page (does the bound itself meet ``most``?)."""
    return [
        (L1, UPPER, most),
        (L2, STORE_BOUND, None),
        (L1, HIT_BOUND, None),
        (HIT_BOUND, UPPER, most),
    ]


def django_env(redis_base: str, l1: bool, middleware: str) -> dict[str, str]:
    """The environment that configures ``django_bench.settings`` for one contender."""
    return {
        "DJANGO_SETTINGS_MODULE": "django_bench.settings",
        "CACHEPLUG_BENCH_REDIS": redis_base,
        "CACHEPLUG_BENCH_L1": "1" if l1 else "0",
        "CACHEPLUG_BENCH_MIDDLEWARE": middleware,
    }


def counter(redis_base: str) -> redis.Redis:
    """Where the views count their executions (``executions:<name>``)."""
    return redis.Redis.from_url(f"{redis_base}/2")


def executions(client: redis.Redis, name: str) -> int:
    return int(client.get(f"executions:{name}") or 0)


# -- 1. The test client, one process per contender ----------------------------------------


def client_worker(conn: Connection, env: dict[str, str], path: str) -> None:
    """Serve the parent's commands in a process configured for one contender:
    ``("run", ops)`` -> seconds taken by ``ops`` GETs of ``path`` through the test client;
    ``("direct", ops)`` -> the same calling the view function with a ``RequestFactory``
    request (no test client, no middleware); ``("stats",)`` -> what the process saw;
    ``("stampede", path, clients)`` -> latencies; ``("stop",)``."""
    os.environ.update(env)
    sys.path.insert(0, BENCH_DIR)
    import django

    django.setup()
    from django.db import connections
    from django.test import Client, RequestFactory
    from django.urls import resolve

    from cacheplug_django import cache

    client = Client()
    factory = RequestFactory()
    match = resolve(path)
    view = match.func

    def request() -> Any:
        made = factory.get(path)
        made.resolver_match = match  # as the handler sets it: the page's tags use it
        return made

    first = client.get(path)
    if first.status_code != 200 or not first.content:
        raise RuntimeError(f"GET {path}: {first.status_code}")
    for _ in range(200):  # warm up connections, code paths and, with L1 on, the tier
        client.get(path)
        view(request())
    measured_from = cache.stats() if "cache_view" in path else None
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
                view(request())
            conn.send(time.perf_counter() - started)
        elif command[0] == "stats":
            stats: dict[str, Any] = {
                "database opened": any(c.connection is not None for c in connections.all()),
            }
            if measured_from is not None:
                now = cache.stats()
                stats["hits"] = now.hits - measured_from.hits
                stats["misses"] = now.misses - measured_from.misses
                stats["l1 hits"] = now.l1_hits - measured_from.l1_hits
            conn.send(stats)
        elif command[0] == "stampede":
            conn.send(client_stampede(command[1], command[2]))
        else:
            break
    cache.reset()  # close it (and its bus) before the server goes away
    conn.close()


def client_stampede(path: str, clients: int) -> list[float]:
    """Latencies of ``clients`` test clients in threads requesting ``path`` at once."""
    from django.test import Client

    barrier = threading.Barrier(clients)
    latencies: list[float] = []

    def one() -> None:
        client = Client()
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


class WorkerPool:
    """One spawned worker process per contender, each answering ``("run", ops)``,
    ``("direct", ops)``, ``("stats",)`` and ``("stop",)`` over a pipe (see ``client_worker``);
    the Flask benchmark uses it too."""

    def __init__(self, worker: Callable[..., None], args: dict[str, tuple[Any, ...]]) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: dict[str, Connection] = {}
        self.processes = []
        for name, worker_args in args.items():
            parent, child = ctx.Pipe()
            process = ctx.Process(target=worker, args=(child, *worker_args))
            process.start()
            if parent.recv() != "ready":
                raise RuntimeError(f"{name}: the worker did not start")
            self.pipes[name] = parent
            self.processes.append(process)

    def measure(
        self, rounds: int, ops: int
    ) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, Any]]:
        """Interleaved rounds through the client and calling the view directly, then each
        worker's stats; the workers are stopped afterwards."""

        def remote(name: str, how: str) -> Callable[[], float]:
            def run() -> float:
                self.pipes[name].send((how, ops))
                seconds: float = self.pipes[name].recv()
                return seconds

            return run

        times = interleave({name: remote(name, "run") for name in self.pipes}, rounds)
        direct = interleave({name: remote(name, "direct") for name in self.pipes}, rounds)
        for pipe in self.pipes.values():
            pipe.send(("stats",))
        stats = {name: pipe.recv() for name, pipe in self.pipes.items()}
        for pipe in self.pipes.values():
            pipe.send(("stop",))
        for process in self.processes:
            process.join()
        return times, direct, stats


def test_client_hits(redis_base: str, middleware: str, rounds: int, ops: int) -> None:
    count = counter(redis_base)
    pool = WorkerPool(
        client_worker,
        {
            name: (django_env(redis_base, l1, middleware), path)
            for name, (path, l1) in PAGES.items()
        },
    )
    renders_before = {v: executions(count, f"page:{v}") for v in ("cache_page", "cache_view")}
    times, direct, stats = pool.measure(rounds, ops)
    renders = {v: executions(count, f"page:{v}") - n for v, n in renders_before.items()}

    print(
        f"\n1. A cached page's hits through the Django test client ({middleware} middleware; "
        f"{rounds} rounds x {ops} requests per contender)"
    )
    report(times, unit_ops=ops, targets=TARGETS, upper_bounds=bounds(CLIENT_BOUND))
    print(
        f"  views run while measuring: cache_page {renders['cache_page']}, "
        f"cache_view {renders['cache_view']} (0 = every request was a hit)"
    )
    for name in ("cacheplug cache_view", "cacheplug cache_view, L1 tier on"):
        s = stats[name]
        print(
            f"  {name}: {s['hits']:,} hits ({s['l1 hits']:,} from L1), {s['misses']} misses "
            "while measuring (1 and 1b)"
        )
    opened = [name for name, s in stats.items() if s["database opened"]]
    print(f"  database connection opened: {', '.join(opened) if opened else 'by none'}")
    print(
        f"\n1b. The same views called directly with a RequestFactory request: the decorators "
        f"alone,\n    no test client, no middleware ({rounds} rounds x {ops} calls)"
    )
    report(
        direct,
        unit_ops=ops,
        upper_bounds=[
            *bounds(DIRECT_BOUND),
            (L1, LANGUAGE_BOUND, None),
        ],
    )
    print(BOUND_NOTE)


def interleave(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each contender's figure per round, contenders in shuffled order each round."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders.items())
    shuffle = random.Random(7).shuffle
    for _ in range(rounds):
        shuffle(order)  # no contender always runs first or right after a given other
        for name, fn in order:
            times[name].append(fn())
    return times


def report(
    times: dict[str, list[float]],
    *,
    unit_ops: int = 0,
    baseline: str = BASELINE,
    targets: dict[str, float] | None = None,
    upper_bounds: Sequence[tuple[str, str, float | None]] = (),
) -> None:
    """One line per contender: median requests/s, and the median over rounds of its
    per-round requests/s ratio to ``baseline`` (checked against ``targets``, by name).
    ``times`` are seconds per ``unit_ops`` requests, or (``unit_ops`` 0) requests/s.
    ``upper_bounds``: ``(contender, its upper bound, most)``: the contender's time per request
    over the bound's (median of the per-round ratios), checked against ``most`` if given; a
    target above what its bound reaches is said to be."""

    def rates(name: str) -> list[float]:
        return [unit_ops / t for t in times[name]] if unit_ops else times[name]

    def ratio(name: str, to: str) -> float:
        return statistics.median(v / b for v, b in zip(rates(name), rates(to), strict=True))

    for name in times:
        per_second = statistics.median(rates(name))
        line = f"  {name:<40} {per_second:9,.0f} req/s  {1e6 / per_second:8.1f} us/req"
        if name == baseline:
            print(f"{line}   1.00x (baseline)")
            continue
        found = ratio(name, baseline)
        target = (targets or {}).get(name)
        verdict = ""
        if target is not None:
            verdict = f"  target >= {target:.2f}x: {'OK' if found >= target else 'MISSED'}"
        print(f"{line}   {found:.2f}x{verdict}")
    for fast, upper, most in upper_bounds:
        cost = ratio(upper, fast)  # per request: the contender's time over the bound's
        check = (
            "" if most is None else f"; target <= {most:.2f}x: {'OK' if cost <= most else 'MISSED'}"
        )
        print(f"  {fast!r}: {cost:.2f}x the time per request of {upper!r}{check}")
        target = (targets or {}).get(fast)
        if target is not None and ratio(upper, baseline) < target:
            print(
                f"    its target ({target:.2f}x {baseline!r}) is above what the bound itself "
                f"reaches ({ratio(upper, baseline):.2f}x)"
            )


# -- 2. gunicorn ----------------------------------------------------------------------------


class Gunicorn:
    """A gunicorn serving ``app`` (``django_bench`` by default) on a free loopback port,
    configured by ``env``: ``workers`` sync workers, or gthread workers of ``threads``
    threads each."""

    def __init__(
        self,
        env: dict[str, str],
        workers: int,
        threads: int,
        app: str = "django_bench.wsgi:application",
    ) -> None:
        self.port = free_port()
        self.command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            "sync" if threads == 1 else "gthread",
            "--threads",
            str(threads),
            "--chdir",
            ROOT,
            "--pythonpath",
            f"{BENCH_DIR},{ROOT}",
            "--log-level",
            "warning",
            app,
        ]
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        self.process = subprocess.Popen(self.command, env=self.env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with code {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"gunicorn did not listen on port {self.port} in 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: workers close their caches
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class HttpClient:
    """One keep-alive HTTP/1.1 connection that GETs a path and reads the response (lean:
    the load generator shares the machine's CPUs with the servers)."""

    def __init__(self, port: int, path: str, timeout: float = 30) -> None:
        self.port = port
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/html\r\n\r\n"
        ).encode()
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = b""

    def connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def get(self) -> tuple[int, bytes]:
        """(status, body)."""
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        self.sock.sendall(self.request)
        end = self._fill_until(b"\r\n\r\n", 0)
        head = self.buffer[:end].decode("latin-1").lower().split("\r\n")
        self.buffer = self.buffer[end + 4 :]
        length = -1
        chunked = close = False
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                close = "close" in value
        if chunked:
            body = b""
            while True:
                line_end = self._fill_until(b"\r\n", 0)
                size = int(self.buffer[:line_end].split(b";")[0], 16)
                self._fill_to(line_end + 2 + size + 2)
                body += self.buffer[line_end + 2 : line_end + 2 + size]
                self.buffer = self.buffer[line_end + 2 + size + 2 :]
                if size == 0:
                    break
        elif length >= 0:
            self._fill_to(length)
            body, self.buffer = self.buffer[:length], self.buffer[length:]
        else:  # neither: the body runs to the end of the connection
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
            body, close = self.buffer, True
        if close:
            self.close()
        return int(head[0].split()[1]), body

    def _recv(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def _fill_until(self, marker: bytes, start: int) -> int:
        while (found := self.buffer.find(marker, start)) < 0:
            self._recv()
        return found

    def _fill_to(self, size: int) -> None:
        while len(self.buffer) < size:
            self._recv()


def load(port: int, path: str, connections: int, duration: float) -> float:
    """Requests/s served to ``connections`` keep-alive connections over ``duration``."""
    served = [0] * connections
    errors: list[str] = []
    clients = [HttpClient(port, path) for _ in range(connections)]
    for client in clients:
        client.connect()
    barrier = threading.Barrier(connections + 1)

    def loop(index: int) -> None:
        client = clients[index]
        barrier.wait()
        deadline = time.monotonic() + duration
        n = 0
        try:
            while time.monotonic() < deadline:
                status, _ = client.get()
                if status != 200:
                    errors.append(f"status {status}")
                    break
                n += 1
        except Exception as exc:  # reported below, once
            errors.append(repr(exc))
        finally:
            served[index] = n
            client.close()

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(connections)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.monotonic()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    if errors:
        raise RuntimeError(f"GET {path} on port {port}: {errors[0]}")
    return sum(served) / elapsed


def http_hits(
    redis_base: str,
    middleware: str,
    workers: int,
    threads: int,
    connections: int,
    duration: float,
    rounds: int,
) -> None:
    count = counter(redis_base)
    with (
        Gunicorn(django_env(redis_base, False, middleware), workers, threads) as plain,
        Gunicorn(django_env(redis_base, True, middleware), workers, threads) as with_l1,
    ):
        servers = {name: with_l1 if l1 else plain for name, (_, l1) in PAGES.items()}
        for name, (path, _) in PAGES.items():  # warm up: fill, connect, fill each L1
            load(servers[name].port, path, connections, min(duration, 1.0))
        renders_before = {v: executions(count, f"page:{v}") for v in ("cache_page", "cache_view")}

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
    report(times, targets=TARGETS, upper_bounds=bounds(HTTP_BOUND))
    print(
        f"  views run while measuring: cache_page {renders['cache_page']}, "
        f"cache_view {renders['cache_view']} (0 = every request was a hit)"
    )
    for label, per_worker in seen.items():
        hits = sum(s["hits"] for s in per_worker.values())
        l1_hits = sum(s["l1_hits"] for s in per_worker.values())
        misses = sum(s["misses"] for s in per_worker.values())
        print(
            f"  cacheplug in the {label} server's {len(per_worker)} of {workers} workers "
            f"reached: {hits:,} hits ({l1_hits:,} from L1), {misses} misses"
        )


def worker_stats(port: int, workers: int) -> dict[int, dict[str, int]]:
    """cacheplug's counters in each gunicorn worker (by pid), asked by concurrent requests so
    that every worker answers some."""
    found: dict[int, dict[str, int]] = {}

    def ask() -> None:
        client = HttpClient(port, "/stats/")
        status, body = client.get()
        client.close()
        if status == 200:
            counters = json.loads(body)
            found[counters.pop("pid")] = counters

    for _ in range(20):
        pool = [threading.Thread(target=ask) for _ in range(workers * 4)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        if len(found) >= workers:
            break
    return found


def server_shape(workers: int, threads: int) -> str:
    if threads == 1:  # gunicorn's sync worker closes the connection after each response
        return f"{workers} sync workers, a new connection per request"
    return f"{workers} gthread workers x {threads} threads, keep-alive"


# -- 3. Stampede ----------------------------------------------------------------------------


def http_stampede(port: int, path: str, clients: int) -> list[float]:
    """Latencies of ``clients`` connections requesting ``path`` at the same moment."""
    connections = [HttpClient(port, path) for _ in range(clients)]
    for client in connections:
        client.connect()
    barrier = threading.Barrier(clients)
    latencies: list[float] = []
    errors: list[str] = []

    def one(client: HttpClient) -> None:
        barrier.wait()
        started = time.perf_counter()
        try:
            status, _ = client.get()
            if status != 200:
                errors.append(f"status {status}")
        except Exception as exc:  # reported below, once
            errors.append(repr(exc))
        latencies.append(time.perf_counter() - started)
        client.close()

    pool = [threading.Thread(target=one, args=(c,)) for c in connections]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise RuntimeError(f"GET {path}: {errors[0]} ({len(errors)} errors)")
    return latencies


def stampede(
    redis_base: str,
    middleware: str,
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
        for variant in ("cache_page", "cache_view"):
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
            f"  {state:<8} {variant:<11} view executions {ran:3d}   "
            f"latency p50 {p50:6.1f} ms  max {ordered[-1] * 1e3:6.1f} ms"
        )
        if variant == "cache_view":
            line += f"   target == 1: {'OK' if ran == 1 else 'MISSED'}"
        print(line)


def test_client_stampede(redis_base: str, middleware: str, clients: int) -> None:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    env = django_env(redis_base, False, middleware)
    process = ctx.Process(target=client_worker, args=(child, env, "/cache_view/"))
    process.start()
    if parent.recv() != "ready":
        raise RuntimeError("the stampede worker did not start")

    def run(path: str, n: int) -> list[float]:
        parent.send(("stampede", path, n))
        latencies: list[float] = parent.recv()
        return latencies

    try:
        stampede(redis_base, middleware, clients, run, "test client in threads of 1 process")
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
    parser.add_argument("--middleware", choices=("default", "none"), default="default")
    parser.add_argument("--skip-http", action="store_true", help="test client only")
    args = parser.parse_args()
    # The stampede's server takes every client at once: gthread workers with enough threads.
    stampede_threads = max(2, -(-args.clients // args.workers))

    import django
    import django_redis

    has_gunicorn = importlib.util.find_spec("gunicorn") is not None
    gunicorn_version = "not installed"
    if has_gunicorn:
        import gunicorn

        gunicorn_version = gunicorn.__version__
    print(
        f"python {sys.version.split()[0]}, Django {django.__version__}, django-redis "
        f"{'.'.join(map(str, django_redis.VERSION))}, redis-py {redis.__version__}, hiredis "
        f"{'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}, gunicorn {gunicorn_version}, "
        f"{os.cpu_count()} CPUs"
    )

    def run(url: str) -> None:
        base = url.rstrip("/")
        if base.rsplit("/", 1)[-1].isdigit():
            base = base.rsplit("/", 1)[0]  # the benchmark picks its own databases
        test_client_hits(base, args.middleware, args.rounds, args.ops)
        if args.skip_http:
            return
        if not has_gunicorn:
            print(
                "\n2. Through gunicorn: SKIPPED, gunicorn is not installed "
                "(pip install gunicorn, or pip install -e '.[bench]')"
            )
            test_client_stampede(base, args.middleware, args.clients)
            return
        http_hits(
            base,
            args.middleware,
            args.workers,
            args.http_threads,
            args.connections,
            args.duration,
            args.http_rounds,
        )
        env = django_env(base, False, args.middleware)
        with Gunicorn(env, args.workers, stampede_threads) as server:
            for _ in range(3):  # every thread of every worker: connected, both caches built
                for path in ("/floor/", "/cache_page/", "/cache_view/"):
                    http_stampede(server.port, path, args.clients)
            stampede(
                base,
                args.middleware,
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
