"""What both Redis stores share: the Lua scripts (``lua/*.lua``, shipped as package data),
the keys and arguments each store operation passes them (:class:`ScriptCall`, the same for
the sync, async and cluster clients, which differ only in how they send it), and how a
redis-py error or reply becomes cacheplug's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, Final, Generic, NamedTuple, ParamSpec, TypeVar

import redis
from redis.exceptions import RedisClusterException

from cacheplug._redact import redact
from cacheplug.exceptions import CacheError, CacheUnavailable, NotACounter
from cacheplug.stores.base import VersionCheck

ERRORS: Final = (redis.RedisError, OSError)
# AttributeError too: while a master fails over, redis-py's cluster client (seen up to 7.4)
# can reset a connection another thread is reading, which then raises AttributeError
# ("'NoneType' object has no attribute 'feed'") from inside redis-py. That is the store
# failing, so it fails open like any other store error instead of reaching the caller.
CLUSTER_ERRORS: Final = (redis.RedisError, OSError, RedisClusterException, AttributeError)
RETRYABLE: Final = (redis.ConnectionError, redis.TimeoutError, OSError)
_NOT_A_COUNTER: Final = "CACHEPLUG_NOT_A_COUNTER"  # raised by incr.lua


def lua(name: str) -> str:
    """The text of ``lua/<name>.lua``."""
    return resources.files(__package__).joinpath(f"lua/{name}.lua").read_text("utf-8")


INCR: Final = lua("incr")
CAS: Final = lua("compare_and_swap")
ACQUIRE: Final = lua("acquire_lease")
WRITE: Final = lua("write")
BUMP: Final = lua("bump_versions")
ENSURE: Final = lua("ensure_versions")
RELEASE: Final = lua("release_lease")
EXTEND: Final = lua("extend_lease")
INVALIDATE: Final = lua("invalidate")
# Cluster only: the steps the standalone store does inside one script, split by slot.
REMOVE_IF: Final = lua("remove_if")
ENSURE_PERSISTENT: Final = lua("ensure_persistent")
INVALIDATE_MARKED: Final = lua("invalidate_marked")
# The write-behind queue (``_streams``).
QUEUE_PUT: Final = lua("queue_put")
QUEUE_SETTLE: Final = lua("queue_settle")


S = TypeVar("S")
P = ParamSpec("P")
R = TypeVar("R")


class Scripts(NamedTuple, Generic[S]):
    """One client pair's handles on the scripts of the standalone store (called by SHA)."""

    incr: S
    cas: S
    acquire: S
    write: S
    release: S
    extend: S
    invalidate: S
    bump: S
    ensure: S


def register(once: Callable[[str], S], retrying: Callable[[str], S]) -> Scripts[S]:
    """Register the scripts with the ``register_script`` of a client pair: those whose effect
    or reply would change if repeated on the client that never retries (``once``)."""
    return Scripts(
        incr=once(INCR),
        cas=once(CAS),
        acquire=once(ACQUIRE),
        write=once(WRITE),
        release=once(RELEASE),
        extend=once(EXTEND),
        invalidate=retrying(INVALIDATE),  # idempotent
        # Not idempotent (a retried bump increments twice), but incrementing twice is as good
        # as once: a retry only costs an extra miss.
        bump=retrying(BUMP),
        ensure=retrying(ENSURE),  # idempotent
    )


class ScriptCall(NamedTuple):
    """One run of a script: ``what`` names it in errors, ``name`` is its :class:`Scripts`
    field (and the cluster client's name for it)."""

    what: str
    name: str
    keys: list[str]
    args: list[Any]


def incr_call(key: str, delta: int, ttl_ms: int | None) -> ScriptCall:
    return ScriptCall("incr script", "incr", [key], [delta, ttl_ms or 0])


def compare_and_swap_call(key: str, expected: bytes, new: bytes) -> ScriptCall:
    return ScriptCall("compare-and-swap script", "cas", [key], [expected, new])


def acquire_call(lease_key: str, token: bytes, ttl_ms: int) -> ScriptCall:
    return ScriptCall("lease script", "acquire", [lease_key], [token, ttl_ms])


def release_call(key: str, lease_key: str, token: bytes, channel: str) -> ScriptCall:
    return ScriptCall("release script", "release", [key, lease_key], [token, channel])


def extend_call(lease_key: str, token: bytes, ttl_ms: int) -> ScriptCall:
    return ScriptCall("extend script", "extend", [lease_key], [token, ttl_ms])


def ensure_call(version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int) -> ScriptCall:
    return ScriptCall("version script", "ensure", list(version_keys), [keep_ms, *fresh])


def bump_call(
    version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int, channel: str
) -> ScriptCall:
    return ScriptCall("bump script", "bump", list(version_keys), [channel, keep_ms, *fresh])


def invalidate_call(entries: Sequence[tuple[str, str]], channel: str) -> ScriptCall:
    keys = [name for pair in entries for name in pair]
    return ScriptCall("invalidate script", "invalidate", keys, [channel])


def write_call(
    key: str,
    lease_key: str,
    token: bytes,
    value: bytes,
    ttl_ms: int | None,
    channel: str,
    only_if_absent: bool = False,
    versions: Sequence[VersionCheck] = (),
) -> ScriptCall:
    """write.lua for a fill under the lease ``token``, or a plain write (``token`` empty):
    then per version key, the version the entry records and whether the key must be absent."""
    keys = [key, lease_key]
    args: list[Any] = [token, value, ttl_ms or 0, channel, int(only_if_absent)]
    for version_key, version, create in versions:
        keys.append(version_key)
        args += (version, int(create))
    return ScriptCall("fill script" if token else "write script", "write", keys, args)


def ttl_from_pttl(remaining: int) -> int | None:
    """:meth:`~cacheplug.stores.Store.ttl_ms` from PTTL's reply (-2: absent, -1: no expiry)."""
    return {-2: -1, -1: None}.get(remaining, remaining)


def guarded(what: str, command: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``command(*args, **kwargs)``, a redis-py failure raised as :func:`unavailable`."""
    try:
        return command(*args, **kwargs)
    except ERRORS as exc:
        raise unavailable(what, exc) from exc


def unavailable(command: str, exc: BaseException) -> CacheError:
    """The cacheplug error for a failed ``command``."""
    if isinstance(exc, redis.ResponseError) and _NOT_A_COUNTER in str(exc):
        return NotACounter("the value under this key is not an integer counter")
    # redis-py's messages name hosts, not passwords; redacted all the same, in case one
    # quotes a URL.
    return CacheUnavailable(redact(f"redis {command} failed: {type(exc).__name__}: {exc}"))
