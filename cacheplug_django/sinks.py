"""Write-behind sinks into Django models: each write's value (a dict of field values) is
upserted into the row its key names, in one transaction per batch.

The writes reach the database through the ORM, so what depends on the model is invalidated
after the commit, as for any other write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, models, router, transaction

from cacheplug import QueuedWrite, write_order


def upsert_sink(
    model: type[models.Model],
    *,
    field: str = "pk",
    order_field: str | None = None,
    key_value: Callable[[str], Any] | None = None,
    using: str | None = None,
) -> Callable[[list[QueuedWrite]], None]:
    """A sink for ``cache.write_behind(name, sink)``: ``queue.put("profile:ada", {"name":
    "Ada"})`` sets ``name`` on the ``model`` row whose ``field`` is ``"ada"`` (the key's last
    ``:``-separated part, or ``key_value(key)``), creating the row if there is none.

    Upserting a value is idempotent, so a batch delivered twice changes nothing the second
    time. ``order_field`` (a ``CharField(max_length=26)``): where each row keeps the order of
    the write it holds; an older write (several workers, or a batch retried after a failure)
    then never replaces a newer one. Without it, writes of one key must come from one worker.
    """
    meta = model._meta
    unique = meta.pk.name if field == "pk" else field
    target = meta.get_field(unique)
    if not isinstance(target, models.Field):
        raise TypeError(f"upsert_sink({meta.label}): {field!r} is not a field of its own")
    manager = model._default_manager

    def key_of(write: QueuedWrite) -> Any:
        raw = key_value(write.key) if key_value is not None else write.key.rsplit(":", 1)[-1]
        return target.to_python(raw)

    def values_of(write: QueuedWrite) -> dict[str, Any]:
        if not isinstance(write.value, dict):
            raise TypeError(
                f"upsert_sink({meta.label}) needs dict values of field names, not "
                f"{type(write.value).__name__} (key {write.key!r})"
            )
        return dict(write.value)

    def newest_first(db: str, writes: list[QueuedWrite]) -> None:
        assert order_field is not None
        for write in writes:
            key, values, stamp = key_of(write), values_of(write), write_order(write.id)
            values[order_field] = stamp
            rows = manager.using(db).filter(**{unique: key})
            if rows.filter(**{f"{order_field}__lt": stamp}).update(**values):
                continue
            if rows.exists():
                continue  # it holds a newer write already
            try:
                with transaction.atomic(using=db):
                    manager.using(db).create(**{unique: key, **values})
            except IntegrityError:  # another worker created it meanwhile: compare again
                rows.filter(**{f"{order_field}__lt": stamp}).update(**values)

    def in_bulk(db: str, writes: list[QueuedWrite]) -> None:
        by_fields: dict[tuple[str, ...], list[models.Model]] = {}
        for write in writes:
            values = values_of(write)
            row = model(**{unique: key_of(write), **values})
            by_fields.setdefault(tuple(sorted(set(values) - {unique})), []).append(row)
        for fields, rows in by_fields.items():
            if fields:
                manager.using(db).bulk_create(
                    rows, update_conflicts=True, unique_fields=[unique], update_fields=fields
                )
            else:
                manager.using(db).bulk_create(rows, ignore_conflicts=True)

    def sink(writes: list[QueuedWrite]) -> None:
        db = using or router.db_for_write(model)
        with transaction.atomic(using=db):
            if order_field is None:
                in_bulk(db, writes)
            else:
                newest_first(db, writes)

    return sink
