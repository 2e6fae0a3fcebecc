"""Write-behind: writes queued in the store and drained into a sink in batches.

``put`` appends to a queue and returns at once; workers read batches, call the sink, and
acknowledge only after the sink returned. On Redis the queue is a stream with a consumer
group, so the queue survives the process (and, with AOF, the server):

- an entry read by a worker that died is reclaimed by another after ``claim_idle`` seconds
  (``XAUTOCLAIM``), so nothing is lost;
- an entry delivered ``max_deliveries`` times without the sink succeeding goes to a
  dead-letter stream (``dead_letters()``) instead of blocking the queue;
- the queue holds at most ``max_length`` entries: ``put`` raises :class:`QueueFull` rather
  than dropping anything.

A batch can be delivered twice (the worker died after the sink wrote part of it, before
acknowledging), so **the sink must be idempotent**: each entry carries its queue id, unique
and stable across redeliveries; record the ids applied (or upsert last-write-wins values) in
the same database transaction as the writes.

On the embedded store the queue is an in-process list: nothing survives the process, which
``durable=True`` refuses.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cacheplug._exceptions import CacheError, ConfigurationError
from cacheplug._types import DEFAULT, MISSING

if TYPE_CHECKING:
    from cacheplug._cache import Cache

_GROUP: Final = "cacheplug"
_PUT_LUA: Final = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
local id = redis.call('XADD', KEYS[1], '*', 'k', ARGV[2], 'v', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], id .. '|' .. ARGV[3])
return id
"""
# After the sink: forget a key's pending value unless a later put replaced it.
_SETTLE_LUA: Final = """
for i = 1, #ARGV, 2 do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held and string.sub(held, 1, #ARGV[i + 1] + 1) == ARGV[i + 1] .. '|' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 0
"""


class QueueFull(CacheError):
    """The write-behind queue holds ``max_length`` entries: the write was not queued."""


@dataclass(frozen=True)
class QueuedWrite:
    """One queued write, as the sink gets it. ``id`` is unique and the same on every
    delivery of the entry: an idempotent sink records the ids it applied."""

    id: str
    key: str
    value: Any


Sink = Callable[[list[QueuedWrite]], None]


class WriteBehind:
    """A named write-behind queue of one cache (see the module docs)."""

    def __init__(
        self,
        cache: Cache,
        name: str,
        sink: Sink,
        *,
        batch_size: int = 500,
        max_length: int = 100_000,
        max_deliveries: int = 5,
        claim_idle: float = 30.0,
        durable: bool = True,
    ) -> None:
        self.cache = cache
        self.name = name
        self.sink = sink
        self.batch_size = batch_size
        self.max_length = max_length
        self.max_deliveries = max_deliveries
        self.claim_idle = claim_idle
        clients = getattr(cache.store, "clients", None)
        if clients is not None and cache.store.shared:
            self._queue: _Queue = _RedisQueue(self, *clients())
        elif durable and cache.store.shared:
            raise ConfigurationError(f"{cache.store!r} has no durable queue for write-behind")
        elif durable:
            raise ConfigurationError(
                "the embedded store keeps write-behind queues in this process only: nothing "
                "survives it; pass durable=False to accept that"
            )
        else:
            self._queue = _MemoryQueue(self)

    def put(self, key: str, value: Any) -> str:
        """Queue a write of ``value`` for ``key`` (one round trip); its queue id. Raises
        :class:`QueueFull` when the queue is full, :class:`CacheUnavailable` when the store
        cannot be reached: nothing is dropped silently."""
        record = self.cache._codec.encode(
            f"wb:{self.name}", value, created_at=time.time(), fresh_until=float("inf")
        )
        if record is None:
            raise ValueError(f"the value for {key!r} cannot be queued (too large or unpicklable)")
        return self._queue.put(key, record)

    def drain(self, consumer: str = "worker", block: float = 0.0) -> int:
        """Hand one batch to the sink (reclaimed entries of dead workers first); how many
        entries were handled. The sink's exception propagates; its batch is redelivered."""
        entries = self._queue.read(consumer, block)
        if not entries:
            return 0
        good: list[QueuedWrite] = []
        dead: list[tuple[str, bytes, bytes]] = []
        for entry_id, key, record, deliveries in entries:
            decoded = self.cache._codec.decode(f"wb:{self.name}", record)
            if decoded is None or deliveries > self.max_deliveries:
                dead.append((entry_id, key.encode(), record))
            else:
                good.append(QueuedWrite(entry_id, key, decoded[0]))
        if dead:
            self._queue.bury(dead)
            self._queue.settle([(key.decode(), entry_id) for entry_id, key, _ in dead])
        if good:
            self.sink(good)
            self._queue.ack([entry.id for entry in good], [(e.key, e.id) for e in good])
        return len(entries)

    def run(self, stop: threading.Event, consumer: str | None = None, idle: float = 1.0) -> None:
        """Drain until ``stop`` is set (a worker loop; errors are retried after ``idle``)."""
        name = consumer or f"worker-{uuid.uuid4().hex[:8]}"
        while not stop.is_set():
            try:
                if not self.drain(name, block=idle):
                    stop.wait(0.01)
            except Exception:
                stop.wait(idle)

    def start(self, consumer: str | None = None) -> threading.Event:
        """Run a worker in a daemon thread (for small apps); set the returned event to stop
        it."""
        stop = threading.Event()
        threading.Thread(target=self.run, args=(stop, consumer), daemon=True).start()
        return stop

    def pending(self, key: str) -> Any:
        """The value last queued for ``key`` that the sink has not taken yet, or
        :data:`~cacheplug.MISSING`: read your own writes before they reach the database."""
        record = self._queue.pending(key)
        if record is None:
            return MISSING
        decoded = self.cache._codec.decode(f"wb:{self.name}", record)
        return MISSING if decoded is None else decoded[0]

    def get_or_load(self, key: str, loader: Callable[[], Any], ttl: Any = DEFAULT) -> Any:
        """The pending value of ``key`` if it has one, else ``cache.get_or_load``."""
        value = self.pending(key)
        if value is not MISSING:
            return value
        return self.cache.get_or_load(key, loader, ttl)

    def length(self) -> int:
        """Entries queued and not yet acknowledged."""
        return self._queue.length()

    def dead_letters(self) -> list[tuple[str, str]]:
        """``(id, key)`` of the entries given up on."""
        return self._queue.dead()


