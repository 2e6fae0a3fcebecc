"""The edge tier with a real Varnish: requests/s of a cached page through Varnish against the
app alone, and commit-to-purge latency.

    python benchmarks/edge.py [--rounds 5] [--duration 3] [--connections 16] [--workers 2]
        [--threads 4] [--saves 300] [--rate 50]

The project is ``benchmarks/edge_bench``: the test shop's ``Product`` on a SQLite file, one
catalog page cached by ``cache_view(ttl=300, depends_on=[Product], edge=True)`` on a throwaway
redis-server, served by gunicorn (``--workers`` gthread workers of ``--threads`` threads), with
a throwaway Varnish in front (``example_project/edge/cacheplug.vcl``, vmod_xkey).

1. Requests/s: ``--connections`` keep-alive clients (threads of this process) GET the page for
   ``--duration`` seconds, through Varnish and from gunicorn directly (a cacheplug hit), in
   ``--rounds`` interleaved rounds; the median of each and of the per-round ratio. The load
   generator is Python and shares the machine: it bounds the Varnish figure (a Varnish hit
   costs it far less than it costs the client to make the request).
2. Commit-to-purge: ``--saves`` ``Product.save()`` calls in this process, ``--rate`` a second,
   each waited for: from calling ``save()`` (its ``UPDATE``, the commit, the invalidation in
   Redis) to the end of the ``PURGE`` that dropped the page from Varnish (sent by cacheplug's
   purge thread); p50, p99, max. Every 25th save also checks that the next request through
   Varnish misses and shows the new price.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from django_views import Gunicorn, load  # noqa: E402

from cacheplug.testing import RedisServer, VarnishServer  # noqa: E402

VCL = HERE.parent / "example_project" / "edge" / "cacheplug.vcl"
PAGE = "/catalog/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--saves", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, RedisServer() as redis_server:
        env = {
            "DJANGO_SETTINGS_MODULE": "edge_bench.settings",
            "EDGE_BENCH_REDIS": redis_server.url,
            "EDGE_BENCH_DB": str(Path(folder) / "shop.sqlite3"),
        }
        os.environ.update(env)
        import django

        gunicorn = Gunicorn(env, args.workers, args.threads, app="edge_bench.wsgi:application")
        varnish = VarnishServer(gunicorn.port, vcl=VCL)  # up before any purge is sent
        os.environ["EDGE_BENCH_PURGE"] = gunicorn.env["EDGE_BENCH_PURGE"] = varnish.url + "/"
        varnish.start()
        try:
            django.setup()
            from django.core.management import call_command
            from shop.models import Product

            from cacheplug_django import cache, outbox_relays

            call_command("migrate", run_syncdb=True, verbosity=0)
            for n in range(20):
                Product.objects.create(name=f"product {n:02}", price=n)
            with gunicorn:
                requests_per_second(gunicorn.port, varnish.port, args)
                commit_to_purge(varnish, Product, args.saves, args.rate)
            for relay in outbox_relays().values():
                relay.stop()  # before the database's folder goes
            cache.reset()  # before the Redis server goes
        finally:
            varnish.stop()
            varnish.discard()


def requests_per_second(app_port: int, varnish_port: int, args: argparse.Namespace) -> None:
    contenders: dict[str, Callable[[], float]] = {
        "gunicorn alone (a cacheplug hit, Redis)": lambda: load(
            app_port, PAGE, args.connections, args.duration
        ),
        "through Varnish (an edge hit)": lambda: load(
            varnish_port, PAGE, args.connections, args.duration
        ),
    }
    for run in contenders.values():  # warm up: connections, the page in Redis and Varnish
        load(app_port, PAGE, args.connections, 0.5)
        run()
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders.items())
    shuffle = random.Random(7).shuffle
    for _ in range(args.rounds):
        shuffle(order)
        for name, run in order:
            rates[name].append(run())
    names = list(contenders)
    print(
        f"1. Requests/s of {PAGE}, {args.connections} keep-alive clients, {args.rounds} rounds of "
        f"{args.duration:g} s (gunicorn: {args.workers} gthread workers x {args.threads} threads)"
    )
    for name in names:
        print(f"  {name:<42} {statistics.median(rates[name]):>9,.0f} req/s")
    ratio = statistics.median(b / a for a, b in zip(rates[names[0]], rates[names[1]], strict=True))
    print(f"  through Varnish / gunicorn alone: {ratio:.2f}x (the client bounds the Varnish row)")


def commit_to_purge(varnish: VarnishServer, product_model: type, saves: int, rate: float) -> None:
    from cacheplug_django import edge_purges

    purges = edge_purges()
    if purges is None:
        raise RuntimeError("no edge purges: the cache was not built with EDGE's PURGE_URL")
    done = TimedPurger(purges.purger)
    purges.purger = done
    product = product_model.objects.order_by("name").first()
    latencies: list[float] = []
    checked = 0
    for n in range(saves):
        started_at = time.perf_counter()
        product.price = 1000 + n
        product.save()
        finished = done.wait_after(started_at, timeout=10.0)
        if finished is None:
            raise RuntimeError(f"save {n}: no purge within 10 s")
        latencies.append(finished - started_at)
        if n % 25 == 0:
            with urllib.request.urlopen(varnish.url + PAGE, timeout=10) as answer:
                body = answer.read().decode()
                if answer.headers["X-Cache"] != "MISS" or f": {1000 + n}</li>" not in body:
                    raise RuntimeError(f"save {n}: Varnish still served the old page")
            checked += 1
        pause = 1 / rate - (time.perf_counter() - started_at)
        if pause > 0:
            time.sleep(pause)
    ms = sorted(latency * 1000 for latency in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"\n2. Commit-to-purge: {saves} Product.save() calls at {rate:g}/s, from calling save() "
        "(its UPDATE and commit included) to the end of the PURGE"
    )
    print(f"  p50 {statistics.median(ms):.2f} ms   p99 {p99:.2f} ms   max {ms[-1]:.2f} ms")
    print(f"  {checked} checks through Varnish after a purge: each a MISS with the new price")


class TimedPurger:
    """Wraps the purger cacheplug's purge thread calls: when each purge ended."""

    def __init__(self, purger: object) -> None:
        self.purger = purger
        self.ended: list[float] = []
        self._changed = threading.Condition()

    def purge(self, keys: Sequence[str]) -> None:
        self.purger.purge(keys)  # type: ignore[attr-defined]
        with self._changed:
            self.ended.append(time.perf_counter())
            self._changed.notify_all()

    def wait_after(self, moment: float, timeout: float) -> float | None:
        """When the first purge that ended after ``moment`` ended."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                later = [ended for ended in self.ended if ended > moment]
                if later:
                    return later[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)


if __name__ == "__main__":
    main()
