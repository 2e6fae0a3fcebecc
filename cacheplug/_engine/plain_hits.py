"""The hit paths for callers that answer a hit before doing anything else (page caching).

Why: a cached page's hit went through the whole read (the adapter's tags and uncommitted-write
checks, ``get_or_load``'s arguments and policies, ``_begin_read`` / ``_finish_read``) to reach
one lookup in L1, or one round trip to the store. Page caching calls these first, with the key
and tags it read before for the same URL, and takes the general path on anything but a plain
hit. Bound once per engine, they answer a value only where ``get_or_load`` would answer the
same value without loading:

- hits are plain (no ``early`` / ``refresh_ahead`` policy configured);
- no load discovering its tags runs in this thread (its nested reads must be recorded);
- no invalidation is pending (the general path decides whether it concerns this key);
- the entry is held (in L1, recording exactly the version keys of ``tags``; or in the store,
  its recorded versions all current and read in the same round trip), and it is fresh.

``tags`` ``None`` means the keys the entry was seen to record, as for a read without tags.
The caller's ``wanted(value)`` says whether it can use the value (a page that varies on a
request header, say, it cannot). They count a hit, sample the key for hot-key detection and
keep a store hit in L1, as the general path does; anything else returns ``NOTHING`` without
counting, and the general path decides (and counts) as it always did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cacheplug._engine.depends import current
from cacheplug._engine.discovery import _running
from cacheplug._memo import BoundedMemo
from cacheplug._types import NOTHING
from cacheplug.encoding._codec import Entry
from cacheplug.encoding._tags import tag_names

if TYPE_CHECKING:
    from cacheplug._engine.state import EngineState

PlainHit = Callable[[str, "tuple[str, ...] | None", Callable[[Any], bool]], Any]
"""``hit(key, tags, wanted)``: the fresh value held for ``key`` stored with ``tags`` if
``wanted(value)``, or ``NOTHING`` (counted as a hit only when answered)."""


def plain_hits(
    engine: EngineState, valid: Callable[..., Any], keep_local: Callable[..., Any]
) -> tuple[PlainHit, PlainHit] | None:
    """``(from L1 only, from L1 or the store)`` for ``engine``; ``None`` with hit policies
    or hot-key replicas (whose reads spread over copies). The first answers ``NOTHING``
    without an L1 tier; the second reads the store (it blocks: not for an event loop).
    ``valid`` and ``keep_local``: the engine's ``_valid`` and ``_keep_local``, which the
    store hit shares with the general read."""
    if not engine._plain_hits or engine._hot_replicas:
        return None
    local = engine._local
    data_key = engine._keys.data
    for_entry = engine._versions.for_entry
    recorded = engine._recorded_keys
    implicit = engine._implicit
    pending = engine._pending
    counters = engine._counters
    draw = engine._draw
    hot_rate = engine._hot_rate
    count_hot = engine._hot.count
    read = engine._read
    now = engine._now
    # Tags are checked once (tag_names raises for what is not a tag), then known by value.
    checked: BoundedMemo[tuple[str, ...], tuple[str, ...]] = BoundedMemo()

    def begin(key: str, tags: tuple[str, ...] | None) -> tuple[str, tuple[str, ...]] | None:
        if pending.active or (_running[0] and current() is not None):
            return None
        skey = data_key(key)
        if draw() < hot_rate:  # sampled here: no call on most reads
            count_hot(key)
        if tags is None:
            return skey, recorded.get(skey) or implicit
        found = checked.get(tags)
        if found is None:
            found = checked.remember(tags, for_entry(tag_names(tags)))
        return skey, found

    def local_hit(key: str, tags: tuple[str, ...] | None, wanted: Callable[[Any], bool]) -> Any:
        if local is None:
            return NOTHING
        begun = begin(key, tags)
        if begun is None:
            return NOTHING
        value = local.get(*begun)
        if value is NOTHING or not wanted(value):
            return NOTHING
        counters.hits += 1
        return value

    def stored_hit(key: str, tags: tuple[str, ...] | None, wanted: Callable[[Any], bool]) -> Any:
        begun = begin(key, tags)
        if begun is None:
            return NOTHING
        skey, version_keys = begun
        epoch = -1
        if local is not None:
            value = local.get(skey, version_keys)
            if value is not NOTHING:
                if not wanted(value):
                    return NOTHING
                counters.hits += 1
                return value
            epoch = local.epoch
        values = read([skey, *version_keys], False)
        if values[0] is None:
            return NOTHING
        entry = valid(skey, values, version_keys)
        if type(entry) is not Entry or entry.fresh_until < now() or not wanted(entry.value):
            return NOTHING  # absent, outdated, recording more versions, stale, or not wanted
        counters.hits += 1
        if epoch >= 0:
            keep_local(skey, values, version_keys, epoch, entry)
        return entry.value

    return local_hit, stored_hit
