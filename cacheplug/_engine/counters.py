"""Atomic counters, as plans (see ``plans``) so sync and async share them.

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
retries), so a counter never counts twice. A signed counter records the cache's namespace
versions, so ``bump()`` orphans it like any entry; a bare-digits counter cannot record
anything and survives a bump (delete it explicitly). An integer cached with ``set`` records
its tags too: if it was invalidated, ``incr`` starts from 0 rather than bringing it back.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Final

from cacheplug._config import ttl_ms, ttl_seconds
from cacheplug._engine.plans import SLEEP, STORE, Plan, StoreOp
from cacheplug._engine.reads import Engine
from cacheplug.encoding._codec import Entry
from cacheplug.encoding._tags import Recorded, fresh_version
from cacheplug.exceptions import CacheUnavailable, NotACounter

_CONVERSION_ATTEMPTS: Final = 3
_SWAP_ATTEMPTS: Final = 64
_FIRST_BACKOFF: Final = 0.001
_MAX_BACKOFF: Final = 0.05


def check_delta(delta: int) -> None:
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise TypeError(f"delta must be an int, not {type(delta).__name__}")


def counter_plan(engine: Engine, key: str, delta: int, ttl: float | None) -> Plan:
    """``incr(key, delta)`` on ``engine``: the plan for its kind of counter (see above)."""
    check_delta(delta)
    skey = engine._keys.data(key)
    ttl_s = ttl_seconds(ttl, None)
    common: dict[str, Any] = {
        "key": key,
        "store_key": skey,
        "delta": delta,
        "ttl_ms": ttl_ms(ttl_s),
        "decode": engine._codec.decode,
    }
    if not engine._codec.signed:
        return raw_counter_plan(**common)

    def encode(value: int, fresh_until: float | None, recorded: Recorded) -> bytes | None:
        return engine._encode(skey, value, ttl_s, 0.0, fresh_until, recorded=recorded)

    def ensure(keys: list[str]) -> tuple[list[str], list[int], int]:
        return keys, [fresh_version() for _ in keys], engine._version_keep_ms()

    return signed_counter_plan(
        **common, encode=encode, version_keys=engine._implicit, ensure=ensure
    )


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
            return (yield (STORE, StoreOp.INCR, True, (store_key, delta, ttl_ms)))
        except NotACounter:
            raw = yield (STORE, StoreOp.GET, True, (store_key,))
            if raw is not None:
                entry = decode(store_key, raw)
                outdated = yield from _outdated(entry)
                current = 0 if outdated else _integer_in(key, entry)
                converted = str(current).encode("ascii")
                yield (STORE, StoreOp.COMPARE_AND_SWAP, True, (store_key, raw, converted))
    raise CacheUnavailable(f"the value of {key!r} kept changing while being incremented")


def signed_counter_plan(
    *,
    key: str,
    store_key: str,
    delta: int,
    ttl_ms: int | None,
    decode: Callable[[str, bytes], Entry | None],
    encode: Callable[[int, float | None, Recorded], bytes | None],
    version_keys: Sequence[str],
    ensure: Callable[[list[str]], tuple[list[str], list[int], int]],
) -> Plan:
    """Increment a counter kept as a signed entry, by compare-and-swap. The record carries
    the versions of ``version_keys`` (the cache's namespaces), read with it, so a namespace
    bump orphans counters like every other entry."""
    backoff = _FIRST_BACKOFF
    keys = list(version_keys)
    for _ in range(_SWAP_ATTEMPTS):
        values = yield (STORE, StoreOp.GET_MANY, True, ([store_key, *keys],))
        raw, versions = values[0], list(values[1:])
        absent = [k for k, v in zip(keys, versions, strict=True) if v is None]
        if absent:
            created = yield (STORE, StoreOp.ENSURE_VERSIONS, True, ensure(absent))
            found = dict(zip(absent, created, strict=True))
            versions = [found.get(k, v) for k, v in zip(keys, versions, strict=True)]
        try:
            recorded: Recorded = tuple((k, int(v)) for k, v in zip(keys, versions, strict=True))
        except (TypeError, ValueError):  # a garbled version key: an invalidation will fix it
            raise CacheUnavailable(f"the versions of {key!r} cannot be read") from None
        if raw is None:
            record = _counter_record(key, encode(delta, None, recorded))
            if (yield (STORE, StoreOp.ADD, True, (store_key, record, ttl_ms))):
                return delta
        else:
            entry = decode(store_key, raw)
            current = dict(zip(keys, versions, strict=True))
            if (yield from _outdated(entry, current)):  # invalidated: counts as absent
                value, fresh_until = delta, None
            else:
                value = _integer_in(key, entry) + delta
                assert entry is not None
                fresh_until = entry.fresh_until
            record = _counter_record(key, encode(value, fresh_until, recorded))
            if (yield (STORE, StoreOp.COMPARE_AND_SWAP, True, (store_key, raw, record))):
                return value
        yield (SLEEP, backoff * random.uniform(0.5, 1.0))
        backoff = min(_MAX_BACKOFF, backoff * 2)
    raise CacheUnavailable(
        f"{key!r} is incremented by too many writers at once: {_SWAP_ATTEMPTS} attempts failed"
    )


def _outdated(entry: Entry | None, known: dict[str, Any] | None = None) -> Plan:
    """True when ``entry`` (an integer cached with ``set``, say) records a tag or namespace
    version that has moved on: it was invalidated, so it must not come back as a counter.
    ``known``: versions already read (by key), spared a round trip."""
    if entry is None or not entry.tags:
        return False
    known = known or {}
    unread = [version_key for version_key, _ in entry.tags if version_key not in known]
    if unread:
        values = yield (STORE, StoreOp.GET_MANY, True, (unread,))
        known = {**known, **dict(zip(unread, values, strict=True))}
    return any(known[version_key] != b"%d" % version for version_key, version in entry.tags)


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
