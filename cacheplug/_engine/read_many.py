"""``get_many`` as a plan (see ``plans``), written once for ``Cache.get_many`` (the sync
driver) and ``Cache.aget_many`` (the async one), with the steps only it takes: which version
keys to read along, decoding a batch, settling the entries whose versions came late.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cacheplug._engine.plans import CALL, Plan, StoreOp
from cacheplug._engine.reads import Engine
from cacheplug._types import FAILED
from cacheplug.encoding._codec import Entry
from cacheplug.encoding._tags import Recorded, Versions, current, parse_versions


def get_many_plan(engine: Engine, keys: Iterable[str]) -> Plan:
    """See :meth:`cacheplug.Cache.get_many`."""
    keys = list(keys)
    skeys = engine._keys.data_many(keys)
    version_keys = many_keys(engine, skeys)
    everything = skeys + version_keys
    values = yield (CALL, "get_many", StoreOp.GET_MANY, engine.strict, (everything,))
    if values is FAILED:
        values = [None] * len(everything)
    found, undecided, versions = collect(engine, keys, skeys, values, version_keys)
    if undecided:
        more = sorted({k for _, _, e in undecided for k, _ in e.tags if k not in versions})
        read = yield (CALL, "get_many", StoreOp.GET_MANY, engine.strict, (more,))
        versions.update(parse_versions(more, [None] * len(more) if read is FAILED else read))
        found.update(settle(engine, undecided, versions))
    return found


def many_keys(engine: Engine, skeys: list[str]) -> list[str]:
    """The version keys ``get_many`` reads with ``skeys``."""
    memo = engine._recorded_keys
    if not memo:
        return list(engine._implicit)
    keys = dict.fromkeys(engine._implicit)
    for skey in skeys:
        recorded = memo.get(skey)
        if recorded:
            keys.update(dict.fromkeys(recorded))
    return list(keys)


def collect(
    engine: Engine,
    keys: list[str],
    skeys: list[str],
    values: list[Any],
    version_keys: list[str],
) -> tuple[dict[str, Any], list[tuple[str, str, Entry]], Versions]:
    """``(found, entries recording version keys not read, versions read)``."""
    count = len(skeys)
    versions = parse_versions(version_keys, values[count:])
    codec = engine._codec
    found, discarded, size, undecided = codec.decode_many(
        keys, skeys, values[:count], engine._now(), versions
    )
    for skey in discarded:
        engine._discarded(skey)
    for _, skey, entry in undecided:
        engine._remember_recorded(skey, entry.tags)
    if engine._pending.active:
        raws = values[:count]
        recorded = []
        for key, skey, raw in zip(keys, skeys, raws, strict=True):
            if key in found:
                decoded = codec.decode(skey, raw)
                recorded.append((key, skey, decoded.tags if decoded is not None else ()))
        found = not_pending(engine, found, recorded)
    counters = engine._counters
    counters.bytes_read += size
    counters.hits += len(found)
    counters.misses += count - len(found) - len(undecided)
    return found, undecided, versions


def settle(
    engine: Engine, undecided: list[tuple[str, str, Entry]], versions: Versions
) -> dict[str, Any]:
    """The values of ``undecided`` entries that are current given ``versions``."""
    found = {key: entry.value for key, _, entry in undecided if current(entry.tags, versions)}
    if engine._pending.active:
        found = not_pending(engine, found, [(k, s, e.tags) for k, s, e in undecided])
    engine._counters.hits += len(found)
    engine._counters.misses += len(undecided) - len(found)
    return found


def not_pending(
    engine: Engine, found: dict[str, Any], entries: list[tuple[str, str, Recorded]]
) -> dict[str, Any]:
    """``found`` without the entries (key, store key, what it records) whose invalidation,
    or a tag's or namespace's, is still pending."""
    for key, skey, recorded in entries:
        if key in found and engine._pending.affects(skey, [k for k, _ in recorded]):
            del found[key]
            engine._counters.bypassed += 1
    return found
