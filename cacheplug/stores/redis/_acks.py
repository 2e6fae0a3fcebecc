"""Writes a replica has acknowledged, on a Redis Cluster: the invalidations.

An invalidation waits for a replica of its master to have it too (``WAIT 1`` on the
connection that wrote it), so a master that dies right after cannot take it along: the
replica that takes over has it.

A replica that does not answer in time (still in its first sync, resyncing after a restart,
busy) is not an outage: the script has run on the master by then, so the entry is gone for
every reader. The invalidation returns as done, and its replication is confirmed in the
background (:class:`Unconfirmed`): by the replicas' offsets while the slot's master is the
same, or by sending it again (it is idempotent) to the slot's new master after a failover.
Failing it instead would count against the cache's circuit breaker, which then refuses
every later invalidation of the process (queued, not sent) while other processes keep
reading the old entries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final, NamedTuple, TypeVar

import redis
import redis.cluster
import redis.exceptions

from cacheplug._redact import redact
from cacheplug.exceptions import CacheUnavailable
from cacheplug.stores.redis._scripts import CLUSTER_ERRORS as _ERRORS
from cacheplug.stores.redis._untyped import node_for_key, queue_command

logger = logging.getLogger("cacheplug")

_REPLICAS_TTL: Final = 5.0  # seconds a master's replica count is trusted
MAX_UNCONFIRMED: Final = 10_000
_CHECK_EVERY: Final = 0.1  # seconds between two confirmation rounds
_RETRY_EVERY: Final = 0.1  # seconds between two attempts while a master fails over
# What a cluster failing over answers: the dead master's connections fail, the cluster is
# down until a replica takes over, the slot moved, a demoted master refuses writes.
_FAILOVER: Final = (
    redis.ConnectionError,
    redis.TimeoutError,
    OSError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError,
    redis.exceptions.SlotNotCoveredError,
    AttributeError,  # redis-py resetting a connection mid-read (see CLUSTER_ERRORS)
)
T = TypeVar("T")


class _Write(NamedTuple):
    """A write a replica has not acknowledged yet: ``slot_key`` finds its slot's master;
    ``node``, ``replid`` and ``offset`` say where it landed (the master's replication id
    and offset right after it; ``replid`` empty when unknown: sent again); ``resend``
    sends it again through :class:`AcknowledgedWrites`."""

    slot_key: str
    node: str
    replid: str
    offset: int
    resend: Callable[[], object]


def _position(info: dict[str, Any]) -> tuple[str, int] | None:
    """A master's replication id and offset, from ``INFO replication`` (None: not a master)."""
    if info.get("role") != "master":
        return None
    return str(info.get("master_replid", "")), int(info.get("master_repl_offset", 0))


def _acknowledged(info: dict[str, Any]) -> int:
    """The highest offset a replica of this master has acknowledged."""
    offsets = [
        int(value.get("offset", 0))
        for name, value in info.items()
        if name.startswith("slave") and isinstance(value, dict)
    ]
    return max(offsets, default=-1)