_Entry = tuple[str, str, bytes, int]  # id, key, record, deliveries so far


class _Queue:
    def put(self, key: str, record: bytes) -> str:
        raise NotImplementedError

    def read(self, consumer: str, block: float) -> list[_Entry]:
        raise NotImplementedError

    def ack(self, ids: Sequence[str], settled: Sequence[tuple[str, str]] = ()) -> None:
        raise NotImplementedError

    def settle(self, settled: Sequence[tuple[str, str]]) -> None:
        raise NotImplementedError

    def pending(self, key: str) -> bytes | None:
        raise NotImplementedError

    def bury(self, entries: Sequence[tuple[str, bytes, bytes]]) -> None:
        raise NotImplementedError

    def length(self) -> int:
        raise NotImplementedError

    def dead(self) -> list[tuple[str, str]]:
        raise NotImplementedError


class _RedisQueue(_Queue):
    def __init__(self, owner: WriteBehind, client: Any, once: Any) -> None:
        # ``put`` goes through the client that never retries: a retried XADD whose reply was
        # lost would queue the write twice, under two ids no sink could tell apart.
        self._owner = owner
        self._client = client
        keys = owner.cache._keys
        self._stream = keys.build(_purpose(), f"{owner.name}")
        self._dead = keys.build(_purpose(), f"{owner.name}:dead")
        self._values = keys.build(_purpose(), f"{owner.name}:pending")
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
            from cacheplug._exceptions import CacheUnavailable

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
            raise QueueFull(
                f"write-behind queue {self._owner.name!r} holds {self._owner.max_length} "
                "entries: the write was not queued"
            )
        return added.decode() if isinstance(added, bytes) else str(added)

    def read(self, consumer: str, block: float) -> list[_Entry]:
        self._call("group", self._ensure_group)
        owner = self._owner
        claimed = self._call(
            "reclaim",
            self._client.xautoclaim,
            self._stream,
            _GROUP,
            consumer,
            int(owner.claim_idle * 1000),
            start_id="0-0",
            count=owner.batch_size,
        )
        messages = [m for m in claimed[1] if m and m[1]]
        if messages:
            return self._with_deliveries(messages)
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
            return []
        return [(_text(i), _text(f[b"k"]), f[b"v"], 1) for i, f in read[0][1]]

    def _with_deliveries(self, messages: list[Any]) -> list[_Entry]:
        ids = [_text(message_id) for message_id, _ in messages]
        pending = self._call(
            "pending",
            self._client.xpending_range,
            self._stream,
            _GROUP,
            min=ids[0],
            max=ids[-1],
            count=len(ids) * 2 + 10,
        )
        deliveries = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        return [
            (_text(i), _text(f[b"k"]), f[b"v"], deliveries.get(_text(i), 1)) for i, f in messages
        ]

    def ack(self, ids: Sequence[str], settled: Sequence[tuple[str, str]] = ()) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.xack(self._stream, _GROUP, *ids)
        pipe.xdel(self._stream, *ids)
        self._call("ack", pipe.execute)
        self.settle(settled)

    def settle(self, settled: Sequence[tuple[str, str]]) -> None:
        if settled:
            args = [part for pair in settled for part in pair]
            self._call("settle", self._settle, keys=[self._values], args=args)

    def pending(self, key: str) -> bytes | None:
        held = self._call("pending", self._client.hget, self._values, key)
        if held is None:
            return None
        return bytes(held).split(b"|", 1)[1]

    def bury(self, entries: Sequence[tuple[str, bytes, bytes]]) -> None:
        pipe = self._client.pipeline(transaction=True)
        for entry_id, key, record in entries:
            pipe.xadd(self._dead, {"id": entry_id, "k": key, "v": record})
        ids = [entry_id for entry_id, _, _ in entries]
        pipe.xack(self._stream, _GROUP, *ids)
        pipe.xdel(self._stream, *ids)
        self._call("dead letter", pipe.execute)

    def length(self) -> int:
        return int(self._call("length", self._client.xlen, self._stream))

    def dead(self) -> list[tuple[str, str]]:
        entries = self._call("dead letters", self._client.xrange, self._dead)
        return [(_text(f[b"id"]), _text(f[b"k"])) for _, f in entries]


