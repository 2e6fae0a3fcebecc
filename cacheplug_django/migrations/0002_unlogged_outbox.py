"""On PostgreSQL the outbox table is UNLOGGED: its rows are not written to the WAL, so adding
one to a transaction costs no WAL flush. They survive the writer's death (what the outbox is
for) but not a crash of the database server itself (change data capture covers that)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import migrations
from django.db.migrations.operations.base import Operation


def unlogged(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE cacheplug_outbox SET UNLOGGED")


def logged(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE cacheplug_outbox SET LOGGED")


class Migration(migrations.Migration):
    dependencies: ClassVar[list[tuple[str, str]]] = [("cacheplug", "0001_initial")]

    operations: ClassVar[list[Operation]] = [migrations.RunPython(unlogged, logged)]
