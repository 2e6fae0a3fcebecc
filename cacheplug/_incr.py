"""Atomic counters, as plans (see ``_stampede``) so sync and async share them.

Two representations, chosen by whether the cache signs its entries:

- **Unsigned caches** (the in-process store, or a shared store without a secret) keep a
  counter as bare ASCII digits and let the store add to it atomically (a Lua script on
  Redis): one round trip. An integer cached with ``set`` is converted into a counter first,
  by compare-and-swap.
- **Signed caches** keep a counter as a signed entry like any other value, so nothing
  unsigned is ever read back: each increment reads the entry, checks its signature and
  swaps in the new signed value if nobody changed it meanwhile (compare-and-swap, retried
  with jittered backoff on contention). Two round trips; still atomic.

Neither path retries a write whose reply was lost (the stores run these commands without
retries), so a counter never counts twice. Counters record no tag or namespace versions, but
an integer cached with ``set`` does: if it was invalidated, ``incr`` starts from 0 rather than
bringing it back.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Final

from cacheplug._codec import Entry
from cacheplug._exceptions import CacheUnavailable, NotACounter
from cacheplug._stampede import SLEEP, STORE, Plan

_CONVERSION_ATTEMPTS: Final = 3
_SWAP_ATTEMPTS: Final = 64
_FIRST_BACKOFF: Final = 0.001
_MAX_BACKOFF: Final = 0.05


def raw_counter_plan(
    *,
    key: str,
    store_key: str,
    delta: int,
    ttl_ms: int | None,
    decode: Callable[[str, bytes], Entry | None],
) -> Plan:
    """Increment a bare-digits counter; convert a cached integer into one first."""
    for _ in range(_CONVERSION_ATTEMPTS):
        try:
            return (yield (STORE, "incr", True, (store_key, delta, ttl_ms)))
        except NotACounter:
            raw = yield (STORE, "get", True, (store_key,))
            if raw is not None:
                entry = decode(store_key, raw)
                outdated = yield from _outdated(entry)
                current = 0 if outdated else _integer_in(key, entry)
                converted = str(current).encode("ascii")
                yield (STORE, "compare_and_swap", True, (store_key, raw, converted))
    raise CacheUnavailable(f"the value of {key!r} kept changing while being incremented")


def signed_counter_plan(
    *,
    key: str,
    store_key: str,
    delta: int,
    ttl_ms: int | None,
    decode: Callable[[str, bytes], Entry | None],
    encode: Callable[[int, float | None], bytes | None],
) -> Plan:
    """Increment a counter kept as a signed entry, by compare-and-swap."""
    backoff = _FIRST_BACKOFF
    for _ in range(_SWAP_ATTEMPTS):
        raw = yield (STORE, "get", True, (store_key,))
        if raw is None:
            record = _counter_record(key, encode(delta, None))
            if (yield (STORE, "add", True, (store_key, record, ttl_ms))):
                return delta
        else:
            entry = decode(store_key, raw)
            if (yield from _outdated(entry)):  # invalidated: counts as absent
                value, fresh_until = delta, None
            else:
                value = _integer_in(key, entry) + delta
                assert entry is not None
                fresh_until = entry.fresh_until
            record = _counter_record(key, encode(value, fresh_until))
            if (yield (STORE, "compare_and_swap", True, (store_key, raw, record))):
                return value
        yield (SLEEP, backoff * random.uniform(0.5, 1.0))
        backoff = min(_MAX_BACKOFF, backoff * 2)
    raise CacheUnavailable(
        f"{key!r} is incremented by too many writers at once: {_SWAP_ATTEMPTS} attempts failed"
    )


def _outdated(entry: Entry | None) -> Plan:
    """True when ``entry`` (an integer cached with ``set``, say) records a tag or namespace
    version that has moved on: it was invalidated, so it must not come back as a counter."""
    if entry is None or not entry.tags:
        return False
    version_keys = [version_key for version_key, _ in entry.tags]
    current = yield (STORE, "get_many", True, (version_keys,))
    return any(
        value != b"%d" % version for (_, version), value in zip(entry.tags, current, strict=True)
    )


def _integer_in(key: str, entry: Entry | None) -> int:
    if entry is None:
        raise NotACounter(
            f"{key!r} holds a value that failed its integrity check; delete it to start over"
        )
    if type(entry.value) is not int:
        raise NotACounter(f"{key!r} holds a {type(entry.value).__name__} value, not an integer")
    return entry.value


def _counter_record(key: str, record: Any) -> bytes:
    if record is None:
        raise NotACounter(f"the counter {key!r} no longer fits max_value_bytes")
    assert isinstance(record, bytes)
    return record
