"""Serve the example Flask shop for the browser tests: a throwaway SQLite file with one
product, on a free port of 127.0.0.1; prints its URL, serves until stdin closes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

SHOP = Path(__file__).resolve().parents[2] / "example_project" / "flask_shop"
sys.path[:0] = [str(SHOP), str(SHOP.parent)]


def main() -> None:
    from demo_support import run_worker
    from flask_shop import create_app
    from flask_shop.extensions import db
    from flask_shop.models import Product

    os.environ.setdefault("FLASK_SHOP_DB", "sqlite://")
    app = create_app()
    with app.app_context():
        db.session.add(Product(name="Teapot", price_cents=2_500))
        db.session.commit()
    run_worker(app, 0)


if __name__ == "__main__":
    main()
