"""The relay's queries on the outbox table (``cacheplug_django.models.OutboxEntry``), for one
database alias (see ``cacheplug.integration``'s outbox)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections


class DjangoOutbox:
    """:class:`cacheplug.integration.OutboxStore` on database ``alias``."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    def due(self, written_before: float, limit: int) -> Sequence[tuple[str, str]]:
        from cacheplug_django.models import OutboxEntry

        rows = (
            OutboxEntry.objects.using(self.alias)
            .filter(created_at__lt=written_before)
            .order_by("created_at")
            .values_list("id", "tags")[:limit]
        )
        return list(rows)

    def delete(self, ids: Sequence[str]) -> None:
        from cacheplug_django.models import OutboxEntry

        OutboxEntry.objects.using(self.alias).filter(id__in=list(ids)).delete()

    def exists(self) -> bool:
        """True when the database has the outbox table (``migrate`` created it)."""
        from cacheplug.integration import OUTBOX_TABLE

        with connections[self.alias].cursor() as cursor:
            return OUTBOX_TABLE in connections[self.alias].introspection.table_names(cursor)
