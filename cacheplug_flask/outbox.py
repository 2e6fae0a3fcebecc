"""The outbox table for SQLAlchemy applications (see ``cacheplug.integration``'s outbox).

Add it to your metadata so that ``create_all()`` or an Alembic autogenerate creates it::

    from cacheplug_flask.outbox import outbox_table

    outbox_table(db.metadata)      # Flask-SQLAlchemy; or your own MetaData()

With the table present, each transaction of the hooked sessions inserts the tables it wrote
into it before committing, so a write whose invalidation could not reach the cache is
delivered later by any process of the app.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Column, Engine, Float, MetaData, String, Table, Text, delete, select

from cacheplug.integration import OUTBOX_TABLE


def outbox_table(metadata: MetaData) -> Table:
    """The ``cacheplug_outbox`` table in ``metadata`` (made once; the same one afterwards)."""
    existing = metadata.tables.get(OUTBOX_TABLE)
    if existing is not None:
        return existing
    return Table(
        OUTBOX_TABLE,
        metadata,
        Column("id", String(32), primary_key=True),
        Column("tags", Text, nullable=False),
        Column("created_at", Float, nullable=False, index=True),
    )


class SqlAlchemyOutbox:
    """The relay's queries (:class:`cacheplug.integration.OutboxStore`) on ``engine``, each
    in a transaction of its own."""

    def __init__(self, engine: Engine, table: Table | None = None) -> None:
        self.engine = engine
        self.table = table if table is not None else outbox_table(MetaData())

    def due(self, written_before: float, limit: int) -> Sequence[tuple[str, str]]:
        table = self.table
        query = (
            select(table.c.id, table.c.tags)
            .where(table.c.created_at < written_before)
            .order_by(table.c.created_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [(row_id, tags) for row_id, tags in connection.execute(query)]

    def delete(self, ids: Sequence[str]) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(self.table).where(self.table.c.id.in_(list(ids))))