class _MemoryQueue(_Queue):
    """In-process only (the embedded store): lost with the process."""

    def __init__(self, owner: WriteBehind) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        self._items: list[tuple[str, str, bytes]] = []
        self._taken: dict[str, tuple[str, bytes, int, float]] = {}
        self._dead: list[tuple[str, str]] = []
        self._values: dict[str, tuple[str, bytes]] = {}
        self._next = 0

    def put(self, key: str, record: bytes) -> str:
        with self._lock:
            if len(self._items) + len(self._taken) >= self._owner.max_length:
                raise QueueFull(f"write-behind queue {self._owner.name!r} is full")
            self._next += 1
            entry_id = f"{self._next}-0"
            self._items.append((entry_id, key, record))
            self._values[key] = (entry_id, record)
            return entry_id

    def read(self, consumer: str, block: float) -> list[_Entry]:
        with self._lock:
            now = time.monotonic()
            stale = [
                (entry_id, key, record, count + 1)
                for entry_id, (key, record, count, taken_at) in self._taken.items()
                if now - taken_at >= self._owner.claim_idle
            ][: self._owner.batch_size]
            if stale:
                for entry_id, key, record, count in stale:
                    self._taken[entry_id] = (key, record, count, now)
                return stale
            batch = self._items[: self._owner.batch_size]
            del self._items[: len(batch)]
            for entry_id, key, record in batch:
                self._taken[entry_id] = (key, record, 1, now)
            return [(entry_id, key, record, 1) for entry_id, key, record in batch]

    def ack(self, ids: Sequence[str], settled: Sequence[tuple[str, str]] = ()) -> None:
        with self._lock:
            for entry_id in ids:
                self._taken.pop(entry_id, None)
        self.settle(settled)

    def settle(self, settled: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            for key, entry_id in settled:
                held = self._values.get(key)
                if held is not None and held[0] == entry_id:
                    del self._values[key]

    def pending(self, key: str) -> bytes | None:
        with self._lock:
            held = self._values.get(key)
            return None if held is None else held[1]

    def bury(self, entries: Sequence[tuple[str, bytes, bytes]]) -> None:
        with self._lock:
            for entry_id, key, _ in entries:
                self._taken.pop(entry_id, None)
                self._dead.append((entry_id, key.decode()))

    def length(self) -> int:
        with self._lock:
            return len(self._items) + len(self._taken)

    def dead(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._dead)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _purpose() -> Any:
    from cacheplug._keys import Purpose

    return Purpose.QUEUE
