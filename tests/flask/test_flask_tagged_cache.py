"""The extension's cache methods are ``cacheplug.integration.TaggedCache``'s, as Django's
are: ``depends_on`` on every read and write, row tags that bring their table's "rows unknown"
tag, ``cached(depends_on=...)`` merged with the decorator's tags, and the bypass of what the
session wrote and has not committed."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_shop import Category, Product, cache, db
from sqlalchemy import update

from cacheplug_flask import instance_tag


def test_set_takes_depends_on_like_get_or_load(app: Flask) -> None:
    with app.app_context():
        assert cache.set("listing", "old", depends_on=[Product])
        assert cache.get("listing") == "old"
        db.session.add(Product(name="drill", price=30))
        db.session.commit()
        assert cache.get("listing") is None


def test_a_row_tag_follows_a_write_whose_rows_are_unknown(app: Flask) -> None:
    with app.app_context():
        db.session.add(Product(name="drill", price=30))
        db.session.commit()
        assert cache.set("row", "old", tags=[instance_tag(Product, 1)])
        db.session.execute(update(Product).values(price=31))  # which rows: unknown
        db.session.commit()
        assert cache.get("row") is None


def test_cached_merges_its_tags_with_the_models(app: Flask) -> None:
    calls: list[int] = []

    @cache.cached(tags=lambda n: [f"n:{n}"], depends_on=[Category])
    def compute(n: int) -> int:
        calls.append(n)
        return n * 2

    with app.app_context():
        assert compute(2) == 4
        assert compute(2) == 4
        cache.invalidate_tags("n:2")
        assert compute(2) == 4
        db.session.add(Category(name="garden"))
        db.session.commit()
        assert compute(2) == 4
    assert calls == [2, 2, 2]


def test_a_model_that_is_not_one_is_refused_when_decorating() -> None:
    with pytest.raises(Exception, match="No inspection system"):
        cache.cached(depends_on=["not a model"])


def test_reads_of_an_uncommitted_write_go_around_the_cache(app: Flask) -> None:
    with app.test_request_context("/"):
        assert cache.get_or_load("count", lambda: "cached", depends_on=[Category]) == "cached"
        db.session.add(Category(name="garden"))
        db.session.flush()
        assert cache.get_or_load("count", lambda: "mine", depends_on=[Category]) == "mine"
        db.session.rollback()
        # What the uncommitted write let the writer load was not stored for others.
        assert cache.get_or_load("count", lambda: "other", depends_on=[Category]) != "mine"
