"""Stampede protection: what a miss, a stale hit or an early refresh does, step by step.

The steps are written once, as *plans*: generators that yield the I/O they need (a store
call, running the loader, waiting for an announcement) and receive its result. A sync and
an async driver (in the cache) perform the steps, so the thread and asyncio paths share every
decision. A plan never touches the store itself.

The protocol (docs/concepts.md, "Leases"): on a miss, take the key's lease (set-if-absent with a
timeout); the holder runs the loader and stores the result only if its token is still the
lease. Others wait for the announcement that the value landed — or the stale value, or,
past ``wait_timeout``, load themselves without storing. A crashed holder's lease expires.
"""

from __future__ import annotations

import enum
import math
import os
import random
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cacheplug.stores.base import Store, VersionCheck
from cacheplug.stores.fills import Waiter

STORE: Final = "store"  # (STORE, StoreOp, strict, args) -> result or FAILED
LOAD: Final = "load"  # (LOAD,) -> (value, seconds it took); loader errors are thrown in
WAIT: Final = "wait"  # (WAIT, waiter, seconds) -> True if woken
SLEEP: Final = "sleep"  # (SLEEP, seconds) -> None
CALL: Final = "call"  # (CALL, operation, StoreOp, strict, args) -> result or FAILED, the
# call counted and logged as ``operation`` (``set`` reads its version keys with ``get_many``)
READ: Final = "read"  # (READ, keys, strict) -> their values, None for each if the read fails
RUN: Final = "run"  # (RUN,) -> what the plan's callable returned (awaited if need be), its
# errors thrown in; the loader's slot, not counted as a load: a write-through's writer, or the
# plain get_or_load a replicated read falls back to


class StoreOp(enum.Enum):
    """The store method a ``STORE`` or ``CALL`` step calls, by its name on a
    :class:`~cacheplug.stores.base.Store`; the async driver calls its ``a``-prefixed twin.

    A member, not a string, so that a plan cannot name a method the store lacks: the check
    below runs at import, and each driver looks the methods up once, when it is built.
    """

    GET = "get"
    GET_MANY = "get_many"
    PUT = "put"
    PUT_MANY = "put_many"
    ADD = "add"
    INCR = "incr"
    COMPARE_AND_SWAP = "compare_and_swap"
    ENSURE_VERSIONS = "ensure_versions"
    ACQUIRE_LEASE = "acquire_lease"
    RELEASE_LEASE = "release_lease"
    FILL_WITH_LEASE = "fill_with_lease"
    INVALIDATE = "invalidate"

    # Enum's own __hash__ is Python code (hash of the name); the drivers look a member up in a
    # dict at every step, and a member is its own identity.
    __hash__ = object.__hash__

    @property
    def async_name(self) -> str:
        return "a" + self.value


for _op in StoreOp:
    assert callable(getattr(Store, _op.value, None)), _op
    assert callable(getattr(Store, _op.async_name, None)), _op

Step = tuple[Any, ...]
Plan = Generator[Step, Any, Any]

_FIRST_BACKOFF: Final = 0.02
_MAX_BACKOFF: Final = 0.25
_AFTER_EXPIRY: Final = 0.005  # re-check just after a lease expires

SHARED: Final = math.inf  # a result every caller who joined the call may take
UNSHARED: Final = -math.inf  # a result for the caller who ran the call only


def new_token() -> bytes:
    """A lease token: 128 random bits, hex (printable, so it reads well in redis-cli)."""
    return os.urandom(16).hex().encode("ascii")


def _uniform_open_closed() -> float:
    return 1.0 - random.random()  # random() is in [0, 1): this is in (0, 1], never 0


@dataclass(frozen=True)
class XFetch:
    """Probabilistic early recomputation (Vattani, Chierichetti, Lowenstein, VLDB 2015).

    A reader recomputes early when ``now - delta * beta * ln(u) >= expiry``, where ``delta``
    is how long the last load took (stored with the value) and ``u`` is uniform on (0, 1].
    The chance grows as expiry nears, and more so for slow loaders: with ``beta=1`` and one
    loader-time left, about 37% of readers (``exp(-1)``) would trigger a refresh — only the one
    holding the lease runs it. ``beta > 1`` favours earlier refreshes. ``rand`` returns draws in
    (0, 1]; inject one for reproducible tests.
    """

    beta: float = 1.0
    rand: Callable[[], float] = field(default=_uniform_open_closed, repr=False)

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"XFetch beta must be positive, not {self.beta!r}")

    def should_recompute(self, now: float, fresh_until: float, delta: float) -> bool:
        """True when this reader should refresh an entry that is still fresh."""
        draw = self.rand()
        if not 0.0 < draw <= 1.0:
            raise ValueError(f"XFetch draws must be in (0, 1], got {draw!r}")
        return now - delta * self.beta * math.log(draw) >= fresh_until


