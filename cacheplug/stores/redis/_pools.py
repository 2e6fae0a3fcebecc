"""The store's connection pools: callers that find every connection lent out wait for one.

redis-py's default pools raise ``MaxConnectionsError`` at once when full; these wait, and give
up only when the pool stops making progress (the store is stuck or down).
"""

from __future__ import annotations

from typing import Any, Protocol

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

_POOL_WAIT_RAN_OUT = "No connection available."  # redis-py 5.3 to 8.x, sync and asyncio

# Waits in a row with no connection handed back at all, before a caller gives up anyway: the
# calls holding every connection are stuck with no socket timeout, or this process is not
# being run.
SILENT_WAITS = 10


class _Counted(Protocol):
    """A pool counting the connections handed back to it, by how they came back."""

    _healthy_back: int
    _broken_back: int


class _Waiter:
    """One caller's turn in the queue for a connection, over its pool waits; made only once
    a wait ran out (the hit path pays two attribute reads, not this object).

    A wait that runs out is not, alone, a reason to fail. Connections came back healthy
    meanwhile: the queue moves, keep waiting (back-pressure). Some came back broken and none
    healthy: the store fails the calls that hold them, so give up (an outage). None came back
    at all: the calls holding them are still running, and their socket timeout bounds them,
    so keep waiting. That last case is also what a stalled *process* looks like (a long
    garbage collection, a busy host): when it resumes, every waiter's time is past before the
    replies already in the sockets were read, and a rule of "nothing came back in time, so
    the store is stuck" turned such a stall into thousands of failed reads.
    """

    def __init__(self, pool: _Counted, healthy: int, broken: int) -> None:
        self._pool = pool
        self._healthy = healthy
        self._broken = broken
        self._silent = 0

    def give_up(self, exc: redis.ConnectionError) -> bool:
        """Whether the caller fails with ``exc``, raised by a wait for a connection."""
        if str(exc) != _POOL_WAIT_RAN_OUT:
            return True  # not a wait that ran out: making a connection failed
        pool = self._pool
        if pool._healthy_back != self._healthy:
            self._healthy, self._broken, self._silent = pool._healthy_back, pool._broken_back, 0
            return False
        if pool._broken_back != self._broken:
            return True
        self._silent += 1
        return self._silent >= SILENT_WAITS


class WaitingPool(redis.BlockingConnectionPool):
    """A blocking pool whose callers wait as long as the store answers.

    ``timeout`` is one wait for a connection, not the time in the queue: 2,000 callers sharing
    50 connections wait their turn however long the queue (back-pressure). A caller fails
    when a wait runs out and, during it, connections came back broken and none healthy (the
    store is stuck or down: then it is an outage, and is treated as one), or after
    ``SILENT_WAITS`` waits in a row with nothing handed back (see :class:`_Waiter`).
    """

    # Class attributes until the first connection comes back: no __init__ of ours sees every
    # way redis-py builds a pool (from_url, Sentinel's pool through a second base class).
    _healthy_back = 0
    _broken_back = 0

    def release(self, connection: Any) -> None:
        # A connection whose call failed is disconnected before it is handed back.
        if getattr(connection, "_sock", None) is not None:
            self._healthy_back += 1
        else:
            self._broken_back += 1
        parent: Any = super()  # untyped in some redis-py releases, typed in others
        parent.release(connection)

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        parent: Any = super()
        healthy, broken = self._healthy_back, self._broken_back
        waiter = None
        while True:
            try:
                return parent.get_connection(*args, **kwargs)
            except redis.ConnectionError as exc:
                waiter = waiter or _Waiter(self, healthy, broken)
                if waiter.give_up(exc):
                    raise


class AsyncWaitingPool(redis.asyncio.BlockingConnectionPool):
    """The asyncio twin of :class:`WaitingPool`."""

    _healthy_back = 0
    _broken_back = 0

    async def release(self, connection: Any) -> None:
        if connection.is_connected:
            self._healthy_back += 1
        else:
            self._broken_back += 1
        await super().release(connection)

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        parent: Any = super()
        healthy, broken = self._healthy_back, self._broken_back
        waiter = None
        while True:
            try:
                return await parent.get_connection(*args, **kwargs)
            except redis.ConnectionError as exc:
                waiter = waiter or _Waiter(self, healthy, broken)
                if waiter.give_up(exc):
                    raise


class BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, WaitingPool):
    """The connections to the master a Sentinel names, from a pool that makes callers wait
    when it is full (redis-py has no such pool; the two compose: Sentinel's part only finds
    the master, the blocking part only hands out connections)."""


class AsyncBlockingSentinelPool(redis.asyncio.sentinel.SentinelConnectionPool, AsyncWaitingPool):
    """The asyncio twin of :class:`BlockingSentinelPool`."""
