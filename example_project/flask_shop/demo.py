"""The Flask shop demo: a stampede averted and a commit invalidating a cached page, measured.

    python example_project/flask_shop/demo.py [--once] [--clients N] [--port P]

The same steps as the Django shop's demo, on Flask and Flask-SQLAlchemy. Set
``CACHEPLUG_STORE`` to run it on Redis.
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
    server, base = serve(app, args.port)
    with app.app_context():
        store = type(cache.cache.store).__name__
    print(f"Flask shop on {base}  (cacheplug store: {store})\n")
    print_header(args.clients)
    for label, path in (("with cacheplug", "/catalog/"), ("without", "/catalog/uncached/")):
        with app.app_context():
            cache.invalidate_tags(*cache.tags_for(None, [Product]))  # the page has expired
        VIEW_RUNS["catalog"] = 0
        queries[0] = 0
        latencies = burst(base + path, args.clients)
        print_row(label, VIEW_RUNS["catalog"], queries[0], latencies)

    assert "Grinder" in fetch(base + "/catalog/")
    with app.app_context():
        grinder = db.session.scalars(db.select(Product).filter_by(name="Grinder")).one()
        grinder.name = "Burr grinder"
        db.session.commit()  # no invalidation written by hand: the commit reaches the page
    shown = "Burr grinder" if "Burr grinder" in fetch(base + "/catalog/") else "the OLD name (bug!)"
    print(f"\nAfter a commit renaming 'Grinder': the cached page shows {shown}")
    keep_serving(server, base, args.once)


if __name__ == "__main__":
    main()
