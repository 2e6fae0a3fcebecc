"""What the Django and Flask shop demos share: the shop's worker processes (threaded local
WSGI servers, each counting its requests, view runs and DB queries), the burst of concurrent
requests spread over them, the table, the edit reaching the cached page, and serving until
Ctrl-C.

One worker serves in the demo's own process (the embedded store lives in one process). With a
shared store (``--redis URL``) each worker is a process of its own, started as
``demo.py --worker``, on its own port; the burst client spreads its requests over them
round-robin and the table adds up what every worker counted.
"""

from __future__ import annotations

import contextlib
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cacheplug.integration import OUTBOX_TABLE, recording_calls

App = Callable[..., Any]

# The shops' rows, the same for both.
CATEGORIES = ("coffee", "kitchen", "tea")
PRODUCTS = (  # name, price in cents, categories, reviews (rating, text)
    ("Espresso machine", 49_900, ("coffee", "kitchen"), ((5, "Cafe quality"), (4, "Loud"))),
    ("Grinder", 12_900, ("coffee",), ((5, "Even grind"),)),
    ("Kettle", 3_900, ("kitchen", "tea"), ((3, "Slow to boil"),)),
    ("French press", 2_900, ("coffee",), ()),
    ("Teapot", 2_500, ("tea",), ((4, "Pours well"),)),
)
GENERATED = 240
"""Products added to the named ones, so that the catalog costs what a real page costs: its
rows read from the database (with their categories) and rendered, not a sleep."""


def catalog_products() -> Iterator[tuple[str, int, tuple[str, ...], tuple[tuple[int, str], ...]]]:
    """The named products, then ``GENERATED`` more (cheaper, so the named ones stay the
    bestsellers; without reviews, so the top rated stay the same)."""
    yield from PRODUCTS
    for number in range(1, GENERATED + 1):
        category = CATEGORIES[number % len(CATEGORIES)]
        yield f"Mug no. {number:03d}", 500 + number * 3, (category,), ()


STATS_PATH = "/__demo__/stats"  # answered by ``counting``, never by the shop


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops a burst's connections (1 s retries)