class AcknowledgedWrites:
    """Runs writes on a slot's master and waits for a replica to acknowledge them.

    ``client``: the cluster client (raising :class:`CacheUnavailable` when there is none);
    ``timeout_ms``: how long ``WAIT`` waits for the acknowledgement; ``failover_wait``: for
    how long a write is tried again while a master fails over; ``max_unconfirmed``:
    how many writes without one are kept for confirmation (see :class:`Unconfirmed`).
    """

    def __init__(
        self,
        client: Callable[[], redis.cluster.RedisCluster],
        timeout_ms: int,
        failover_wait: float = 5.0,
        max_unconfirmed: int = MAX_UNCONFIRMED,
    ) -> None:
        self._client = client
        self._timeout_ms = timeout_ms
        self._failover_wait = failover_wait
        self._replicas: dict[str, tuple[bool, float]] = {}
        self.unconfirmed = Unconfirmed(self, max_unconfirmed)

    def set_copies(self, copies: Sequence[str], version: int, keep_ms: int | None) -> None:
        """Set every copy to ``version``, node by node, each node's writes acknowledged by a
        replica (as :meth:`run`). Sent again, all copies get a fresh version: setting an
        old one back could bring back entries a later invalidation outdated."""
        self._through_failover(lambda: self._set_copies(copies, version, keep_ms))

    def _set_copies(self, copies: Sequence[str], version: int, keep_ms: int | None) -> None:
        by_node: dict[str, tuple[Any, list[str]]] = {}
        for copy in copies:
            node = node_for_key(self._client(), copy)
            by_node.setdefault(node.name, (node, []))[1].append(copy)
        for node, names in by_node.values():
            connection = self._client().get_redis_connection(node)
            replicated = self._has_replicas(node)
            with connection.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.set(name, version, px=keep_ms)
                if replicated:
                    queue_command(pipe, "WAIT", 1, self._timeout_ms)
                acknowledged = pipe.execute()[-1] if replicated else 1
            if int(acknowledged) < 1:
                self._landed(
                    ("copies", tuple(copies), node.name),
                    names[0],
                    node,
                    lambda: self.set_copies(copies, secrets.randbits(53) | 1, keep_ms),
                )

    def run(self, lua: str, keys: list[str], args: list[Any]) -> Any:
        """Run an invalidation script on the master of ``keys``' slot and wait until a
        replica has it too (same connection: ``WAIT`` counts that connection's writes)."""
        return self._through_failover(lambda: self._run(lua, keys, args))

    def _run(self, lua: str, keys: list[str], args: list[Any]) -> Any:
        node = node_for_key(self._client(), keys[0])
        connection = self._client().get_redis_connection(node)
        replicated = self._has_replicas(node)
        with connection.pipeline(transaction=False) as pipe:
            pipe.eval(lua, len(keys), *keys, *args)
            if replicated:
                queue_command(pipe, "WAIT", 1, self._timeout_ms)
            replies = pipe.execute()
        if replicated and int(replies[1]) < 1:
            self._landed(("script", tuple(keys)), keys[0], node, lambda: self.run(lua, keys, args))
        return replies[0]

    def _through_failover(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, tried again while the cluster fails over (for up to
        ``failover_wait`` seconds): an invalidation that returns without landing is one
        other processes do not see, and one failing counts against the cache's circuit
        breaker, which then refuses the invalidations bound for the healthy masters too.
        Given up at once when no node answers (the cluster is down, not failing over)."""
        deadline = time.monotonic() + self._failover_wait
        while True:
            try:
                return attempt()
            except _ERRORS as exc:
                failed = exc
            try:
                self._client().nodes_manager.initialize()  # the slot may have moved: look again
            except _ERRORS:
                deadline = 0.0  # no node answers
            if not isinstance(failed, _FAILOVER) or time.monotonic() >= deadline:
                raise CacheUnavailable(
                    redact(f"redis cluster invalidation failed: {failed}")
                ) from failed
            time.sleep(_RETRY_EVERY)

    def _landed(
        self, identity: Hashable, slot_key: str, node: Any, resend: Callable[[], object]
    ) -> None:
        """A write ran on ``node`` but no replica acknowledged it in time: keep it for
        confirmation, with where the master's replication stood right after it."""
        position: tuple[str, int] | None = None
        try:
            info = self._client().get_redis_connection(node).info("replication")
            position = _position(info)
            self._replicas[node.name] = (
                int(info.get("connected_slaves", 0)) > 0,
                time.monotonic(),
            )
        except _ERRORS:
            self._replicas.pop(node.name, None)  # look again next time
        replid, offset = position or ("", 0)
        self.unconfirmed.add(identity, _Write(slot_key, node.name, replid, offset, resend))

    def _has_replicas(self, node: Any) -> bool:
        """Whether ``node`` has a replica to acknowledge writes (asked at most every 5 s: a
        master without one would make every ``WAIT`` run out its timeout)."""
        known = self._replicas.get(node.name)
        now = time.monotonic()
        if known is not None and now - known[1] < _REPLICAS_TTL:
            return known[0]
        try:
            info = self._client().get_redis_connection(node).info("replication")
        except _ERRORS:
            return True
        found = int(info.get("connected_slaves", 0)) > 0
        self._replicas[node.name] = (found, now)
        return found

    def check(self, writes: Sequence[tuple[Hashable, _Write]]) -> tuple[set[Hashable], bool]:
        """Which of ``writes`` are confirmed now, and whether all could be checked. A write
        is confirmed when a replica of the same master (same replication history)
        acknowledged an offset past it, or once it was sent again to its slot's new master."""
        client = self._client()
        done: set[Hashable] = set()
        checked = True
        positions: dict[str, tuple[str, int, int] | None] = {}
        failed: set[str] = set()
        for identity, write in writes:
            master: Any = None
            try:
                master = node_for_key(client, write.slot_key)
                if master.name in failed:
                    continue
                if master.name == write.node and write.replid:
                    if master.name not in positions:
                        info = client.get_redis_connection(master).info("replication")
                        where = _position(info)
                        positions[master.name] = (
                            None if where is None else (*where, _acknowledged(info))
                        )
                    now = positions[master.name]
                    if now is not None and now[0] == write.replid:
                        if now[2] >= write.offset:
                            done.add(identity)
                        continue
                # The slot has another master, or this one another history: it may lack
                # the write. Again, idempotently (a miss at most); a resend no replica
                # acknowledges is kept afresh under the same identity.
                write.resend()
                done.add(identity)
            except (CacheUnavailable, *_ERRORS):
                checked = False  # a failover under way, maybe: next round
                failed.add(write.node if master is None else master.name)
        if not checked:
            with contextlib.suppress(*_ERRORS):
                client.nodes_manager.initialize()
        return done, checked


class Unconfirmed:
    """Writes that landed on a master without a replica's acknowledgement, confirmed by a
    daemon thread (every 0.1 s while any is kept, backing off while the cluster fails;
    stopped by :meth:`stop`).

    Bounded: past ``max_items`` the oldest is forgotten (logged once per burst). Forgetting
    one leaves an invalidation that is on its master, as on a master without a replica; the
    alternatives would fail or block invalidations because a replica is slow, which is the
    outage this exists to avoid. The oldest goes first: replication is in order, so it is
    the nearest to being acknowledged.
    """

    def __init__(self, writes: AcknowledgedWrites, max_items: int) -> None:
        self._writes = writes
        self.max_items = max_items
        self._items: dict[Hashable, _Write] = {}
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._work = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._forgotten = 0
        self.kept = 0
        """How many writes were kept for confirmation, in all."""

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def add(self, identity: Hashable, write: _Write) -> None:
        with self._lock:
            if self._pid != os.getpid():  # the thread stayed in the parent
                self._pid, self._thread = os.getpid(), None
            self._items.pop(identity, None)  # the newest write of it is the one to confirm
            self._items[identity] = write
            self.kept += 1
            if len(self._items) > self.max_items:
                del self._items[next(iter(self._items))]
                self._forgotten += 1
                if self._forgotten == 1:
                    logger.warning(
                        "cacheplug: over %d cluster invalidations wait for a replica's "
                        "acknowledgement; the oldest are no longer tracked (they are on their "
                        "masters, but would not survive a master's death before replicating)",
                        self.max_items,
                    )
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="cacheplug-replica-acks", daemon=True
                )
                self._thread.start()
            self._work.set()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every write kept to be confirmed."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._items:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping.is_set():
                    return False
                self._drained.wait(min(left, _CHECK_EVERY))
            return True

    def stop(self) -> None:
        self._stopping.set()
        self._work.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        backoff = _CHECK_EVERY
        while not self._stopping.is_set():
            self._work.wait()
            with self._lock:
                writes = list(self._items.items())
            if self._stopping.is_set():
                return
            try:
                done, checked = self._writes.check(writes)
            except (CacheUnavailable, *_ERRORS) as exc:  # no client
                logger.debug("cacheplug: replica acknowledgements not checked: %s", exc)
                done, checked = set(), False
            backoff = _CHECK_EVERY if checked else min(2.0, backoff * 2)
            with self._lock:
                for identity, write in writes:
                    if identity in done and self._items.get(identity) is write:
                        del self._items[identity]
                if not self._items:
                    self._work.clear()
                    if self._forgotten:
                        logger.warning(
                            "cacheplug: %d cluster invalidations were not tracked to their "
                            "replicas (see the warning above); all others are confirmed",
                            self._forgotten,
                        )
                        self._forgotten = 0
                    self._drained.notify_all()
            self._stopping.wait(backoff)
