"""Where write-behind entries wait: a Redis stream with a consumer group (durable), or an
in-process list (the embedded store).

Entries are handed out in batches, and a batch is remembered (its *manifest*: the entry ids in
it) before the sink sees it. A batch given up by a dead worker is handed out again exactly as
it was, whoever reclaims it and whatever their batch size, so the coalesced writes built from
it are the same, with the same ids: an idempotent sink can tell them apart from new ones.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from cacheplug._exceptions import CacheError, CacheUnavailable

if TYPE_CHECKING:
    from cacheplug._write_behind import WriteBehind

_GROUP: Final = "cacheplug"
_PUT_LUA: Final = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
local id = redis.call('XADD', KEYS[1], '*', 'k', ARGV[2], 'v', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], id .. '|' .. ARGV[3])
return id
"""
# After the sink: forget a key's pending value unless a later put replaced it; the keys
# forgotten (the database now has their latest write).
_SETTLE_LUA: Final = """
local settled = {}
for i = 1, #ARGV, 2 do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held and string.sub(held, 1, #ARGV[i + 1] + 1) == ARGV[i + 1] .. '|' then
    redis.call('HDEL', KEYS[1], ARGV[i])
    table.insert(settled, ARGV[i])
  end
end
return settled
"""


class Entry(NamedTuple):
    id: str
    key: str
    record: bytes
    deliveries: int


class Batch(NamedTuple):
    id: str
    entries: list[Entry]
    recorded: bool
    """True when the batch was handed out before (its manifest exists): it must be handled
    whole, as it was."""


def new_batch_id() -> str:
    return uuid.uuid4().hex


