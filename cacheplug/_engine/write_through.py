"""Write-through as a plan (see ``plans``): the sync and async APIs hand the same plan to
their driver, with the writer in the slot a loader takes.

The writer (the source of truth) runs first; the value it wrote is then cached only when no
other write of the key overlapped. Each key has a write counter next to it (same slot),
incremented when a write starts and again when its writer has returned. A writer whose two
increments are consecutive (``end == start + 1``) overlapped no other writer, and stores its
value on the condition that the counter still holds ``end`` (checked atomically with the
store, like a tag version). Any doubt, such as another writer in between, a refused store, a
store error or a writer that raised, invalidates the key instead: the next read loads what
the database holds. So two concurrent writers can never leave the older value cached,
whatever order their database commits took. Storing also drops the key's lease, so a load
that read the database before the write cannot store its older result.
"""

from __future__ import annotations

from typing import Any

from cacheplug._engine.plans import CALL, RUN, Plan, StoreOp
from cacheplug._engine.reads import Engine
from cacheplug._engine.writes import existing_versions_plan
from cacheplug._types import BOOKKEEPING_TTL_MS, FAILED, Tags, Ttl
from cacheplug.encoding._tags import tag_names

_OPERATION = "write_through"  # what the store calls are counted and logged as


def write_through_plan(engine: Engine, key: str, value: Any, ttl: Ttl, tags: Tags) -> Plan:
    """See :meth:`cacheplug.Cache.write_through`; the plan returns what the writer returned."""
    skey = engine._keys.data(key)
    counter = engine._keys.writes_of(skey)
    count = (CALL, _OPERATION, StoreOp.INCR, False, (counter, 1, BOOKKEEPING_TTL_MS))
    started = yield count
    try:
        result = yield (RUN,)
    except BaseException:
        yield count
        yield from engine._invalidator.plan(_OPERATION, [key])
        raise
    ended = yield count
    stored = False
    if started is not FAILED and ended is not FAILED and ended == started + 1:
        stored = yield from _store_plan(engine, skey, value, ttl, tags, counter, ended)
    if not stored:
        yield from engine._invalidator.plan(_OPERATION, [key])
    engine._drop_local([skey])
    return result


def _store_plan(
    engine: Engine, skey: str, value: Any, ttl: Ttl, tags: Tags, counter: str, ended: int
) -> Plan:
    """Store ``value`` if the write counter still holds ``ended`` and the tag versions read
    hold; True when stored."""
    version_keys = engine._version_keys(tag_names(tags))
    ttl_s = engine._ttl(ttl)
    read = yield (CALL, _OPERATION, StoreOp.GET_MANY, False, (list(version_keys),))
    read = yield from existing_versions_plan(engine, version_keys, read, skey)
    written = engine._write_args(skey, value, ttl_s, version_keys, read)
    if written is None:
        return False
    record, conditions = written
    checks = [*conditions, (counter, ended, False)]
    args = (skey, record, engine._store_ttl_ms(ttl_s), engine._keys.lease_of(skey), checks)
    return (yield (CALL, _OPERATION, StoreOp.PUT, False, args)) is True
