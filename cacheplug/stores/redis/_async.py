"""How :class:`~cacheplug.stores.redis.RedisStore` sends its commands over ``redis.asyncio``.

redis.asyncio connections belong to the event loop that opened them, so each loop gets its
own pair of clients (retrying once / never retrying, as the sync ones) and its own script
handles; they are dropped once the loop is closed, when the next loop gets its own. The
store's ``a*`` methods build the same :class:`~cacheplug.stores.redis._scripts.ScriptCall` as
its sync ones and send it here.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Sequence
from typing import Any, NamedTuple, TypeVar

import redis.asyncio
from redis.commands.core import AsyncScript

from cacheplug.stores.redis import _scripts as scripts
from cacheplug.stores.redis._clients import ClientFactory
from cacheplug.stores.redis._scripts import ERRORS, ScriptCall, Scripts, unavailable

R = TypeVar("R")


class _LoopClients(NamedTuple):
    retrying: redis.asyncio.Redis
    once: redis.asyncio.Redis
    scripts: Scripts[AsyncScript]


class AsyncCommands:
    """The store's clients for the running event loop (see the module docs)."""

    def __init__(self, factory: ClientFactory, retries: int) -> None:
        self._factory = factory
        self._retries = retries
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
            weakref.WeakKeyDictionary()
        )

    def _clients_here(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        clients = self._by_loop.get(loop)
        if clients is None:
            self._forget_closed_loops()
            retrying, once = self._factory.async_pair(self._retries)
            clients = _LoopClients(
                retrying, once, scripts.register(once.register_script, retrying.register_script)
            )
            self._by_loop[loop] = clients
        return clients

    def _forget_closed_loops(self) -> None:
        # A loop's clients hold their connections, which hold the loop: the weak key alone
        # never lets go, and every loop that ran a command (``asyncio.run()`` per call,
        # ``async_to_sync`` per request) would keep its sockets open for good. Once a loop is
        # closed its clients cannot be awaited any more; dropped, the collector closes their
        # sockets with their transports.
        for loop in [loop for loop in self._by_loop if loop.is_closed()]:
            self._by_loop.pop(loop, None)

    def retrying(self) -> redis.asyncio.Redis:
        """This loop's client that retries once on a connection error."""
        return self._clients_here().retrying

    def once(self) -> redis.asyncio.Redis:
        """This loop's client that never retries."""
        return self._clients_here().once

    @staticmethod
    async def run(what: str, command: Awaitable[R]) -> R:
        """Await ``command`` (made by a client of this loop), a redis-py failure raised as
        :func:`~cacheplug.stores.redis._scripts.unavailable`."""
        try:
            return await command
        except ERRORS as exc:
            raise unavailable(what, exc) from exc

    async def script(self, call: ScriptCall) -> Any:
        script: AsyncScript = getattr(self._clients_here().scripts, call.name)
        return await self.run(call.what, script(keys=call.keys, args=call.args))

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        try:
            async with self.retrying().pipeline(transaction=False) as pipe:
                for key, value in items:
                    pipe.set(key, value, px=ttl_ms)
                await pipe.execute()
        except ERRORS as exc:
            raise unavailable("SET (pipeline)", exc) from exc

    async def put_many(self, writes: Sequence[ScriptCall]) -> list[bool]:
        clients = self._clients_here()
        try:
            async with clients.once.pipeline(transaction=False) as pipe:
                for write in writes:
                    await clients.scripts.write(keys=write.keys, args=write.args, client=pipe)
                return [bool(stored) for stored in await pipe.execute()]
        except ERRORS as exc:
            raise unavailable("write script (pipeline)", exc) from exc

    async def close(self) -> None:
        clients = self._by_loop.pop(asyncio.get_running_loop(), None)
        if clients is not None:
            await clients.retrying.aclose()
            await clients.once.aclose()
