"""What the Django and Flask shop demos share: a threaded local server, the burst of
concurrent requests, the table row, and serving until Ctrl-C."""

from __future__ import annotations

import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


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


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def burst(url: str, clients: int) -> list[float]:
    """``clients`` concurrent GETs of ``url``; their latencies in ms, sorted."""
    barrier = threading.Barrier(clients)
    latencies: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
        with lock:
            latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(latencies)


def print_header(clients: int) -> None:
    print(f"{clients} clients at once on the expired catalog page (the view takes 50 ms):")
    print(f"  {'':<18} {'view runs':>9} {'DB queries':>10} {'p50 ms':>8} {'p99 ms':>8}")


def print_row(label: str, runs: int, queries: int, latencies: list[float]) -> None:
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"  {label:<18} {runs:>9} {queries:>10} {statistics.median(latencies):>8.1f} {p99:>8.1f}")


def keep_serving(server: WSGIServer, base: str, once: bool) -> None:
    """Stop at once with ``once``; else serve until Ctrl-C."""
    if not once:
        print(f"\nThe shop keeps running on {base}/ — Ctrl-C stops it.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    server.shutdown()
