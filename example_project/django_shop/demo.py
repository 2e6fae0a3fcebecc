"""The Django shop demo: a stampede averted and a save invalidating a cached page, measured.

    python example_project/django_shop/demo.py [--once] [--clients N] [--port P]

It seeds a small SQLite shop, serves it on 127.0.0.1, fires ``--clients`` concurrent requests
at the expired catalog page with cacheplug and then without it, prints view executions,
database queries and latencies, renames a product through the ORM and shows the cached page
change on the next request. Then it keeps serving (Ctrl-C stops it) unless ``--once``.
Set ``CACHEPLUG_STORE`` to run it on Redis.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops a burst's connections (1 s retries)


def burst(url: str, clients: int) -> list[float]:
    """``clients`` concurrent GETs of ``url``; their latencies in ms."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="run the demo and exit")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    args = parser.parse_args()
    os.environ["DJANGO_SETTINGS_MODULE"] = "django_shop.settings"  # this shop, whatever else
    os.environ.setdefault("DJANGO_SHOP_DB", str(Path(tempfile.mkdtemp()) / "shop.sqlite3"))
    os.environ.setdefault("SHOP_SLOW_VIEW", "0.05")

    import django

    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.db.backends.signals import connection_created
    from shop.models import Category, Product
    from shop.views import VIEW_RUNS

    from cacheplug_django import cache

    call_command("migrate", verbosity=0)
    kitchen = Category.objects.create(name="kitchen")
    for name, cents in (("Espresso machine", 49_900), ("Grinder", 12_900), ("Kettle", 3_900)):
        Product.objects.create(name=name, price_cents=cents).categories.add(kitchen)

    queries = [0]

    def count_queries(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        queries[0] += 1
        return execute(sql, params, many, context)

    def counted(sender: object, connection: object, **_: object) -> None:
        connection.execute_wrappers.append(count_queries)  # type: ignore[attr-defined]

    connection_created.connect(counted, weak=False)  # the server threads' connections too
    server = make_server(
        "127.0.0.1", args.port, get_wsgi_application(), _ThreadingServer, _QuietHandler
    )
    base = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()

    store = type(cache.core.store).__name__
    print(f"Django shop on {base}  (cacheplug store: {store})\n")
    print(f"{args.clients} clients at once on the expired catalog page (the view takes 50 ms):")
    print(f"  {'':<18} {'view runs':>9} {'DB queries':>10} {'p50 ms':>8} {'p99 ms':>8}")
    rows = []
    for label, path in (("with cacheplug", "/catalog/"), ("without", "/catalog/uncached/")):
        cache.invalidate_tags(*cache.tags_for(None, [Product]))  # the page has expired
        VIEW_RUNS["catalog"] = 0
        queries[0] = 0
        latencies = burst(base + path, args.clients)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        rows.append((label, VIEW_RUNS["catalog"]))
        print(
            f"  {label:<18} {VIEW_RUNS['catalog']:>9} {queries[0]:>10} "
            f"{statistics.median(latencies):>8.1f} {p99:>8.1f}"
        )

    page = urllib.request.urlopen(base + "/catalog/", timeout=10).read().decode()
    assert "Grinder" in page
    grinder = Product.objects.get(name="Grinder")
    grinder.name = "Burr grinder"
    grinder.save()  # no invalidation written by hand: the save reaches the cached page
    page = urllib.request.urlopen(base + "/catalog/", timeout=10).read().decode()
    print(
        f"\nAfter Product.save() renaming 'Grinder': the cached page shows "
        f"{'Burr grinder' if 'Burr grinder' in page else 'the OLD name (bug!)'}"
    )
    if args.once:
        server.shutdown()
        return
    print(f"\nThe shop keeps running on {base}/ — Ctrl-C stops it.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