@dataclass(frozen=True)
class ReadPolicy:
    """How a read treats ageing entries (resolved from the call and the cache's defaults)."""

    ttl: float | None
    stale_ttl: float
    early: XFetch | None
    refresh_ahead: float | None
    max_staleness: float | None = None
    negative_ttl: float | None = None

    def ttl_for(self, value: Any) -> float | None:
        """The TTL of a loaded value: ``negative_ttl`` for ``None`` when one is set."""
        if value is None and self.negative_ttl is not None:
            return self.negative_ttl
        return self.ttl

    def wants_refresh(
        self, now: float, created_at: float, fresh_until: float, compute_time: float
    ) -> bool:
        """Should a fresh hit trigger a background refresh?"""
        if (
            self.refresh_ahead is not None
            and math.isfinite(fresh_until)
            and now >= created_at + self.refresh_ahead * (fresh_until - created_at)
        ):
            return True
        return self.early is not None and self.early.should_recompute(
            now, fresh_until, compute_time
        )


Ensure = Callable[[Any], "tuple[Step, Callable[[Any, Any], Any]] | None"]
"""``ensure(values read)``: ``None`` when every version key the fill records exists, else the
step creating the absent ones and how to merge its result into the values."""

Encoder = Callable[[Any, float, Any], "tuple[bytes, int | None, Sequence[VersionCheck]] | None"]
"""``encode(value, load seconds, what the read after taking the lease returned)``: the record,
its TTL in ms and the version checks to fill it under; ``None`` when it must not be stored."""


def fill_plan(
    *,
    key: str,
    lease_key: str,
    read_keys: list[str],
    usable: Callable[[Any], Any],
    ensure: Ensure,
    encode: Encoder,
    lock_timeout_ms: int,
    wait_timeout: float,
    expect: Callable[[str], Waiter],
    fills_live: Callable[[], bool],
    missing: Any,
    failed: Any,
    check_first: bool = False,
    monotonic: Callable[[], float] = time.monotonic,
) -> Plan:
    """Fill a missing key: take the lease and load, or wait for whoever holds it.

    ``read_keys`` are read together (the entry and its version keys); ``usable(values)``
    gives the value a waiter may take from what they hold, or ``missing``. The plan returns
    ``(value, valid_at)``: the moment (on ``monotonic``) until which ``value`` is known to be
    current. Callers who joined this call in-process take its value only if they joined by
    then (see ``_singleflight``): a value read from the store, or loaded but not stored, may
    predate an invalidation made by another process after it was read; a value whose fill
    was accepted is current for everyone who joined (``SHARED``); one whose fill an
    invalidation refused is for the loader's own caller only (``UNSHARED``).
    """
    token = new_token()
    deadline = monotonic() + wait_timeout
    backoff = _FIRST_BACKOFF
    check = check_first
    read = (STORE, StoreOp.GET_MANY, False, (read_keys,))
    while True:
        if check:
            seen = monotonic()
            value = usable((yield read))
            if value is not missing:
                return value, seen
        check = True
        remaining = yield (STORE, StoreOp.ACQUIRE_LEASE, False, (lease_key, token, lock_timeout_ms))
        if remaining is failed:
            # The store is unavailable: fail open, store nothing. Its invalidations cannot be
            # seen either, so joiners share this load: it keeps sparing the database.
            value, _ = yield (LOAD,)
            return value, SHARED
        if remaining == 0:
            # A caller whose read missed just before another's fill landed (and the lease was
            # let go) must not load again: look once more now that the lease is ours. This
            # read also gives the versions the fill records: read before the loader runs.
            seen = monotonic()
            values = yield read
            value = usable(values)
            if value is not missing:
                yield (STORE, StoreOp.RELEASE_LEASE, False, (key, lease_key, token))
                return value, seen
            values = yield from _ensured(values, ensure)
            return (yield from _load_and_fill(key, lease_key, token, encode, values, monotonic))
        waiter = expect(key)
        try:
            seen = monotonic()
            value = usable((yield read))
            if value is not missing:
                return value, seen
            now = monotonic()
            if now >= deadline:
                value, _ = yield (LOAD,)  # waited long enough: load, but only the holder writes
                return value, now
            lease_left = remaining / 1000.0 + _AFTER_EXPIRY
            timeout = min(lease_left, deadline - now)
            if not fills_live():
                timeout = min(timeout, backoff * random.uniform(0.5, 1.0))
                backoff = min(_MAX_BACKOFF, backoff * 2)
            yield (WAIT, waiter, timeout)
        finally:
            waiter.close()


