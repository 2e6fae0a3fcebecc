"""The example Flask shop: ``flask --app flask_shop run`` (from example_project/flask_shop).

Environment: ``CACHEPLUG_STORE`` (a store URL; absent: the embedded in-process store),
``FLASK_SHOP_DB`` (an SQLAlchemy URL; default: SQLite in the instance folder),
``FLASK_SECRET_KEY``, ``SHOP_EDGE_URL`` (``scripts/demo.sh --flask --edge``: the URL of a Varnish
in front of the shop, running ``example_project/edge/cacheplug.vcl``; the catalog page is then
given to it, and purged there by key after each commit).
"""

from __future__ import annotations

import os

from flask import Flask, request

from cacheplug_flask.dashboard import dashboard_blueprint
from flask_shop import served
from flask_shop.extensions import cache, db

LOCAL = ("127.0.0.1", "::1")


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("FLASK_SECRET_KEY", "example-shop-not-secret-change-me"),
        SQLALCHEMY_DATABASE_URI=os.environ.get("FLASK_SHOP_DB", "sqlite:///shop.sqlite3"),
        CACHEPLUG_STORE=os.environ.get("CACHEPLUG_STORE") or None,
        CACHEPLUG_NAMESPACE="flask-shop",
        CACHEPLUG_STALE_TTL=60,
        CACHEPLUG_L1={"max_entries": 10_000},
    )
    if os.environ.get("SHOP_EDGE_URL"):
        app.config["CACHEPLUG_EDGE"] = {
            "header": "xkey",
            "s_maxage": 600,
            "purge_url": os.environ["SHOP_EDGE_URL"],
        }
    db.init_app(app)
    from flask_shop import models  # noqa: F401 - the tables create_all() makes

    with app.app_context():
        db.create_all()  # before init_app: the outbox's relay looks for its table at start
    cache.init_app(app, sqlalchemy=db)
    from flask_shop import views, warmers  # noqa: F401 - they register routes and warmers

    app.register_blueprint(views.shop)
    # The staff dashboard. The shop has no accounts: it is shown to local visitors only (the
    # demo serves on 127.0.0.1); an app passes its own check, e.g. current_user.is_admin.
    app.register_blueprint(
        dashboard_blueprint(cache, allowed=lambda: request.remote_addr in LOCAL),
        url_prefix="/cacheplug",
    )
    served.install(app)
    return app
