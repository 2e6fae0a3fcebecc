"""``set``, ``add`` and ``set_many`` as plans (see ``plans``), each written once.

``Cache.set`` hands :func:`set_plan` to the sync driver (``_run``), ``Cache.aset`` the same
plan to the async one (``_arun``): the drivers are the only code that differs between a
write's two APIs. The store calls are ``CALL`` steps, logged and counted under the name of
the public operation (``set`` reads its version keys with ``get_many``), and the reads
``READ`` steps (coalesced on the sync side, as every read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cacheplug._engine.plans import CALL, READ, Plan, StoreOp
from cacheplug._engine.reads import Engine
from cacheplug._types import FAILED, MISSING, Tags, Ttl
from cacheplug.encoding._tags import Unread, checks, parse_versions, tag_names
from cacheplug.stores.base import VersionCheck


def existing_versions_plan(
    engine: Engine, version_keys: Sequence[str], read: Any, near: str | None = None
) -> Plan:
    """``read`` (versions of ``version_keys``) with absent ones created (for the entry
    ``near``); FAILED if the store could not say."""
    if not isinstance(read, list):
        return FAILED
    needed = engine._absent_versions(version_keys, read, near)
    if needed is None:
        return read
    positions, args = needed
    created = yield (CALL, "set", StoreOp.ENSURE_VERSIONS, engine.strict, args)
    return engine._merge_versions(read, positions, created)


def set_plan(engine: Engine, key: str, value: Any, ttl: Ttl, tags: Tags) -> Plan:
    """See :meth:`cacheplug.Cache.set`."""
    skey = engine._keys.data(key)
    engine._drop_local([skey])
    version_keys = engine._version_keys(tag_names(tags))
    ttl_s = engine._ttl(ttl)
    read = yield (CALL, "set", StoreOp.GET_MANY, engine.strict, (list(version_keys),))
    read = yield from existing_versions_plan(engine, version_keys, read, skey)
    written = engine._write_args(skey, value, ttl_s, version_keys, read)
    if written is None:
        if read is not FAILED:  # too large: the older value must not stay
            yield from engine._invalidator.plan("delete", [key])
        return False
    record, conditions = written
    lease_key = engine._keys.lease_of(skey)
    args = (skey, record, engine._store_ttl_ms(ttl_s), lease_key, conditions)
    result = yield (CALL, "set", StoreOp.PUT, engine.strict, args)
    engine._drop_local([skey])  # after the write too: a read may have raced it
    return result is True


def add_plan(engine: Engine, key: str, value: Any, ttl: Ttl, tags: Tags) -> Plan:
    """See :meth:`cacheplug.Cache.add`."""
    skey = engine._keys.data(key)
    engine._drop_local([skey])
    version_keys = engine._version_keys(tag_names(tags))
    ttl_s = engine._ttl(ttl)
    values = yield (READ, [skey, *version_keys], engine.strict)
    found = engine._hit(skey, values, version_keys)
    if isinstance(found, Unread):  # it records version keys not read yet
        more = yield (READ, found.keys, engine.strict)
        values += more
        found = engine._hit(skey, values, [*version_keys, *found.keys])
    if found is not MISSING and not isinstance(found, Unread):
        return False
    read = yield from existing_versions_plan(
        engine, version_keys, values[1 : 1 + len(version_keys)], skey
    )
    written = engine._write_args(skey, value, ttl_s, version_keys, read)
    if written is None:
        return False
    record, conditions = written
    if values[0] is not None:  # an outdated entry is in the way
        yield from engine._invalidator.plan("delete", [key])
    lease_key = engine._keys.lease_of(skey)
    args = (skey, record, engine._store_ttl_ms(ttl_s), lease_key, conditions, True)
    result = yield (CALL, "add", StoreOp.PUT, engine.strict, args)
    engine._drop_local([skey])  # after the write too: a read may have raced it
    return result is True


def set_many_plan(engine: Engine, mapping: Mapping[str, Any], ttl: Ttl, tags: Tags) -> Plan:
    """See :meth:`cacheplug.Cache.set_many`."""
    engine._drop_local(engine._keys.data_many(list(mapping)))
    version_keys = engine._version_keys(tag_names(tags))
    read = yield (CALL, "set_many", StoreOp.GET_MANY, engine.strict, (list(version_keys),))
    read = yield from existing_versions_plan(engine, version_keys, read)
    encoded = None if read is FAILED else encode_many(engine, mapping, ttl, version_keys, read)
    if encoded is None:
        return list(mapping)
    items, too_large, ttl_s, conditions = encoded
    failed = list(too_large)
    if too_large:
        yield from engine._invalidator.plan("delete_many", too_large)
    if items:
        writes = [(skey, record, engine._keys.lease_of(skey)) for _, skey, record in items]
        args = (writes, engine._store_ttl_ms(ttl_s), conditions)
        result = yield (CALL, "set_many", StoreOp.PUT_MANY, engine.strict, args)
        stored = [False] * len(items) if result is FAILED else result
        failed += [key for (key, _, _), ok in zip(items, stored, strict=True) if not ok]
    engine._drop_local(engine._keys.data_many(list(mapping)))
    return failed


def encode_many(
    engine: Engine,
    mapping: Mapping[str, Any],
    ttl: Ttl,
    version_keys: Sequence[str],
    read: list[Any],
) -> tuple[list[tuple[str, str, bytes]], list[str], float | None, list[VersionCheck]] | None:
    """``(items to write, keys too large to cache, ttl, version checks)``; ``None`` when the
    versions are unknown and nothing can be written."""
    ttl_s = engine._ttl(ttl)
    items: list[tuple[str, str, bytes]] = []
    too_large: list[str] = []
    made = checks(version_keys, parse_versions(version_keys, read))
    if made is None:
        return None
    recorded, conditions = made
    for key, value in mapping.items():
        skey = engine._keys.data(key)
        record = engine._encode(skey, value, ttl_s, 0.0, recorded=recorded)
        if record is None:
            too_large.append(key)
        else:
            items.append((key, skey, record))
    return items, too_large, ttl_s, conditions
