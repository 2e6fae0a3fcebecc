from __future__ import annotations

from typing import Any


class ArchiveRouter:
    """ArchivedOrder lives in the "other" database; everything else in "default"."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        return "other" if model.__name__ == "ArchivedOrder" else None

    db_for_write = db_for_read

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        if model_name == "archivedorder":
            return db == "other"
        return db == "default"
