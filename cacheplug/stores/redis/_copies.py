"""Where copies of version keys and replicas of hot entries live on a Redis Cluster.

Two kinds of key would otherwise send a share of *every* read to one node:

- a **namespace version key** is read with every entry of the namespace;
- a **hot entry** (and what it records) lives in one slot.

So the cluster is given ``SHARDS`` *shard tags*: hash tags whose slots are spread evenly over
the 16384 slots (the tag of shard ``j`` hashes into slots ``j*1024 .. j*1024+1023``). Since
``redis-cli --cluster create`` and resharding give each master contiguous ranges, shards spread
over the masters as evenly as the slots do.

- A namespace version key has a **copy** in every shard. An entry's reads and writes use the
  copy of the shard nearest its own slot (usually on the entry's own node), so version reads
  spread exactly as the entries do. Copies are made from the copy in shard 0 and a bump sets
  them all to one new value, so they agree.
- A replica of a hot entry lives in a shard's slot with the copies it records (the namespace
  versions, and the *key version* a key invalidation bumps): one ``MGET`` on one node reads
  it, and reads picking replicas at random spread over the masters.

This module knows cacheplug's key layout (``<namespace>:<format>:<purpose>:{<key>}``, see
``cacheplug.encoding._keys``): it is the cluster store's business, not the cache's.
"""

from __future__ import annotations

from typing import Final

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from cacheplug._memo import BoundedMemo

SHARDS: Final = 16
_SLOTS_PER_SHARD: Final = REDIS_CLUSTER_HASH_SLOTS // SHARDS


def _shard_tag(shard: int) -> str:
    """The first ``~<shard>.<n>`` whose slot falls in the shard's range."""
    n = 0
    while True:
        tag = f"~{shard}.{n}"
        if key_slot(f"{{{tag}}}".encode()) // _SLOTS_PER_SHARD == shard:
            return "{" + tag + "}"
        n += 1


SHARD_TAGS: Final = tuple(_shard_tag(shard) for shard in range(SHARDS))
_SHARD_OF_TAG: Final = {tag: shard for shard, tag in enumerate(SHARD_TAGS)}


def purpose(key: str) -> str:
    """The purpose field of a cacheplug store key (``d``, ``l``, ``t``, ``n``, ``v``...,
    without the hashed-key ``#``), or ``""`` for a key of another layout."""
    if key.startswith("{~"):
        key = key[key.index("}") + 1 :]
    parts = key.split(":", 3)
    if len(parts) < 4 or not parts[3].startswith("{"):
        return ""
    return parts[2].rstrip("#")


def with_purpose(key: str, new: str) -> str:
    """``key`` (a cacheplug store key, not a replica) with another purpose field."""
    namespace, version, old, rest = key.split(":", 3)
    hashed = "#" if old.endswith("#") else ""
    return f"{namespace}:{version}:{new}{hashed}:{rest}"


def marker_of(key: str) -> str | None:
    """The key version of the entry ``key``: its presence marks the entry as replicated.
    ``None`` for anything else (replicas, keys of another layout)."""
    if key.startswith("{~") or purpose(key) != "d":
        return None
    return with_purpose(key, "v")


def in_shard(key: str, shard: int) -> str:
    """The name of ``key``'s copy (or replica) in ``shard``."""
    return SHARD_TAGS[shard] + key


def shard_of(key: str) -> int:
    """The shard a key's version copies are read from: its own for a key placed in a shard,
    else the shard nearest the key's slot."""
    if key.startswith("{~"):
        shard = _SHARD_OF_TAG.get(key[: key.index("}") + 1])
        if shard is not None:
            return shard
    return key_slot(key.encode()) // _SLOTS_PER_SHARD


def spread(replicas: int) -> list[int]:
    """The shards ``replicas`` replicas of a key go to: evenly spaced, so that they spread
    over the masters as evenly as the slots do."""
    count = max(1, min(replicas, SHARDS))
    return [index * SHARDS // count for index in range(count)]


class CopyNames:
    """Remembers which keys have copies (namespace and key versions) and their names."""

    def __init__(self) -> None:
        self._memo: BoundedMemo[str, tuple[str, ...] | None] = BoundedMemo()

    def of(self, key: str) -> tuple[str, ...] | None:
        """The names of ``key``'s copies, one per shard; ``None`` if it has none."""
        try:
            return self._memo[key]
        except KeyError:
            pass
        copies = None
        if purpose(key) in ("n", "v") and not key.startswith("{~"):
            copies = tuple(in_shard(key, shard) for shard in range(SHARDS))
        return self._memo.remember(key, copies)