def refresh_plan(
    *,
    key: str,
    lease_key: str,
    read_keys: list[str],
    refreshed_meanwhile: Callable[[Any], bool],
    ensure: Ensure,
    encode: Encoder,
    lock_timeout_ms: int,
    monotonic: Callable[[], float] = time.monotonic,
) -> Plan:
    """Refresh a key in the background if nobody else is: lease, load, store.

    A reader that saw the old entry may get here just after another refresh stored a new
    one and let the lease go; the check after taking the lease stops it loading again.
    Returns ``(value, valid_at)`` like :func:`fill_plan`, or ``None`` when it did not load.
    """
    token = new_token()
    remaining = yield (STORE, StoreOp.ACQUIRE_LEASE, False, (lease_key, token, lock_timeout_ms))
    if remaining != 0:  # somebody else refreshes it (or the store is unavailable)
        return None
    values = yield (STORE, StoreOp.GET_MANY, False, (read_keys,))
    if refreshed_meanwhile(values):
        yield (STORE, StoreOp.RELEASE_LEASE, False, (key, lease_key, token))
        return None
    values = yield from _ensured(values, ensure)
    return (yield from _load_and_fill(key, lease_key, token, encode, values, monotonic))


def _ensured(values: Any, ensure: Ensure) -> Plan:
    """``values`` with the version keys the fill records created where absent (before the
    loader runs: what it reads must not predate the versions recorded)."""
    needed = ensure(values)
    if needed is None:
        return values
    step, merge = needed
    return merge(values, (yield step))


def _load_and_fill(
    key: str,
    lease_key: str,
    token: bytes,
    encode: Encoder,
    read: Any,
    monotonic: Callable[[], float],
) -> Plan:
    started = monotonic()
    try:
        value, elapsed = yield (LOAD,)
    except BaseException:
        yield (STORE, StoreOp.RELEASE_LEASE, False, (key, lease_key, token))
        raise
    encoded = encode(value, elapsed, read)
    if encoded is None:  # not to be cached: let waiters go and load themselves
        yield (STORE, StoreOp.RELEASE_LEASE, False, (key, lease_key, token))
        return value, started
    record, ttl_ms, versions = encoded
    filled = yield (
        STORE,
        StoreOp.FILL_WITH_LEASE,
        False,
        (key, record, ttl_ms, lease_key, token, versions),
    )
    if filled is True:
        return value, SHARED
    # False: the lease was taken away or a version moved on, i.e. an invalidation came after
    # the loader started and the value may predate it. FAILED: nobody can tell.
    return value, UNSHARED if filled is False else started


def lock_plan(
    *,
    lock_key: str,
    token: bytes,
    ttl_ms: int,
    blocking: bool,
    wait_timeout: float | None,
    expect: Callable[[str], Waiter],
    fills_live: Callable[[], bool],
    monotonic: Callable[[], float] = time.monotonic,
) -> Plan:
    """Acquire a lock (a lease on ``lock_key``): True when acquired."""
    deadline = math.inf if wait_timeout is None else monotonic() + wait_timeout
    backoff = _FIRST_BACKOFF
    while True:
        waiter = expect(lock_key) if blocking else None
        try:
            remaining = yield (STORE, StoreOp.ACQUIRE_LEASE, True, (lock_key, token, ttl_ms))
            if remaining == 0:
                return True
            now = monotonic()
            if waiter is None or now >= deadline:
                return False
            timeout = min(remaining / 1000.0 + _AFTER_EXPIRY, deadline - now)
            if not fills_live():
                timeout = min(timeout, backoff * random.uniform(0.5, 1.0))
                backoff = min(_MAX_BACKOFF, backoff * 2)
            yield (WAIT, waiter, timeout)
        finally:
            if waiter is not None:
                waiter.close()
