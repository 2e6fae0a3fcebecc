"""One process of a Flask app for test_flask_outbox_crash: ``python outbox_crash_app.py DB
REDIS_URL ACTION``, DB a SQLite file's path or a ``postgresql://`` URL. ``prime`` makes the
database (the outbox table included) and caches the price (10); ``write-exit`` and ``write-
kill`` commit the price 11 (the cache is cut off: the invalidation cannot land), then exit
normally or SIGKILL themselves right after the commit returned; ``read`` is a new process
reading the price for 5 s, then 3 s more, printing every value it saw in each window, in order
(a line each).

With ``CRASH_EDGE_URL`` set, the app purges that edge (``CACHEPLUG_EDGE``'s ``purge_url``, the
``http`` style) after its invalidations: ``write-wait-kill`` commits the price 11 and SIGKILLs
itself 3 s later (time for its relay to delete the rows it counts delivered); ``relay`` is a
new process that runs its outbox relay until the edge took a purge (or 20 s), printing the
purges sent."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # outbox_watch

import flask_shop
from outbox_watch import report
from sqlalchemy import MetaData, select

from cacheplug_flask.outbox import outbox_table


def price() -> int:
    db, cache, product = flask_shop.db, flask_shop.cache, flask_shop.Product
    return cache.get_or_load(  # type: ignore[no-any-return]
        "price",
        lambda: db.session.execute(
            select(product.price).where(product.name == "hammer")
        ).scalar_one(),
        depends_on=[product],
    )


def main() -> None:
    database, redis_url, action = sys.argv[1:4]
    url = (
        database.replace("postgresql://", "postgresql+psycopg://", 1)
        if database.startswith("postgresql://")
        else f"sqlite:///{database}"
    )
    edge = os.environ.get("CRASH_EDGE_URL")
    config = {} if edge is None else {"CACHEPLUG_EDGE": {"purge": "http", "purge_url": edge}}
    app = flask_shop.create_app(redis_url, url, "crash", **config)
    with app.app_context():
        db = flask_shop.db
        if action == "prime":
            db.create_all()
            outbox_table(MetaData()).create(db.engine)
            db.session.add(flask_shop.Product(name="hammer", price=10))
            db.session.commit()
            print(price(), flush=True)
        elif action in ("write-exit", "write-kill", "write-wait-kill"):
            hammer = db.session.execute(
                select(flask_shop.Product).where(flask_shop.Product.name == "hammer")
            ).scalar_one()
            hammer.price = 11
            db.session.commit()
            print("committed", flush=True)
            if action == "write-wait-kill":
                time.sleep(3.0)  # the relay runs about every second
            if action != "write-exit":
                os.kill(os.getpid(), signal.SIGKILL)
        elif action == "relay":  # init_app started the relay on the rows left over
            deadline = time.monotonic() + 20.0
            purges = flask_shop.cache.edge_purges()
            while purges is not None and purges.purged == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            print(0 if purges is None else purges.purged, flush=True)
        elif action == "read":
            report(price, flask_shop.db.session.remove)


if __name__ == "__main__":
    main()
