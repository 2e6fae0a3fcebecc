"""``upsert_sink``: write-behind into a Flask-SQLAlchemy model. Values land in their rows,
inserted or updated; a batch delivered twice changes nothing; with ``order_column`` an older
write never replaces a newer one; what depends on the model is invalidated after the commit."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_shop import Profile, cache, db

from cacheplug import QueuedWrite
from cacheplug_flask import upsert_sink


def rows() -> dict[str, tuple[str, int]]:
    return {p.handle: (p.name, p.visits) for p in db.session.scalars(db.select(Profile)).all()}


@pytest.mark.parametrize("order_column", [None, "write_order"])
def test_queued_values_are_upserted_into_their_rows(app: Flask, order_column: str | None) -> None:
    with app.app_context():
        db.session.add(Profile(handle="ada", name="Ada", visits=3))
        db.session.commit()
        sink = upsert_sink(db, Profile, column="handle", order_column=order_column)
        queue = cache.write_behind("profiles", sink, durable=cache.cache.store.shared)
        queue.put("profile:ada", {"name": "Ada Lovelace"})
        queue.put("profile:bob", {"name": "Bob", "visits": 1})
        queue.put("profile:ada", {"name": "Countess"})
        queue.drain()
        assert rows() == {"ada": ("Countess", 3), "bob": ("Bob", 1)}


@pytest.mark.parametrize("order_column", [None, "write_order"])
def test_a_batch_delivered_twice_changes_nothing(app: Flask, order_column: str | None) -> None:
    with app.app_context():
        sink = upsert_sink(db, Profile, column="handle", order_column=order_column)
        batch = [QueuedWrite("1700000000000-0", "profile:ada", {"name": "Ada", "visits": 1})]
        sink(batch)
        sink(batch)
        assert rows() == {"ada": ("Ada", 1)}


def test_with_an_order_column_an_older_write_never_replaces_a_newer_one(app: Flask) -> None:
    with app.app_context():
        sink = upsert_sink(db, Profile, column="handle", order_column="write_order")
        sink([QueuedWrite("1700000000005-0", "profile:ada", {"name": "newer"})])
        sink([QueuedWrite("1700000000001-0", "profile:ada", {"name": "older"})])  # late
        assert rows() == {"ada": ("newer", 0)}
        sink([QueuedWrite("1700000000009-0", "profile:ada", {"name": "newest"})])
        assert rows() == {"ada": ("newest", 0)}


def test_what_depends_on_the_model_sees_the_drained_writes(app: Flask) -> None:
    with app.app_context():
        db.session.add(Profile(handle="ada", name="Ada"))
        db.session.commit()

        def names() -> list[str]:
            return cache.get_or_load(  # type: ignore[no-any-return]
                "profile-names",
                lambda: sorted(p.name for p in db.session.scalars(db.select(Profile))),
                depends_on=[Profile],
            )

        assert names() == ["Ada"]
        queue = cache.write_behind(
            "profiles",
            upsert_sink(db, Profile, column="handle"),
            durable=cache.cache.store.shared,
        )
        queue.put("profile:bob", {"name": "Bob"})
        assert names() == ["Ada"]
        queue.drain()
        assert names() == ["Ada", "Bob"]


def test_bad_values_are_refused_and_nothing_is_written(app: Flask) -> None:
    with app.app_context():
        sink = upsert_sink(db, Profile, column="handle")
        with pytest.raises(TypeError, match="needs dict values"):
            sink([QueuedWrite("1-0", "profile:ada", "Ada")])
        with pytest.raises(ValueError, match="no columns"):
            sink([QueuedWrite("1-0", "profile:ada", {"nmae": "Ada"})])
        assert rows() == {}
