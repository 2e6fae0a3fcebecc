"""A small Flask + Flask-SQLAlchemy shop for the extension's tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

from flask import Flask, jsonify, request, session
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cacheplug_flask import CachePlug, instance_tag

db = SQLAlchemy()
cache = CachePlug()
renders: Counter[str] = Counter()

product_categories = Table(
    "product_categories",
    db.metadata,
    Column("product_id", ForeignKey("product.id"), primary_key=True),
    Column("category_id", ForeignKey("category.id"), primary_key=True),
)


class Category(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Product(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    price: Mapped[int] = mapped_column(Integer, default=0)
    categories: Mapped[list[Category]] = relationship(secondary=product_categories)


class Profile(db.Model):  # type: ignore[name-defined,misc]
    """Written behind, by ``cacheplug_flask.upsert_sink``."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handle: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    visits: Mapped[int] = mapped_column(Integer, default=0)
    write_order: Mapped[str] = mapped_column(String(26), default="")


def describe(product: Product) -> str:
    names = ",".join(sorted(c.name for c in product.categories))
    return f"{product.name}={product.price}[{names}]"


def create_app(
    store: str | None, database: str, namespace: str = "flask-tests", **config: Any
) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="flask-tests-secret",
        SQLALCHEMY_DATABASE_URI=database,
        CACHEPLUG_STORE=store,
        CACHEPLUG_NAMESPACE=namespace,
    )
    app.config.update(config)
    db.init_app(app)
    cache.init_app(app, sqlalchemy=db)

    @app.get("/catalog")
    @cache.cached_view(ttl=300, depends_on=[Product])
    def catalog() -> str:
        renders["catalog"] += 1
        return "\n".join(
            describe(p) for p in db.session.scalars(db.select(Product).order_by(Product.name))
        )

    @app.get("/products/<int:pid>")
    @cache.cached_view(ttl=300, tags=lambda pid: [instance_tag(Product, pid)])
    def product(pid: int) -> str:
        renders[f"product:{pid}"] += 1
        found = db.session.get(Product, pid)
        return "missing" if found is None else describe(found)

    @app.post("/login/<name>")
    def login(name: str) -> str:
        session["user"] = name
        return "ok"

    @app.get("/greeting")
    @cache.cached_view(ttl=300)
    def greeting() -> str:
        renders["greeting"] += 1
        return f"hello {session.get('user', 'guest')}"

    @app.get("/dashboard")
    @cache.cached_view(ttl=300, per_user=lambda: session.get("user"))
    def dashboard() -> str:
        renders["dashboard"] += 1
        return f"dashboard of {session.get('user', 'guest')}"

    @app.get("/echo")
    @cache.cached_view(ttl=300)
    def echo() -> Any:
        renders["echo"] += 1
        return jsonify(sorted(request.args.items(multi=True)))

    @app.get("/sets-session")
    @cache.cached_view(ttl=300)
    def sets_session() -> str:
        renders["sets_session"] += 1
        session["seen"] = True
        return "seen"

    @app.get("/private")
    @cache.cached_view(ttl=300)
    def private() -> Any:
        renders["private"] += 1
        return "private", 200, {"Cache-Control": "Private"}

    @app.get("/missing")
    @cache.cached_view(ttl=300)
    def missing() -> Any:
        renders["missing"] += 1
        return "nope", 404

    @app.get("/async")
    @cache.cached_view(ttl=300, depends_on=[Product])
    async def async_catalog() -> str:
        renders["async"] += 1
        return ",".join(
            p.name for p in db.session.scalars(db.select(Product).order_by(Product.name))
        )

    @cache.warmer("names")
    def warm_names() -> Any:
        for p in db.session.scalars(db.select(Product)):
            cache.get_or_load(f"name:{p.id}", lambda p=p: p.name, depends_on=[Product])
            yield p.id

    @cache.warmer("broken")
    def warm_broken() -> None:
        raise RuntimeError("boom")

    with app.app_context():
        db.create_all()
    return app
