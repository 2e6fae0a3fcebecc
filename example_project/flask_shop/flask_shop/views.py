"""The shop's pages, cached whole; commits invalidate them, never by hand."""

from __future__ import annotations

import os
import time

from flask import Blueprint, abort

from cacheplug_flask import instance_tag
from flask_shop.extensions import cache, db
from flask_shop.models import Product

shop = Blueprint("shop", __name__)


@cache.cached(ttl=600, depends_on=[Product])
def bestsellers() -> list[str]:
    query = db.select(Product.name).order_by(Product.price_cents.desc()).limit(3)
    return list(db.session.scalars(query))


VIEW_RUNS = {"catalog": 0}  # how often the catalog view really ran (the demo prints it)


@shop.get("/")
@cache.cached_view(ttl=300, depends_on=[Product])
def home() -> str:
    return "Bestsellers: " + ", ".join(bestsellers())


def render_catalog() -> str:
    VIEW_RUNS["catalog"] += 1
    time.sleep(float(os.environ.get("SHOP_SLOW_VIEW", "0")))  # the demo's "slow query"
    products = db.session.scalars(db.select(Product).order_by(Product.name))
    return "<ul>" + "".join(f"<li>{p.name}: {p.price_cents}c</li>" for p in products) + "</ul>"


@shop.get("/catalog/")
@cache.cached_view(ttl=300, depends_on=[Product])
def catalog() -> str:
    return render_catalog()


@shop.get("/catalog/uncached/")
def catalog_uncached() -> str:
    """The same page without cacheplug, for the demo's comparison."""
    return render_catalog()


@shop.get("/products/<int:pid>")
@cache.cached_view(ttl=300, tags=lambda pid: [instance_tag(Product, pid)])
def product(pid: int) -> str:
    found = db.session.get(Product, pid)
    if found is None:
        abort(404)
    return f"{found.name}: {found.price_cents} cents"
