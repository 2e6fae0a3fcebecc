"""The Flask shop demo: a stampede averted and a commit invalidating a cached page, measured.

    python example_project/flask_shop/demo.py [--once] [--redis URL] [--workers N]
                                              [--clients N] [--port P] [--metrics] [--edge]

The same steps as the Django shop's demo, on Flask and Flask-SQLAlchemy: the same rows
(categories, products, reviews), the same table, a commit renaming a product. ``--redis URL``
(or ``CACHEPLUG_STORE``) runs the shop on Redis in ``--workers`` processes (3 by default).
``--edge`` runs a real Varnish in front of the shop (of its first worker), as the Django demo.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from demo_edge import plan_edge, start_varnish, through_varnish  # noqa: E402
from demo_support import (  # noqa: E402
    CATEGORIES,
    Counted,
    catalog_products,
    counting,
    keep_serving,
    local_worker,
    run_demo,
    run_worker,
    with_metrics,
    worker_processes,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="run the demo and exit")
    parser.add_argument("--redis", metavar="URL", help="run on Redis, in several processes")
    parser.add_argument("--workers", type=int, default=0, help="default: 3 on Redis, else 1")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--metrics", action="store_true", help="serve Prometheus metrics at /metrics"
    )
    parser.add_argument(
        "--edge", action="store_true", help="run Varnish in front of the (first) worker"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.redis:
        os.environ["CACHEPLUG_STORE"] = args.redis
    if args.metrics:
        os.environ["SHOP_METRICS"] = "1"  # worker processes inherit it
    varnish_port = 0
    if args.edge and not args.worker:  # before create_app() reads it; workers inherit it
        args.port, varnish_port = plan_edge(args.port)
    with contextlib.ExitStack() as cleanup:
        if "FLASK_SHOP_DB" not in os.environ:  # worker processes inherit the demo's
            folder = tempfile.mkdtemp(prefix="cacheplug-demo-")
            cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
            os.environ["FLASK_SHOP_DB"] = f"sqlite:///{Path(folder) / 'shop.sqlite3'}"
        sys.exit(demo(parser, args, cleanup, varnish_port))


def demo(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    cleanup: contextlib.ExitStack,
    varnish_port: int = 0,
) -> int:
    from flask_shop import create_app
    from flask_shop.extensions import cache, db
    from flask_shop.models import Category, Product, Review
    from flask_shop.views import VIEW_RUNS
    from sqlalchemy import event

    app = create_app()
    # Before the database's folder goes: its outbox relays stop (they delete delivered rows).
    cleanup.callback(cache.close, app)
    counted = Counted(lambda: VIEW_RUNS["catalog"], lambda: VIEW_RUNS.update(catalog=0))
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda _c, _r, sql, *_: counted.query(sql))
        core = cache.cache
        store = core.store
    served = counting(app, counted)
    if os.environ.get("SHOP_METRICS") == "1":

        def outbox_relays() -> Any:
            with app.app_context():  # the app's relays, asked at each scrape
                return cache.outbox_relays()

        served = with_metrics(served, core, relays=outbox_relays)
    if args.worker:
        run_worker(served, args.port)
        return 0

    workers = args.workers or (3 if store.shared else 1)
    if workers > 1 and not store.shared:
        parser.error("several workers need a shared store: pass --redis URL")
    # Up before the first commit, whose purge it gets; stopped after the workers.
    varnish = start_varnish(cleanup, args.port, varnish_port) if varnish_port else None
    with app.app_context():
        categories = {name: Category(name=name) for name in CATEGORIES}
        for name, cents, in_categories, reviews in catalog_products():
            product = Product(name=name, price_cents=cents)
            product.categories = [categories[category] for category in in_categories]
            product.reviews = [Review(rating=rating, text=text) for rating, text in reviews]
            db.session.add(product)
            # A commit per product: one invalidation of all 245 rows' tags would be refused
            # (more than 64 tags), and held and retried with every later commit.
            db.session.commit()
        cache.bump()  # on Redis, nothing left over from an earlier run is served

    def expire() -> None:
        with app.app_context():
            cache.invalidate_tags(*cache.tags_for(None, [Product]))

    def rename(old: str, new: str) -> None:
        with app.app_context():
            product = db.session.scalars(db.select(Product).filter_by(name=old)).one()
            product.name = new
            db.session.commit()  # the commit reaches the cached page

    if workers > 1:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
        urls = cleanup.enter_context(worker_processes(command, workers, args.port))
    else:
        urls = cleanup.enter_context(local_worker(served, args.port))
    processes = f", {workers} worker processes" if workers > 1 else ""
    print(f"Flask shop on {urls[0]}  (cacheplug store: {type(store).__name__}{processes})\n")
    ok = run_demo(
        urls=urls, clients=args.clients, expire=expire, rename=rename, renamed_by="a commit"
    )
    if varnish is not None:

        def flush(timeout: float) -> bool:
            with app.app_context():
                purges = cache.edge_purges()
            return purges is not None and purges.flush(timeout)

        ok = through_varnish(varnish.url, rename=rename, renamed_by="a commit", flush=flush) and ok
    notes = [f"Cache dashboard: {urls[0]}/cacheplug/"]
    if os.environ.get("SHOP_METRICS") == "1":
        notes.append(f"Metrics: {urls[0]}/metrics")
    if varnish is not None:
        notes.append(f"Through Varnish: {varnish.url}/ (in front of {urls[0]})")
    keep_serving(urls, args.once, notes=notes)
    return 0 if ok else 1


if __name__ == "__main__":
    main()
