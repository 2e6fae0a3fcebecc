"""The Django shop demo: a stampede averted and a save invalidating a cached page, measured.

    python example_project/django_shop/demo.py [--once] [--redis URL] [--workers N]
                                               [--clients N] [--port P] [--metrics] [--edge]

It seeds a small SQLite shop (categories, products, reviews, and a demo admin account), serves
it on 127.0.0.1, fires ``--clients`` concurrent requests at the catalog page just invalidated
(as when it expires) with cacheplug and then without it, prints view executions, database
queries and latencies, renames a product through the ORM and shows the cached page change on
the next request. Then it keeps serving (Ctrl-C stops it) unless ``--once``.

``--redis URL`` (or ``CACHEPLUG_STORE``) runs the shop on Redis in ``--workers`` processes (3
by default), each serving on its own port; the table adds up what every process counted.

``--edge`` runs a real Varnish (``example_project/edge/cacheplug.vcl``; needs ``varnishd`` and
vmod_xkey) in front of the shop (of its first worker, with several), gives it the catalog page,
and shows it served by Varnish, then purged there by a save.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

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


def seed() -> str:
    """The shop's rows, and a demo superuser: its password."""
    from django.contrib.auth.models import User
    from shop.models import Category, Product, Review

    categories = {name: Category.objects.create(name=name) for name in CATEGORIES}
    for name, cents, in_categories, reviews in catalog_products():
        product = Product.objects.create(name=name, price_cents=cents)
        product.categories.add(*(categories[category] for category in in_categories))
        for rating, text in reviews:
            Review.objects.create(product=product, rating=rating, text=text)
    password = secrets.token_urlsafe(9)
    User.objects.create_superuser("admin", password=password)
    return password


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
    if args.edge and not args.worker:  # before the settings are read; workers inherit it
        args.port, varnish_port = plan_edge(args.port)
    os.environ["DJANGO_SETTINGS_MODULE"] = "django_shop.settings"  # this shop, whatever else
    with contextlib.ExitStack() as cleanup:
        if "DJANGO_SHOP_DB" not in os.environ:  # worker processes inherit the demo's
            folder = tempfile.mkdtemp(prefix="cacheplug-demo-")
            cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
            os.environ["DJANGO_SHOP_DB"] = str(Path(folder) / "shop.sqlite3")
        sys.exit(demo(parser, args, cleanup, varnish_port))


def demo(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    cleanup: contextlib.ExitStack,
    varnish_port: int = 0,
) -> int:
    import django

    django.setup()
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.db.backends.signals import connection_created
    from shop.models import Product
    from shop.views import VIEW_RUNS

    from cacheplug_django import cache, edge_purges, outbox_relays

    def stop_relays() -> None:
        for relay in outbox_relays().values():
            relay.stop()

    # Before the database's folder goes (a relay stopping at exit deletes delivered rows).
    cleanup.callback(stop_relays)
    counted = Counted(lambda: VIEW_RUNS["catalog"], lambda: VIEW_RUNS.update(catalog=0))

    def count_queries(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        counted.query(sql)
        return execute(sql, params, many, context)

    def counts(sender: object, connection: object, **_: object) -> None:
        connection.execute_wrappers.append(count_queries)  # type: ignore[attr-defined]

    connection_created.connect(counts, weak=False)  # the server threads' connections too
    # StaticFilesHandler: the admin's CSS and scripts, with no web server in front.
    app = counting(StaticFilesHandler(get_wsgi_application()), counted)
    if os.environ.get("SHOP_METRICS") == "1":
        app = with_metrics(app, cache.core, relays=outbox_relays)
    if args.worker:
        run_worker(app, args.port)
        return 0

    store = cache.core.store
    workers = args.workers or (3 if store.shared else 1)
    if workers > 1 and not store.shared:
        parser.error("several workers need a shared store: pass --redis URL")
    # Up before the first write, whose purge it gets; stopped after the workers.
    varnish = start_varnish(cleanup, args.port, varnish_port) if varnish_port else None
    call_command("migrate", verbosity=0)
    password = seed()
    cache.core.bump()  # on Redis, nothing left over from an earlier run is served

    def expire() -> None:
        cache.invalidate_tags(*cache.tags_for(None, [Product]))

    def rename(old: str, new: str) -> None:
        product = Product.objects.get(name=old)
        product.name = new
        product.save()  # the save reaches the cached page after its transaction commits

    if workers > 1:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
        urls = cleanup.enter_context(worker_processes(command, workers, args.port))
    else:
        urls = cleanup.enter_context(local_worker(app, args.port))
    processes = f", {workers} worker processes" if workers > 1 else ""
    print(f"Django shop on {urls[0]}  (cacheplug store: {type(store).__name__}{processes})\n")
    ok = run_demo(
        urls=urls, clients=args.clients, expire=expire, rename=rename, renamed_by="Product.save()"
    )
    if varnish is not None:

        def flush(timeout: float) -> bool:
            purges = edge_purges()
            return purges is not None and purges.flush(timeout)

        ok = (
            through_varnish(varnish.url, rename=rename, renamed_by="Product.save()", flush=flush)
            and ok
        )
    keep_serving(
        urls,
        args.once,
        notes=[
            f"Admin: {urls[0]}/admin/  user admin, password {password} (a demo account in this"
            " run's throwaway database). Edit a product there and reload the catalog.",
            f"Cache dashboard: {urls[0]}/admin/cacheplug/ (the same account).",
            *([f"Metrics: {urls[0]}/metrics"] if os.environ.get("SHOP_METRICS") == "1" else []),
            *([f"Through Varnish: {varnish.url}/ (in front of {urls[0]})"] if varnish else []),
        ],
    )
    return 0 if ok else 1


if __name__ == "__main__":
    main()
