"""Reading Debezium Server's Redis sink entries: both formats, with and without the
converter's schemas; rows named by their record key; what names no row; what cannot be read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cacheplug.integration import TableChange, Unreadable, entry_changes


def event(op: str, table: str = "orders", **extra: Any) -> dict[str, Any]:
    source = {"connector": "postgresql", "name": "app", "db": "shop", "schema": "public"}
    return {"before": None, "after": None, "source": {**source, "table": table}, "op": op, **extra}


def with_schema(payload: Any) -> dict[str, Any]:
    return {"schema": {"type": "struct", "optional": False}, "payload": payload}


def compact(key: Any, value: Any) -> dict[bytes, bytes]:
    """As redis-py returns an entry of the default ("compact") format: one field, the key."""
    key_text = "default" if key is None else json.dumps(key)
    value_text = "default" if value is None else json.dumps(value)
    return {key_text.encode(): value_text.encode()}


def extended(key: Any, value: Any) -> dict[bytes, bytes]:
    fields = {
        b"key": b"default" if key is None else json.dumps(key).encode(),
        b"value": b"default" if value is None else json.dumps(value).encode(),
    }
    return {**fields, b"__DEBEZIUM.CONTEXT.CONNECTORNAME": b"inventory"}


@pytest.mark.parametrize("fmt", [compact, extended])
@pytest.mark.parametrize("schemas", [False, True])
@pytest.mark.parametrize("op", ["c", "u", "d", "r"])
def test_a_row_change_names_its_row_by_the_record_key(fmt: Any, schemas: bool, op: str) -> None:
    key: Any = {"id": 42}
    value: Any = event(op, after={"id": 42, "status": "shipped"})
    if schemas:
        key, value = with_schema(key), with_schema(value)
    assert entry_changes(fmt(key, value)) == [TableChange("orders", ("42",))]


def test_a_composite_key_keeps_its_column_order_and_texts() -> None:
    entry = compact({"tenant": "acme", "order_id": 7}, event("u"))
    assert entry_changes(entry) == [TableChange("orders", ("acme", "7"))]


@pytest.mark.parametrize(
    "key",
    [
        None,  # a table without a primary key: the sink's null key
        {"id": 1.5},
        {"id": {"scale": 2, "value": "AQI="}},
        {},
    ],
)
def test_a_key_that_cannot_name_the_row_gives_the_table(key: Any) -> None:
    assert entry_changes(extended(key, event("u"))) == [TableChange("orders", None)]


def test_a_truncate_gives_the_table() -> None:
    assert entry_changes(compact(None, event("t"))) == [TableChange("orders", None)]


@pytest.mark.parametrize(
    "entry",
    [
        compact({"id": 42}, None),  # the tombstone after a delete
        extended({"id": 42}, None),
        compact({"serverName": "app"}, {"ts_ms": 1718000000000}),  # a heartbeat
        compact(None, {"status": "BEGIN", "id": "571:53195832", "ts_ms": 1, "event_count": None}),
        compact({"databaseName": "shop"}, {"source": {}, "ddl": "ALTER TABLE t ..."}),
        compact({"prefix": "audit"}, {**event("m", table=""), "message": {"prefix": "audit"}}),
        compact({"id": 1}, with_schema(None)),
    ],
)
def test_what_names_no_row_is_skipped(entry: dict[bytes, bytes]) -> None:
    assert entry_changes(entry) == []


@pytest.mark.parametrize(
    "entry",
    [
        {b'{"id": 1}': b'{"op": "u", "source": '},  # cut short
        compact({"id": 1}, ["not", "an", "event"]),
        compact({"id": 1}, 7),
        compact({"id": 1}, {"op": "u", "source": {"table": ""}}),
        compact({"id": 1}, {"op": "u"}),
        compact({"id": 1}, event("x")),
        {b"a": b"{}", b"b": b"{}"},  # two fields, neither format
        {},
    ],
)
def test_what_cannot_be_read_says_so(entry: dict[bytes, bytes]) -> None:
    with pytest.raises(Unreadable):
        entry_changes(entry)
