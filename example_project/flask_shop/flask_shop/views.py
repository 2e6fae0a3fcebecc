"""The shop's pages, cached whole; commits invalidate them, never by hand."""

from __future__ import annotations

from flask import Blueprint, abort

from cacheplug_flask import instance_tag
from flask_shop.extensions import cache, db
from flask_shop.models import Product

shop = Blueprint("shop", __name__)


@cache.cached(ttl=600, depends_on=[Product])
def bestsellers() -> list[str]:
    query = db.select(Product.name).order_by(Product.price_cents.desc()).limit(3)
    return list(db.session.scalars(query))


@shop.get("/")
@cache.cached_view(ttl=300, depends_on=[Product])
def home() -> str:
    return "Bestsellers: " + ", ".join(bestsellers())


@shop.get("/products/<int:pid>")
@cache.cached_view(ttl=300, tags=lambda pid: [instance_tag(Product, pid)])
def product(pid: int) -> str:
    found = db.session.get(Product, pid)
    if found is None:
        abort(404)
    return f"{found.name}: {found.price_cents} cents"
