"""The shop's pages: cached whole (``cached_view``) or in fragments (the sidebar, in
``base.html``); commits invalidate them, never by hand."""

from __future__ import annotations

import os
import threading
from typing import Any

from flask import Blueprint, abort, render_template
from sqlalchemy import func
from sqlalchemy.orm import selectinload

from flask_shop.extensions import cache, db
from flask_shop.models import Category, Product, Review, product_categories

shop = Blueprint("shop", __name__)


@cache.cached(ttl=600, depends_on=[Product])
def bestsellers() -> list[str]:
    query = db.select(Product.name).order_by(Product.price_cents.desc()).limit(3)
    return list(db.session.scalars(query))


def sidebar() -> dict[str, Any]:
    """The sidebar's queries, as callables: they run only when the ``{% cacheplug "sidebar"
    %}`` fragment misses."""

    def categories() -> list[Any]:
        count = func.count(product_categories.c.product_id)
        query = (
            db.select(Category, count)
            .outerjoin(product_categories)
            .group_by(Category.id)
            .order_by(Category.name)
        )
        return list(db.session.execute(query))

    def top_rated() -> list[Any]:
        average = func.avg(Review.rating)
        query = (
            db.select(Product, average)
            .join(Review)
            .group_by(Product.id)
            .order_by(average.desc(), Product.name)
            .limit(3)
        )
        return list(db.session.execute(query))

    return {"sidebar_categories": categories, "top_rated": top_rated}


# A page cached whole depends on what its fragments show too (the sidebar's reviews).
@shop.get("/")
@cache.cached_view(ttl=300, depends_on=[Product, Category, Review])
def home() -> str:
    return render_template("shop/home.html", bestsellers=bestsellers(), **sidebar())


VIEW_RUNS = {"catalog": 0}  # how often the catalog view really ran (the demo prints it)
_VIEW_RUNS_LOCK = threading.Lock()  # "+= 1" alone can lose counts between threads


def render_catalog(*, without_cacheplug: bool = False) -> str:
    with _VIEW_RUNS_LOCK:
        VIEW_RUNS["catalog"] += 1
    query = db.select(Product).order_by(Product.name).options(selectinload(Product.categories))
    products = db.session.scalars(query).all()
    return render_template(
        "shop/catalog.html", products=products, without_cacheplug=without_cacheplug, **sidebar()
    )


# Given to the edge (Varnish) only when the app has CACHEPLUG_EDGE (``scripts/demo.sh --flask
# --edge`` sets SHOP_EDGE_URL): asked for without it, the edge is refused with a warning.
EDGE = bool(os.environ.get("SHOP_EDGE_URL"))


@shop.get("/catalog/")
@cache.cached_view(ttl=300, depends_on=[Product, Category, Review], edge=EDGE)
def catalog() -> str:
    return render_catalog()


@shop.get("/catalog/uncached/")
def catalog_uncached() -> str:
    """The same page without cacheplug (the sidebar fragment too), for the demo's comparison."""
    return render_catalog(without_cacheplug=True)


@shop.get("/products/<int:pid>")
def product(pid: int) -> str:
    """Not cached whole, so a new review shows at once; the sidebar comes from its cached
    fragment."""
    options = (selectinload(Product.categories), selectinload(Product.reviews))
    found = db.session.get(Product, pid, options=options)
    if found is None:
        abort(404)
    return render_template("shop/product.html", product=found, **sidebar())
