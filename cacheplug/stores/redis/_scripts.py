"""What both Redis stores share: the Lua scripts (``lua/*.lua``, shipped as package data),
the arguments of ``write.lua``, and how a redis-py error becomes a cacheplug error."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from typing import Final, Generic, NamedTuple, TypeVar

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


def write_args(
    token: bytes,
    value: bytes,
    ttl_ms: int | None,
    channel: str,
    only_if_absent: bool,
    versions: Sequence[VersionCheck],
) -> tuple[list[str], list[bytes | str | int]]:
    """The extra KEYS and the ARGV of write.lua."""
    keys: list[str] = []
    args: list[bytes | str | int] = [token, value, ttl_ms or 0, channel, int(only_if_absent)]
    for version_key, version, create in versions:
        keys.append(version_key)
        args += (version, int(create))
    return keys, args


def unavailable(command: str, exc: BaseException) -> CacheError:
    """The cacheplug error for a failed ``command``."""
    if isinstance(exc, redis.ResponseError) and _NOT_A_COUNTER in str(exc):
        return NotACounter("the value under this key is not an integer counter")
    # redis-py's messages name hosts, not passwords; redacted all the same, in case one
    # quotes a URL.
    return CacheUnavailable(redact(f"redis {command} failed: {type(exc).__name__}: {exc}"))