def serve(app: Callable[..., Any], port: int) -> tuple[WSGIServer, str]:
    """``app`` served on 127.0.0.1 in a background thread: the server and its base URL."""
    server = make_server("127.0.0.1", port, app, _ThreadingServer, _QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def fetch(url: str, host: str | None = None, timeout: float = 10) -> str:
    """GET ``url``, sending ``host`` as the Host header if given."""
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return str(response.read().decode())


def public_host(urls: list[str]) -> str:
    """The Host every request names, whichever worker gets it, as behind a load balancer: the
    first worker's address (a page's cache key includes its host)."""
    return urllib.parse.urlsplit(urls[0]).netloc


class Counted:
    """What one worker process counts: requests served, view runs, DB queries, and how long
    each request that read a page through the cache waited for it."""

    def __init__(self, view_runs: Callable[[], int], reset_view_runs: Callable[[], None]) -> None:
        self._view_runs = view_runs
        self._reset_view_runs = reset_view_runs
        self._lock = threading.Lock()
        self.requests = 0
        self.queries = 0
        self.waits: list[float] = []

    def query(self, sql: str) -> None:
        """A statement sent; the outbox's are not the pages' (its relay reads the table
        about every second on a connection of its own, and may land within a burst)."""
        if OUTBOX_TABLE in sql:
            return
        with self._lock:
            self.queries += 1

    def request(self) -> None:
        with self._lock:
            self.requests += 1

    def waited(self, ms: float) -> None:
        with self._lock:
            self.waits.append(ms)

    def read(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "view_runs": self._view_runs(),
            "queries": self.queries,
            "waits": list(self.waits),
        }

    def reset(self) -> None:
        with self._lock:
            self.requests = self.queries = 0
            self.waits = []
            self._reset_view_runs()


def counting(app: App, counted: Counted) -> App:
    """``app`` counting its requests, and answering ``STATS_PATH`` with what it counted
    (``?reset=1``: then starting again from zero)."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != STATS_PATH:
            counted.request()
            with recording_calls() as log:
                body = app(environ, start_response)
            # A page read through the cache that did not render it: its time is the wait
            # for another request's (or process's) render, or a hit's fraction of a ms.
            reads = [call for call in log.calls if call.page and call.outcome != "loaded"]
            if reads and not any(call.page and call.outcome == "loaded" for call in log.calls):
                counted.waited(sum(call.seconds for call in reads) * 1000)
            return body
        body = json.dumps(counted.read()).encode()
        if "reset=1" in environ.get("QUERY_STRING", ""):
            counted.reset()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return wsgi


METRICS_PATH = "/metrics"


def with_metrics(
    app: App, cache: Any, relays: Callable[[], Mapping[str, Any]] | None = None
) -> App:
    """``app`` answering ``METRICS_PATH`` with ``cache``'s Prometheus metrics
    (``cacheplug.prometheus.CacheCollector``: this process's counters and the fleet's, and
    the backlog of the outbox ``relays()`` gives)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from cacheplug.prometheus import CacheCollector

    registry = CollectorRegistry()
    registry.register(CacheCollector({"shop": cache}, relays=relays))

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != METRICS_PATH:
            return app(environ, start_response)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [generate_latest(registry)]

    return wsgi


@contextlib.contextmanager
def local_worker(app: App, port: int) -> Iterator[list[str]]:
    """One worker in this process: its base URL."""
    server, base = serve(app, port)
    try:
        yield [base]
    finally:
        server.shutdown()


@contextlib.contextmanager
def worker_processes(command: list[str], count: int, port: int) -> Iterator[list[str]]:
    """``count`` processes running ``command`` plus ``--port``, each a worker that prints its
    base URL (``run_worker``): their base URLs. Closing their stdin stops them."""
    workers: list[subprocess.Popen[str]] = []
    try:
        for n in range(count):  # all started before any is waited for: they start in parallel
            worker = subprocess.Popen(
                [*command, "--port", str(port + n if port else 0)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            workers.append(worker)
        urls = []
        for n, worker in enumerate(workers, 1):
            assert worker.stdout is not None
            line = worker.stdout.readline().strip()
            if not line.startswith("http://"):
                raise SystemExit(f"worker {n} did not start (exit code {worker.wait()})")
            urls.append(line)
        yield urls
    finally:
        for worker in workers:
            with contextlib.suppress(OSError):
                assert worker.stdin is not None
                worker.stdin.close()
        for worker in workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def run_worker(app: App, port: int) -> None:
    """Serve ``app`` until stdin closes (the demo is done, or gone); print the base URL first."""
    server, base = serve(app, port)
    print(base, flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the demo's whole group
        sys.stdin.read()
    server.shutdown()


def worker_stats(urls: Iterable[str], *, reset: bool = False) -> list[dict[str, Any]]:
    query = "?reset=1" if reset else ""
    return [json.loads(fetch(url + STATS_PATH + query)) for url in urls]


def timed_fetch(url: str, host: str) -> float:
    """How long one GET of ``url`` took, in ms."""
    started = time.perf_counter()
    fetch(url, host)
    return (time.perf_counter() - started) * 1000


def burst(urls: list[str], clients: int, host: str) -> list[float]:
    """``clients`` concurrent GETs naming ``host``, spread round-robin over ``urls``; their
    latencies in ms, sorted."""
    barrier = threading.Barrier(clients)
    latencies: list[float] = []
    lock = threading.Lock()

    def one(url: str) -> None:
        barrier.wait()
        started = time.perf_counter()
        fetch(url, host, timeout=30)
        with lock:
            latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=one, args=(urls[n % len(urls)],)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(latencies)


def print_row(
    label: str, runs: int, queries: int, latencies: list[float], waits: list[float]
) -> None:
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    waited = f"{statistics.median(waits):.1f}/{waits[-1]:.1f}" if waits else "-"
    print(
        f"  {label:<18} {runs:>9} {queries:>10} {statistics.median(latencies):>8.1f} {p99:>8.1f}"
        f" {waited:>12}"
    )


def run_demo(
    *,
    urls: list[str],
    clients: int,
    expire: Callable[[], None],
    rename: Callable[[str, str], None],
    renamed_by: str,
) -> bool:
    """The stampede with and without cacheplug, then ``rename`` reaching the cached catalog
    page on every worker. True if every worker showed the new name."""
    workers = len(urls)
    spread = f", spread over {workers} worker processes" if workers > 1 else ""
    host = public_host(urls)
    render = min(timed_fetch(urls[0] + "/catalog/uncached/", host) for _ in range(3))
    print(f"{clients} clients at once on the catalog page just invalidated", end=" ")
    shown = len(PRODUCTS) + GENERATED
    print(f"(one render: {render:.0f} ms, {shown} products read and shown){spread}:")
    print(
        f"  {'':<18} {'view runs':>9} {'DB queries':>10} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'waited ms':>12}"
    )
    served: list[int] = []
    for label, path in (("with cacheplug", "/catalog/"), ("without", "/catalog/uncached/")):
        expire()
        worker_stats(urls, reset=True)
        latencies = burst([url + path for url in urls], clients, host)
        counts = worker_stats(urls)
        runs = sum(count["view_runs"] for count in counts)
        waits = sorted(wait for count in counts for wait in count["waits"])
        print_row(label, runs, sum(count["queries"] for count in counts), latencies, waits)
        served = [count["requests"] for count in counts]
    print(
        "  waited ms: p50/max of the time a request spent waiting for another request's render"
        "\n  of the page (another process's, on Redis), part of its latency; the rest is HTTP"
    )
    if workers > 1:
        each = "/".join(str(n) for n in served)
        print(f"  (summed over all {workers} workers; requests served by each: {each})")

    for url in urls:  # every worker has the page cached, with the old name
        assert "Grinder" in fetch(url + "/catalog/", host)
    rename("Grinder", "Burr grinder")  # no invalidation written by hand
    shown = ["Burr grinder" in fetch(url + "/catalog/", host) for url in urls]
    where = f" on all {workers} workers" if workers > 1 else ""
    if all(shown):
        print(f"\nAfter {renamed_by} renaming 'Grinder': the cached page shows Burr grinder{where}")
    else:
        stale = shown.count(False)
        print(f"\nAfter {renamed_by} renaming 'Grinder': {stale} worker(s) still show the OLD name")
    return all(shown)


def keep_serving(urls: list[str], once: bool, notes: Iterable[str] = ()) -> None:
    """Return at once with ``once``; else serve until Ctrl-C."""
    if once:
        return
    if len(urls) == 1:
        print(f"\nThe shop keeps running on {urls[0]}/")
    else:
        print(f"\nThe shop keeps running on {urls[0]}/ (and its other workers on", end=" ")
        print(", ".join(f"{url}/" for url in urls[1:]) + ")")
    for note in notes:
        print(note)
    # Even when started where SIGINT is ignored (a background job, some CI runners).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # still cleaning up on the way out
    # Said only once a Ctrl-C is caught: one sent as soon as it is read ends the demo cleanly.
    with contextlib.suppress(KeyboardInterrupt):
        print("Ctrl-C stops it.", flush=True)
        while True:
            time.sleep(3600)
