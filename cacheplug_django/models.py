"""The outbox table (``cacheplug_outbox``): the tags each transaction wrote, inserted inside
that transaction so that they commit or roll back with its data, and delivered to the cache
after the commit, by the writer or, if it could not, by any process of the app (see
``cacheplug.integration``'s outbox). Created by ``python manage.py migrate``."""

from __future__ import annotations

from django.db import models

from cacheplug.integration import OUTBOX_TABLE


class OutboxEntry(models.Model):
    """One committed transaction's tables, until their invalidation reached the cache."""

    id: models.CharField[str, str] = models.CharField(max_length=32, primary_key=True)
    tags: models.TextField[str, str] = models.TextField(
        help_text="JSON list of the tags to invalidate"
    )
    created_at: models.FloatField[float, float] = models.FloatField(
        db_index=True, help_text="seconds since the epoch"
    )

    class Meta:
        db_table = OUTBOX_TABLE
        verbose_name = "outbox entry"
        verbose_name_plural = "outbox entries"

    def __str__(self) -> str:
        return f"outbox {self.id}"
