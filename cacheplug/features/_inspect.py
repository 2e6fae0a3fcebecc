"""What is stored under a key, for people (``manage.py cacheplug_inspect``, ``flask
cacheplug inspect``): age, freshness, tags, size, and whether an invalidation outdated it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cacheplug._engine.reads import Engine
from cacheplug.encoding._tags import versions_match


@dataclass(frozen=True)
class EntryInfo:
    """One stored entry, as :meth:`Cache.inspect` found it."""

    key: str
    store_key: str
    state: str
    """``fresh``, ``stale`` (past its ttl, kept for ``stale_ttl``), ``outdated`` (a tag or
    namespace it records was invalidated: reads treat it as a miss), or ``discarded`` (it
    failed its signature check or could not be decoded)."""
    size: int
    """Bytes as stored (after compression)."""
    created_at: float | None = None
    """When it was written (seconds since the epoch)."""
    age: float | None = None
    fresh_for: float | None = None
    """Seconds until it goes stale (negative: stale since); ``None`` for no expiry."""
    ttl_left: float | None = None
    """Seconds until the store drops it; ``None`` for no expiry."""
    tags: tuple[str, ...] = ()
    value_type: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def inspect_entry(cache: Engine, key: str) -> EntryInfo | None:
    """The entry under ``key``, or ``None`` if there is none (raises
    :class:`~cacheplug.CacheUnavailable` if the store cannot be reached)."""
    skey = cache._keys.data(key)
    store = cache._store
    raw = store.get(skey)
    if raw is None:
        return None
    entry = cache._codec.decode(skey, raw)
    if entry is None:
        return EntryInfo(key, skey, "discarded", len(raw))
    created_at, fresh_until, recorded = entry.created_at, entry.fresh_until, entry.tags
    now = cache._now()
    version_keys = [version_key for version_key, _ in recorded]
    current = store.get_many(version_keys) if version_keys else []
    valid = versions_match(recorded, version_keys, [raw, *current]) is True
    if not valid:
        state = "outdated"
    elif fresh_until >= now:
        state = "fresh"
    else:
        state = "stale"
    ttl_ms = store.ttl_ms(skey)
    tag_keys = set(cache._versions.implicit)
    return EntryInfo(
        key=key,
        store_key=skey,
        state=state,
        size=len(raw),
        created_at=created_at,
        age=now - created_at,
        fresh_for=None if math.isinf(fresh_until) else fresh_until - now,
        ttl_left=None if ttl_ms is None else max(ttl_ms, 0) / 1000,
        tags=tuple(_tag_name(k) for k in version_keys if k not in tag_keys),
        value_type=type(entry.value).__name__,
    )


def _tag_name(version_key: str) -> str:
    # "<ns>:<format>:t:{name}" for a plain tag name; a hashed one keeps its readable prefix.
    _, _, rest = version_key.partition(":t:{")
    if rest.endswith("}"):
        return rest[:-1]
    _, _, rest = version_key.partition(":t#:{")
    return rest[:-1] if rest.endswith("}") else version_key
