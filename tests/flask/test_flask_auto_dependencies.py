"""``depends_on="auto"`` in Flask with SQLAlchemy: a cached function, a cached view and a Jinja
fragment depend on exactly the tables and rows their loader read, through the ORM, a lazy
relationship, ``joinedload``, ``selectinload``, ``text()`` SQL, a raw connection or a nested
cached function; a write to each invalidates them, a write elsewhere does not; after a
primary-key read only a write to that row does; async views too; the audit warns about a table
an explicit ``depends_on`` does not name, and only then."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask_shop
import pytest
from flask import Flask, render_template_string
from flask_shop import Category, Product, Profile, cache, db
from sqlalchemy import select, text
from sqlalchemy.orm import joinedload, selectinload

from cacheplug.integration import _capture

loads: Counter[str] = Counter()


@pytest.fixture
def app(tmp_path: Path, redis_url: str) -> Iterator[Flask]:
    made = flask_shop.create_app(redis_url, f"sqlite:///{tmp_path / 'shop.sqlite3'}", "auto")
    with made.app_context():
        db.create_all()
        tools = Category(name="tools")
        hammer = Product(name="hammer", price=10, categories=[tools])
        db.session.add_all([tools, hammer, Product(name="saw", price=20)])
        db.session.commit()
    loads.clear()
    yield made
    cache.close(made)


def read(name: str, body: Callable[[], Any]) -> Any:
    def load() -> Any:
        loads[name] += 1
        return body()

    value = cache.get_or_load(name, load, depends_on="auto")
    db.session.remove()  # each read a request of its own
    return value


def write(table: str) -> None:
    """A write to one table through the session (its hooks invalidate after the commit)."""
    if table == "product":
        db.session.execute(select(Product).where(Product.name == "saw")).scalar_one().price = 21
    elif table == "category":
        db.session.execute(select(Category)).scalars().first().name = "hand tools"  # type: ignore[union-attr]
    elif table == "product_categories":
        saw = db.session.execute(select(Product).where(Product.name == "saw")).scalar_one()
        saw.categories.append(db.session.execute(select(Category)).scalars().first())
    elif table == "profile":
        db.session.add(Profile(handle="someone"))
    db.session.commit()
    db.session.remove()


def _hammer() -> Product:
    return db.session.execute(select(Product).where(Product.name == "hammer")).scalar_one()


LOADERS: dict[str, Callable[[], Any]] = {
    "orm": lambda: [p.name for p in db.session.execute(select(Product)).scalars()],
    "lazy relationship": lambda: [c.name for c in _hammer().categories],
    "joinedload": lambda: [
        (p.name, [c.name for c in p.categories])
        for p in db.session.execute(select(Product).options(joinedload(Product.categories)))
        .unique()
        .scalars()
    ],
    "selectinload": lambda: [
        (p.name, [c.name for c in p.categories])
        for p in db.session.execute(
            select(Product).options(selectinload(Product.categories))
        ).scalars()
    ],
    "text()": lambda: [row[0] for row in db.session.execute(text("SELECT name FROM category"))],
    "raw connection": lambda: _raw("SELECT name FROM category"),
}
READS: dict[str, list[str]] = {
    "orm": ["product"],
    "lazy relationship": ["product", "category", "product_categories"],
    "joinedload": ["product", "category", "product_categories"],
    "selectinload": ["product", "category", "product_categories"],
    "text()": ["category"],
    "raw connection": ["category"],
}


def _raw(sql: str) -> list[str]:
    with db.engine.connect() as connection:
        return [row[0] for row in connection.exec_driver_sql(sql)]


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_a_write_to_each_table_read_invalidates_and_others_do_not(app: Flask, loader: str) -> None:
    body = LOADERS[loader]
    with app.app_context():
        read(loader, body)
        read(loader, body)
        assert loads[loader] == 1
        write("profile")
        read(loader, body)
        assert loads[loader] == 1
        for table in READS[loader]:
            write(table)
            read(loader, body)
            assert loads[loader] == 2, f"a write to {table} did not invalidate {loader}"
            loads[loader] = 1


def test_after_a_primary_key_read_only_that_row_invalidates(app: Flask) -> None:
    with app.app_context():
        pk = _hammer().id
        db.session.remove()
        read("one", lambda: db.session.get(Product, pk).name)  # type: ignore[union-attr]
        write("product")  # the saw: another row
        read("one", lambda: db.session.get(Product, pk).name)  # type: ignore[union-attr]
        assert loads["one"] == 1
        _hammer().price = 11
        db.session.commit()
        read("one", lambda: db.session.get(Product, pk).name)  # type: ignore[union-attr]
        assert loads["one"] == 2


def test_a_nested_cached_function_s_reads_count_for_the_enclosing_one(app: Flask) -> None:
    @cache.cached(ttl=300, depends_on="auto")
    def category_names() -> list[str]:
        loads["inner"] += 1
        return [c.name for c in db.session.execute(select(Category)).scalars()]

    with app.app_context():
        category_names()
        page = lambda: f"{_hammer().name}:{category_names()}"  # noqa: E731
        read("page", page)
        read("page", page)
        assert (loads["page"], loads["inner"]) == (1, 1)
        write("category")
        read("page", page)
        assert (loads["page"], loads["inner"]) == (2, 2)


def test_a_cached_view_an_async_view_and_a_fragment_depend_on_what_they_read(app: Flask) -> None:
    @app.get("/auto/catalog")
    @cache.cached_view(ttl=300, depends_on="auto")
    def auto_catalog() -> str:
        loads["view"] += 1
        return ",".join(p.name for p in db.session.execute(select(Product)).scalars())

    @app.get("/auto/prices")
    @cache.cached_view(ttl=300, depends_on="auto")
    async def auto_prices() -> str:
        loads["async"] += 1
        return ",".join(str(p.price) for p in db.session.execute(select(Product)).scalars())

    fragment = (
        '{% cacheplug "cats", 300, depends_on="auto" %}'
        "{% for c in categories() %}{{ c.name }}{% endfor %}{% endcacheplug %}"
    )

    def categories() -> Any:
        return db.session.execute(select(Category)).scalars()

    client = app.test_client()
    for _ in range(2):
        assert client.get("/auto/catalog").get_data(as_text=True) == "hammer,saw"
        assert client.get("/auto/prices").get_data(as_text=True) == "10,20"
    assert (loads["view"], loads["async"]) == (1, 1)
    with app.test_request_context():
        assert render_template_string(fragment, categories=categories) == "tools"
        write("category")  # not what the views read
        assert render_template_string(fragment, categories=categories) == "hand tools"
    client.get("/auto/catalog")
    client.get("/auto/prices")
    assert (loads["view"], loads["async"]) == (1, 1)
    with app.app_context():
        write("product")
    assert client.get("/auto/prices").get_data(as_text=True) == "10,21"
    client.get("/auto/catalog")
    assert (loads["view"], loads["async"]) == (2, 2)


def test_the_audit_warns_about_a_table_depends_on_does_not_name(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    app.config["CACHEPLUG_AUDIT_DEPENDENCIES"] = True
    _capture._warned.clear()  # once per call site and table, per process

    def declared_well() -> list[str]:
        return [p.name for p in db.session.execute(select(Product)).scalars()]

    def declared_badly() -> list[str]:
        return [c.name for c in _hammer().categories]

    with app.app_context(), caplog.at_level(logging.WARNING, logger="cacheplug.auto"):
        cache.get_or_load("well", declared_well, depends_on=[Product])
        assert not caplog.records
        cache.get_or_load("badly", declared_badly, depends_on=[Product])
    # depends_on=[Product] names its association table too: only the category table is not.
    [record] = caplog.records
    assert "read table 'category'" in record.getMessage()
    assert "declared_badly" in record.getMessage()


def test_with_the_setting_every_read_is_auto(app: Flask) -> None:
    app.config["CACHEPLUG_AUTO_DEPENDENCIES"] = True
    with app.app_context():

        def body() -> list[str]:
            loads["plain"] += 1
            return [c.name for c in db.session.execute(select(Category)).scalars()]

        cache.get_or_load("plain", body)
        db.session.remove()
        write("category")
        cache.get_or_load("plain", body)
        assert loads["plain"] == 2