def order(entry_id: str) -> tuple[int, int]:
    """Stream ids in the order they were added (``"<ms>-<seq>"``)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Queue:
    def put(self, key: str, record: bytes) -> str:
        raise NotImplementedError

    def read(self, consumer: str, block: float) -> Batch | None:
        raise NotImplementedError

    def record(self, batch: str, ids: Sequence[str]) -> None:
        raise NotImplementedError

    def ack(self, batch: str, ids: Sequence[str], settled: Sequence[tuple[str, str]]) -> list[str]:
        """Acknowledge the batch; the keys whose latest write it held."""
        raise NotImplementedError

    def bury(self, batch: str, entries: Sequence[Entry]) -> list[str]:
        raise NotImplementedError

    def pending(self, key: str) -> bytes | None:
        raise NotImplementedError

    def length(self) -> int:
        raise NotImplementedError

    def dead(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def dead_count(self) -> int:
        raise NotImplementedError


class RedisQueue(Queue):
    def __init__(self, owner: WriteBehind, client: Any, once: Any) -> None:
        # ``put`` goes through the client that never retries: a retried XADD whose reply was
        # lost would queue the write twice, under two ids no sink could tell apart.
        self._owner = owner
        self._client = client
        # One hash tag (the queue's name) for all four keys: on a cluster they share a slot,
        # as the scripts and transactions over them need.
        self._stream = owner.cache._keys.build(_purpose(), owner.name)
        self._dead = f"{self._stream}:dead"
        self._values = f"{self._stream}:pending"
        self._batches = f"{self._stream}:batches"
        self._put = once.register_script(_PUT_LUA)
        self._settle = client.register_script(_SETTLE_LUA)
        self._group_ready = False

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return fn(*args, **kwargs)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._group_ready = False
            raise CacheError(f"write-behind {what} failed: {exc}") from exc
        except (redis.RedisError, OSError) as exc:
            raise CacheUnavailable(f"write-behind {what} failed: {exc}") from exc

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        import redis

        try:
            self._client.xgroup_create(self._stream, _GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def put(self, key: str, record: bytes) -> str:
        self._call("group", self._ensure_group)
        added = self._call(
            "put",
            self._put,
            keys=[self._stream, self._values],
            args=[self._owner.max_length, key, record],
        )
        if added is None:
            raise full(self._owner)
        return _text(added)

    def read(self, consumer: str, block: float) -> Batch | None:
        self._call("group", self._ensure_group)
        owner = self._owner
        idle_ms = int(owner.claim_idle * 1000)
        stale = self._call(
            "reclaim",
            self._client.xpending_range,
            self._stream,
            _GROUP,
            min="-",
            max="+",
            count=owner.batch_size,
            idle=idle_ms,
        )
        if stale:
            return self._reclaim(consumer, stale, idle_ms)
        read = self._call(
            "read",
            self._client.xreadgroup,
            _GROUP,
            consumer,
            {self._stream: ">"},
            count=owner.batch_size,
            block=int(block * 1000) if block else None,
        )
        if not read:
            return None
        entries = [Entry(_text(i), _text(f[b"k"]), f[b"v"], 1) for i, f in read[0][1]]
        return Batch(new_batch_id(), entries, recorded=False)

    def _reclaim(self, consumer: str, stale: list[Any], idle_ms: int) -> Batch | None:
        manifests = {
            _text(batch): _text(ids).split(",")
            for batch, ids in self._call("manifests", self._client.hgetall, self._batches).items()
        }
        batch_of = {entry_id: batch for batch, ids in manifests.items() for entry_id in ids}
        delivered = {_text(p["message_id"]): int(p["times_delivered"]) for p in stale}
        oldest = _text(stale[0]["message_id"])
        batch = batch_of.get(oldest)
        if batch is not None:
            targets = manifests[batch]  # handed out before: again exactly as it was
        else:
            batch = new_batch_id()
            targets = [entry_id for entry_id in delivered if entry_id not in batch_of]
        claimed = self._call(
            "claim",
            self._client.xclaim,
            self._stream,
            _GROUP,
            consumer,
            idle_ms,
            targets,
        )
        messages = [m for m in claimed if m and m[1]]
        if not messages:
            return None  # another worker was quicker
        deliveries = max(delivered.get(_text(i), 1) for i, _ in messages) + 1
        entries = [Entry(_text(i), _text(f[b"k"]), f[b"v"], deliveries) for i, f in messages]
        return Batch(batch, entries, recorded=batch in manifests)

    def record(self, batch: str, ids: Sequence[str]) -> None:
        self._call("manifest", self._client.hset, self._batches, batch, ",".join(ids))

    def ack(self, batch: str, ids: Sequence[str], settled: Sequence[tuple[str, str]]) -> list[str]:
        pipe = self._client.pipeline(transaction=True)
        pipe.xack(self._stream, _GROUP, *ids)
        pipe.xdel(self._stream, *ids)
        pipe.hdel(self._batches, batch)
        self._call("ack", pipe.execute)
        return self._forget(settled)

    def bury(self, batch: str, entries: Sequence[Entry]) -> list[str]:
        pipe = self._client.pipeline(transaction=True)
        for entry in entries:
            pipe.xadd(self._dead, {"id": entry.id, "k": entry.key, "v": entry.record})
        ids = [entry.id for entry in entries]
        pipe.xack(self._stream, _GROUP, *ids)
        pipe.xdel(self._stream, *ids)
        pipe.hdel(self._batches, batch)
        self._call("dead letter", pipe.execute)
        return self._forget([(entry.key, entry.id) for entry in entries])

    def _forget(self, settled: Sequence[tuple[str, str]]) -> list[str]:
        if not settled:
            return []
        args = [part for pair in settled for part in pair]
        done = self._call("settle", self._settle, keys=[self._values], args=args)
        return [_text(key) for key in done or ()]

    def pending(self, key: str) -> bytes | None:
        held = self._call("pending", self._client.hget, self._values, key)
        if held is None:
            return None
        return bytes(held).split(b"|", 1)[1]

    def length(self) -> int:
        return int(self._call("length", self._client.xlen, self._stream))

    def dead(self) -> list[tuple[str, str]]:
        entries = self._call("dead letters", self._client.xrange, self._dead)
        return [(_text(f[b"id"]), _text(f[b"k"])) for _, f in entries]

    def dead_count(self) -> int:
        return int(self._call("dead letters", self._client.xlen, self._dead))


class MemoryQueue(Queue):
    """In-process only (the embedded store): lost with the process."""

    def __init__(self, owner: WriteBehind) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        self._items: list[tuple[str, str, bytes]] = []
        # id -> key, record, deliveries, taken at, batch
        self._taken: dict[str, tuple[str, bytes, int, float, str]] = {}
        self._recorded: set[str] = set()
        self._dead: list[tuple[str, str]] = []
        self._values: dict[str, tuple[str, bytes]] = {}
        self._next = 0

    def put(self, key: str, record: bytes) -> str:
        with self._lock:
            if len(self._items) + len(self._taken) >= self._owner.max_length:
                raise full(self._owner)
            self._next += 1
            entry_id = f"{self._next}-0"
            self._items.append((entry_id, key, record))
            self._values[key] = (entry_id, record)
            return entry_id

    def read(self, consumer: str, block: float) -> Batch | None:
        with self._lock:
            now = time.monotonic()
            stale = [
                (entry_id, batch)
                for entry_id, (_, _, _, taken_at, batch) in self._taken.items()
                if now - taken_at >= self._owner.claim_idle
            ]
            if stale:
                batch = stale[0][1]
                entries = []
                for entry_id, (key, record, count, _, of) in list(self._taken.items()):
                    if of == batch:
                        self._taken[entry_id] = (key, record, count + 1, now, batch)
                        entries.append(Entry(entry_id, key, record, count + 1))
                return Batch(batch, entries, recorded=batch in self._recorded)
            taken = self._items[: self._owner.batch_size]
            if not taken:
                return None
            del self._items[: len(taken)]
            batch = new_batch_id()
            for entry_id, key, record in taken:
                self._taken[entry_id] = (key, record, 1, now, batch)
            return Batch(batch, [Entry(i, k, r, 1) for i, k, r in taken], recorded=False)

    def record(self, batch: str, ids: Sequence[str]) -> None:
        with self._lock:
            self._recorded.add(batch)

    def ack(self, batch: str, ids: Sequence[str], settled: Sequence[tuple[str, str]]) -> list[str]:
        with self._lock:
            for entry_id in ids:
                self._taken.pop(entry_id, None)
            self._recorded.discard(batch)
            return self._forget(settled)

    def bury(self, batch: str, entries: Sequence[Entry]) -> list[str]:
        with self._lock:
            for entry in entries:
                self._taken.pop(entry.id, None)
                self._dead.append((entry.id, entry.key))
            self._recorded.discard(batch)
            return self._forget([(entry.key, entry.id) for entry in entries])

    def _forget(self, settled: Sequence[tuple[str, str]]) -> list[str]:
        done = []
        for key, entry_id in settled:
            held = self._values.get(key)
            if held is not None and held[0] == entry_id:
                del self._values[key]
                done.append(key)
        return done

    def pending(self, key: str) -> bytes | None:
        with self._lock:
            held = self._values.get(key)
            return None if held is None else held[1]

    def length(self) -> int:
        with self._lock:
            return len(self._items) + len(self._taken)

    def dead(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._dead)

    def dead_count(self) -> int:
        with self._lock:
            return len(self._dead)


def full(owner: WriteBehind) -> CacheError:
    from cacheplug._write_behind import QueueFull

    return QueueFull(
        f"write-behind queue {owner.name!r} holds {owner.max_length} entries: "
        "the write was not queued"
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _purpose() -> Any:
    from cacheplug._keys import Purpose

    return Purpose.QUEUE
