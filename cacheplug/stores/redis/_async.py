"""The async commands of :class:`~cacheplug.stores.redis.RedisStore`, over ``redis.asyncio``.

redis.asyncio connections belong to the event loop that opened them, so each loop gets its
own pair of clients (retrying once / never retrying, as the sync ones) and its own script
handles; they are dropped with the loop. The store composes one :class:`AsyncCommands` and
its ``a*`` methods call it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import NamedTuple, cast

import redis.asyncio
from redis.commands.core import AsyncScript

from cacheplug.stores.base import VersionCheck
from cacheplug.stores.redis import _scripts as scripts
from cacheplug.stores.redis._clients import ClientFactory
from cacheplug.stores.redis._scripts import ERRORS, Scripts, unavailable, write_args


class _LoopClients(NamedTuple):
    retrying: redis.asyncio.Redis
    once: redis.asyncio.Redis
    scripts: Scripts[AsyncScript]


class AsyncCommands:
    """The store's commands for the running event loop (see the module docs)."""

    def __init__(self, factory: ClientFactory, retries: int, channel: str) -> None:
        self._factory = factory
        self._retries = retries
        self.channel = channel
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
            weakref.WeakKeyDictionary()
        )

    def _clients_here(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        clients = self._by_loop.get(loop)
        if clients is None:
            retrying, once = self._factory.async_pair(self._retries)
            clients = _LoopClients(
                retrying, once, scripts.register(once.register_script, retrying.register_script)
            )
            self._by_loop[loop] = clients
        return clients

    def _scripts(self) -> Scripts[AsyncScript]:
        return self._clients_here().scripts

    async def get(self, key: str) -> bytes | None:
        try:
            return cast("bytes | None", await self._clients_here().retrying.get(key))
        except ERRORS as exc:
            raise unavailable("GET", exc) from exc

    async def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        try:
            await self._clients_here().retrying.set(key, value, px=ttl_ms)
        except ERRORS as exc:
            raise unavailable("SET", exc) from exc

    async def add(self, key: str, value: bytes, ttl_ms: int | None) -> bool:
        try:
            return bool(await self._clients_here().once.set(key, value, px=ttl_ms, nx=True))
        except ERRORS as exc:
            raise unavailable("SET NX", exc) from exc

    async def delete(self, key: str) -> bool:
        try:
            return bool(await self._clients_here().retrying.delete(key))
        except ERRORS as exc:
            raise unavailable("DEL", exc) from exc

    async def incr(self, key: str, delta: int, ttl_ms: int | None) -> int:
        try:
            return int(await self._scripts().incr(keys=[key], args=[delta, ttl_ms or 0]))
        except ERRORS as exc:
            raise unavailable("incr script", exc) from exc

    async def compare_and_swap(self, key: str, expected: bytes, new: bytes) -> bool:
        try:
            return bool(await self._scripts().cas(keys=[key], args=[expected, new]))
        except ERRORS as exc:
            raise unavailable("compare-and-swap script", exc) from exc

    async def acquire_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> int:
        try:
            return int(await self._scripts().acquire(keys=[lease_key], args=[token, ttl_ms]))
        except ERRORS as exc:
            raise unavailable("lease script", exc) from exc

    async def fill_with_lease(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        token: bytes,
        versions: Sequence[VersionCheck] = (),
    ) -> bool:
        extra, args = write_args(token, value, ttl_ms, self.channel, False, versions)
        try:
            return bool(await self._scripts().write(keys=[key, lease_key, *extra], args=args))
        except ERRORS as exc:
            raise unavailable("fill script", exc) from exc

    async def put(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        versions: Sequence[VersionCheck] = (),
        only_if_absent: bool = False,
    ) -> bool:
        extra, args = write_args(b"", value, ttl_ms, self.channel, only_if_absent, versions)
        try:
            return bool(await self._scripts().write(keys=[key, lease_key, *extra], args=args))
        except ERRORS as exc:
            raise unavailable("write script", exc) from exc

    async def ensure_versions(
        self,
        version_keys: Sequence[str],
        fresh: Sequence[int],
        keep_ms: int,
        near: str | None = None,
    ) -> list[bytes | None]:
        try:
            args: list[int] = [keep_ms, *fresh]
            found = await self._scripts().ensure(keys=list(version_keys), args=args)
        except ERRORS as exc:
            raise unavailable("version script", exc) from exc
        return cast("list[bytes | None]", found)

    async def bump_versions(
        self, version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int
    ) -> None:
        if not version_keys:
            return
        try:
            args: list[str | int] = [self.channel, keep_ms, *fresh]
            await self._scripts().bump(keys=list(version_keys), args=args)
        except ERRORS as exc:
            raise unavailable("bump script", exc) from exc

    async def release_lease(self, key: str, lease_key: str, token: bytes) -> bool:
        try:
            args: list[bytes | str] = [token, self.channel]
            return bool(await self._scripts().release(keys=[key, lease_key], args=args))
        except ERRORS as exc:
            raise unavailable("release script", exc) from exc

    async def extend_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> bool:
        try:
            return bool(await self._scripts().extend(keys=[lease_key], args=[token, ttl_ms]))
        except ERRORS as exc:
            raise unavailable("extend script", exc) from exc

    async def invalidate(self, entries: Sequence[tuple[str, str]]) -> int:
        if not entries:
            return 0
        keys = [name for pair in entries for name in pair]
        try:
            return int(await self._scripts().invalidate(keys=keys, args=[self.channel]))
        except ERRORS as exc:
            raise unavailable("invalidate script", exc) from exc

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            return cast("list[bytes | None]", await self._clients_here().retrying.mget(keys))
        except ERRORS as exc:
            raise unavailable("MGET", exc) from exc

    async def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        if not items:
            return
        try:
            async with self._clients_here().retrying.pipeline(transaction=False) as pipe:
                for key, value in items:
                    pipe.set(key, value, px=ttl_ms)
                await pipe.execute()
        except ERRORS as exc:
            raise unavailable("SET (pipeline)", exc) from exc

    async def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        try:
            return int(await self._clients_here().retrying.delete(*keys))
        except ERRORS as exc:
            raise unavailable("DEL", exc) from exc

    async def put_many(
        self,
        items: Sequence[tuple[str, bytes, str]],
        ttl_ms: int | None,
        versions: Sequence[VersionCheck] = (),
    ) -> list[bool]:
        if not items:
            return []
        clients = self._clients_here()
        try:
            async with clients.once.pipeline(transaction=False) as pipe:
                for key, value, lease_key in items:
                    extra, args = write_args(b"", value, ttl_ms, self.channel, False, versions)
                    await clients.scripts.write(
                        keys=[key, lease_key, *extra], args=args, client=pipe
                    )
                return [bool(stored) for stored in await pipe.execute()]
        except ERRORS as exc:
            raise unavailable("write script (pipeline)", exc) from exc

    async def close(self) -> None:
        clients = self._by_loop.pop(asyncio.get_running_loop(), None)
        if clients is not None:
            await clients.retrying.aclose()
            await clients.once.aclose()
