"""The outbox table (see ``cacheplug_django.models``)."""

from __future__ import annotations

from typing import ClassVar

from django.db import migrations, models
from django.db.migrations.operations.base import Operation


class Migration(migrations.Migration):
    initial = True

    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations: ClassVar[list[Operation]] = [
        migrations.CreateModel(
            name="OutboxEntry",
            fields=[
                ("id", models.CharField(max_length=32, primary_key=True, serialize=False)),
                ("tags", models.TextField(help_text="JSON list of the tags to invalidate")),
                (
                    "created_at",
                    models.FloatField(db_index=True, help_text="seconds since the epoch"),
                ),
            ],
            options={
                "verbose_name": "outbox entry",
                "verbose_name_plural": "outbox entries",
                "db_table": "cacheplug_outbox",
            },
        ),
    ]
