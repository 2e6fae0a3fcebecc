"""The write-behind queue of the Redis stores: a Redis stream with a consumer group, so the
queue survives the process (and, with AOF, the server).

Next to the stream (``<key>``): ``<key>:pending`` (each key's latest queued value, for
read-your-writes), ``<key>:batches`` (the manifests of batches handed out) and
``<key>:dead`` (the dead letters, a stream). An entry read by a worker that died stays
pending in the group and is reclaimed by another after ``claim_idle`` seconds, in the batch
its manifest names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import redis

from cacheplug._redact import redact
from cacheplug.exceptions import CacheError, CacheUnavailable
from cacheplug.stores.queues import Batch, Entry, Queue, QueueLimits, new_batch_id
from cacheplug.stores.redis import _scripts as scripts

_GROUP: Final = "cacheplug"


class RedisStreamQueue(Queue):
    """A write-behind queue in a Redis stream (see the module docs).

    ``client`` retries once on a connection error; ``once`` never retries: ``put`` goes
    through it, since a retried XADD whose reply was lost would queue the write twice, under
    two ids no sink could tell apart. ``stream``: the stream's key; the other keys are named
    after it (on a cluster its hash tag puts all four in one slot, as the scripts and
    transactions over them need). ``limits``: the owner's settings, read at each call.
    """

    def __init__(self, client: Any, once: Any, stream: str, limits: QueueLimits) -> None:
        self._client = client
        self._stream = stream
        self._limits = limits
        self._dead = f"{self._stream}:dead"
        self._values = f"{self._stream}:pending"
        self._batches = f"{self._stream}:batches"
        self._put = once.register_script(scripts.QUEUE_PUT)
        self._settle = client.register_script(scripts.QUEUE_SETTLE)
        self._group_ready = False

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._group_ready = False
            raise CacheError(redact(f"write-behind {what} failed: {exc}")) from exc
        except (redis.RedisError, OSError) as exc:
            raise CacheUnavailable(redact(f"write-behind {what} failed: {exc}")) from exc

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self._client.xgroup_create(self._stream, _GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def put(self, key: str, record: bytes) -> str | None:
        self._call("group", self._ensure_group)
        added = self._call(
            "put",
            self._put,
            keys=[self._stream, self._values],
            args=[self._limits.max_length, key, record],
        )
        return None if added is None else _text(added)

    def read(self, consumer: str, block: float) -> Batch | None:
        self._call("group", self._ensure_group)
        limits = self._limits
        idle_ms = int(limits.claim_idle * 1000)
        stale = self._call(
            "reclaim",
            self._client.xpending_range,
            self._stream,
            _GROUP,
            min="-",
            max="+",
            count=limits.batch_size,
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
            count=limits.batch_size,
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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
