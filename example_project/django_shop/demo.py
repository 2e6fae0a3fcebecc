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
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from demo_support import burst, fetch, keep_serving, print_header, print_row, serve  # noqa: E402


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
    server, base = serve(get_wsgi_application(), args.port)
    print(f"Django shop on {base}  (cacheplug store: {type(cache.core.store).__name__})\n")
    print_header(args.clients)
    for label, path in (("with cacheplug", "/catalog/"), ("without", "/catalog/uncached/")):
        cache.invalidate_tags(*cache.tags_for(None, [Product]))  # the page has expired
        VIEW_RUNS["catalog"] = 0
        queries[0] = 0
        latencies = burst(base + path, args.clients)
        print_row(label, VIEW_RUNS["catalog"], queries[0], latencies)

    assert "Grinder" in fetch(base + "/catalog/")
    grinder = Product.objects.get(name="Grinder")
    grinder.name = "Burr grinder"
    grinder.save()  # no invalidation written by hand: the save reaches the cached page
    shown = "Burr grinder" if "Burr grinder" in fetch(base + "/catalog/") else "the OLD name (bug!)"
    print(f"\nAfter Product.save() renaming 'Grinder': the cached page shows {shown}")
    keep_serving(server, base, args.once)


if __name__ == "__main__":
    main()
