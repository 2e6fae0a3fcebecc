"""The Flask shop demo: a stampede averted and a commit invalidating a cached page, measured.

    python example_project/flask_shop/demo.py [--once] [--clients N] [--port P]

The same steps as the Django shop's demo, on Flask and Flask-SQLAlchemy. Set
``CACHEPLUG_STORE`` to run it on Redis.
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
    database = Path(tempfile.mkdtemp()) / "shop.sqlite3"
    os.environ.setdefault("FLASK_SHOP_DB", f"sqlite:///{database}")
    os.environ.setdefault("SHOP_SLOW_VIEW", "0.05")

    from flask_shop import create_app
    from flask_shop.extensions import cache, db
    from flask_shop.models import Product
    from flask_shop.views import VIEW_RUNS
    from sqlalchemy import event

    app = create_app()
    queries = [0]
    with app.app_context():
        for name, cents in (("Espresso machine", 49_900), ("Grinder", 12_900), ("Kettle", 3_900)):
            db.session.add(Product(name=name, price_cents=cents))
        db.session.commit()

        def count(*_: object) -> None:
            queries[0] += 1

        event.listen(db.engine, "before_cursor_execute", count)
    server = make_server("127.0.0.1", args.port, app, _ThreadingServer, _QuietHandler)
    base = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()

    with app.app_context():
        store = type(cache.cache.store).__name__
    print(f"Flask shop on {base}  (cacheplug store: {store})\n")
    print(f"{args.clients} clients at once on the expired catalog page (the view takes 50 ms):")
    print(f"  {'':<18} {'view runs':>9} {'DB queries':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for label, path in (("with cacheplug", "/catalog/"), ("without", "/catalog/uncached/")):
        with app.app_context():
            cache.invalidate_tags(*cache.tags_for(None, [Product]))  # the page has expired
        VIEW_RUNS["catalog"] = 0
        queries[0] = 0
        latencies = burst(base + path, args.clients)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"  {label:<18} {VIEW_RUNS['catalog']:>9} {queries[0]:>10} "
            f"{statistics.median(latencies):>8.1f} {p99:>8.1f}"
        )

    page = urllib.request.urlopen(base + "/catalog/", timeout=10).read().decode()
    assert "Grinder" in page
    with app.app_context():
        grinder = db.session.scalars(db.select(Product).filter_by(name="Grinder")).one()
        grinder.name = "Burr grinder"
        db.session.commit()  # no invalidation written by hand: the commit reaches the page
    page = urllib.request.urlopen(base + "/catalog/", timeout=10).read().decode()
    shown = "Burr grinder" if "Burr grinder" in page else "the OLD name (bug!)"
    print(f"\nAfter a commit renaming 'Grinder': the cached page shows {shown}")
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
