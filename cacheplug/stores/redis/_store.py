"""The Redis store, over redis-py (standalone server, TCP, TLS or a unix socket).

Retries are set explicitly rather than left to redis-py's defaults: idempotent commands
(GET, SET, MGET, DEL, PTTL) go through a client that retries once on a connection error;
commands whose effect or reply would change if repeated (the counter and compare-and-swap
scripts, SET NX) go through a twin client that never retries, so a lost reply can never make
a counter count twice. Lua scripts are registered once and called by SHA (EVALSHA).

The read hot path (GET, MGET) sends its command on a pooled connection through redis-py's
connection API (``get_connection`` / ``send_command`` / ``read_response`` / ``release``)
instead of ``Redis.execute_command``: redis-py 8 wraps every command in retry closures and
telemetry hooks that cost more than all of cacheplug's own work on a hit. Retry-once and
disconnect-on-error are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, cast

import redis
from redis.commands.core import Script

from cacheplug.exceptions import ConfigurationError
from cacheplug.stores.base import VersionCheck
from cacheplug.stores.redis import _scripts as scripts
from cacheplug.stores.redis._async import AsyncCommands
from cacheplug.stores.redis._clients import connect
from cacheplug.stores.redis._common import ScriptedStore
from cacheplug.stores.redis._fills import RedisFillListener
from cacheplug.stores.redis._scripts import (
    ERRORS,
    RETRYABLE,
    ScriptCall,
    guarded,
    register,
    unavailable,
)


class RedisStore(ScriptedStore):
    """A store on one Redis server.

    ``url`` is a redis-py URL: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://``
    for TLS, ``unix:///path/to/redis.sock[?db=0]``; query parameters of the URL (for example
    ``?socket_timeout=0.2``) override the keyword arguments. Timeouts are short by default
    because a cache that waits is worse than a miss.

    ``max_connections`` (or ``?max_connections=`` in the URL): the size of each connection
    pool, default :attr:`DEFAULT_MAX_CONNECTIONS` (50). The store keeps two pools (one whose
    commands are retried once, one whose commands never are) per process, and two more per
    event loop for the async API. A caller that finds every connection of a pool busy waits
    for one instead of failing: a full pool is back-pressure, not an outage, so it neither
    runs the loader for a key that is in the cache nor opens the circuit breaker. It waits
    ``pool_timeout`` seconds at a time (default: the socket timeout), and fails (as a failed
    store call) only when connections came back broken and none healthy during a wait, or
    none came back at all for ten waits: the server is stuck or down.

    ``connection_pool``: a redis-py pool to share with the rest of the application (the
    Django adapter passes django-redis' for ``STORE="django:<alias>"``). Reads, idempotent
    writes and the pub/sub listener then use its connections, with its timeouts; the few
    writes that must never be retried (counters, leases) keep a small pool of their own on
    ``url``, which must name the same server.
    """

    shared = True
    bumps_together = True  # one script
    DEFAULT_MAX_CONNECTIONS: Final = 50

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        socket_timeout: float = 0.5,
        socket_connect_timeout: float = 0.5,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        pool_timeout: float | None = None,
        retries: int = 1,
        health_check_interval: int = 0,
        connection_pool: redis.ConnectionPool | None = None,
    ) -> None:
        if max_connections is None:  # what older releases took for "redis-py's default"
            max_connections = self.DEFAULT_MAX_CONNECTIONS
        if max_connections < 1:
            raise ConfigurationError(f"max_connections must be at least 1, not {max_connections}")
        self.url = url
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_connect_timeout,
            "health_check_interval": health_check_interval,
            "decode_responses": False,
            "max_connections": max_connections,
        }
        self._clients, self._client, self._once_client = connect(
            url, options, pool_timeout, retries, connection_pool
        )
        self._retries = retries
        self._pool = self._client.connection_pool
        self._scripts = register(self._once_client.register_script, self._client.register_script)
        self.channel = f"cacheplug:fills:{self._clients.db}"
        self._fills = RedisFillListener(self._client, self.channel)
        self._async = AsyncCommands(self._clients, retries)

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """The store for ``url`` with default options (see the class docstring)."""
        return cls(url)

    @property
    def client(self) -> redis.Redis:
        """The underlying redis-py client (retrying once on connection errors)."""
        return self._client

    def clients(self) -> tuple[redis.Redis, redis.Redis]:
        """Both sync clients: the retrying one and the one that never retries."""
        return self._client, self._once_client

    # -- sync --------------------------------------------------------------------------------

    def _read_command(self, *command: str) -> Any:
        """Run an idempotent read command on a pooled connection, retrying on a new
        connection after a connection error (the hot path: no ``guarded`` call here)."""
        pool = self._pool
        attempt = 0
        try:
            while True:
                connection: Any = pool.get_connection()
                try:
                    connection.send_command(*command)
                    return connection.read_response()
                except RETRYABLE:
                    connection.disconnect()
                    if attempt >= self._retries:
                        raise
                    attempt += 1
                finally:
                    pool.release(connection)
        except ERRORS as exc:
            raise unavailable(command[0], exc) from exc

    def _script(self, call: ScriptCall) -> Any:
        script: Script = getattr(self._scripts, call.name)
        return guarded(call.what, script, keys=call.keys, args=call.args)

    def get(self, key: str) -> bytes | None:
        return self._read_command("GET", key)  # type: ignore[no-any-return]

    def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        guarded("SET", self._client.set, key, value, px=ttl_ms)

    def add(self, key: str, value: bytes, ttl_ms: int | None) -> bool:
        return bool(guarded("SET NX", self._once_client.set, key, value, px=ttl_ms, nx=True))

    def delete(self, key: str) -> bool:
        return bool(guarded("DEL", self._client.delete, key))

    def fill_with_lease(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        token: bytes,
        versions: Sequence[VersionCheck] = (),
    ) -> bool:
        fill = scripts.write_call(
            key, lease_key, token, value, ttl_ms, self.channel, False, versions
        )
        return bool(self._script(fill))

    def put(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        versions: Sequence[VersionCheck] = (),
        only_if_absent: bool = False,
    ) -> bool:
        write = scripts.write_call(
            key, lease_key, b"", value, ttl_ms, self.channel, only_if_absent, versions
        )
        return bool(self._script(write))

    def ensure_versions(
        self,
        version_keys: Sequence[str],
        fresh: Sequence[int],
        keep_ms: int,
        near: str | None = None,
    ) -> list[bytes | None]:
        found = self._script(scripts.ensure_call(version_keys, fresh, keep_ms))
        return cast("list[bytes | None]", found)

    def bump_versions(
        self, version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int
    ) -> None:
        if version_keys:
            self._script(scripts.bump_call(version_keys, fresh, keep_ms, self.channel))

    def invalidate(self, entries: Sequence[tuple[str, str]]) -> int:
        if not entries:
            return 0
        return int(self._script(scripts.invalidate_call(entries, self.channel)))

    def ttl_ms(self, key: str) -> int | None:
        return scripts.ttl_from_pttl(int(guarded("PTTL", self._client.pttl, key)))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        return self._read_command("MGET", *keys)  # type: ignore[no-any-return]

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        if not items:
            return
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for key, value in items:
                    pipe.set(key, value, px=ttl_ms)
                pipe.execute()
        except ERRORS as exc:
            raise unavailable("SET (pipeline)", exc) from exc

    def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return int(guarded("DEL", self._client.delete, *keys))

    def put_many(
        self,
        items: Sequence[tuple[str, bytes, str]],
        ttl_ms: int | None,
        versions: Sequence[VersionCheck] = (),
    ) -> list[bool]:
        if not items:
            return []
        try:
            with self._once_client.pipeline(transaction=False) as pipe:
                for write in self._writes(items, ttl_ms, versions):
                    self._scripts.write(keys=write.keys, args=write.args, client=pipe)
                return [bool(stored) for stored in pipe.execute()]
        except ERRORS as exc:
            raise unavailable("write script (pipeline)", exc) from exc

    def _writes(
        self,
        items: Sequence[tuple[str, bytes, str]],
        ttl_ms: int | None,
        versions: Sequence[VersionCheck],
    ) -> list[ScriptCall]:
        """The writes of :meth:`put_many`, sync or async."""
        return [
            scripts.write_call(key, lease_key, b"", value, ttl_ms, self.channel, False, versions)
            for key, value, lease_key in items
        ]

    def close(self) -> None:
        self._fills.stop()
        self._client.close()
        self._once_client.close()

    # -- async: the same calls, sent by redis.asyncio clients per event loop (see ``_async``) --

    async def aget(self, key: str) -> bytes | None:
        return cast("bytes | None", await self._async.run("GET", self._async.retrying().get(key)))

    async def aset(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        await self._async.run("SET", self._async.retrying().set(key, value, px=ttl_ms))

    async def aadd(self, key: str, value: bytes, ttl_ms: int | None) -> bool:
        added = self._async.once().set(key, value, px=ttl_ms, nx=True)
        return bool(await self._async.run("SET NX", added))

    async def adelete(self, key: str) -> bool:
        return bool(await self._async.run("DEL", self._async.retrying().delete(key)))

    async def aincr(self, key: str, delta: int, ttl_ms: int | None) -> int:
        return int(await self._async.script(scripts.incr_call(key, delta, ttl_ms)))

    async def acompare_and_swap(self, key: str, expected: bytes, new: bytes) -> bool:
        return bool(await self._async.script(scripts.compare_and_swap_call(key, expected, new)))

    async def aacquire_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> int:
        return int(await self._async.script(scripts.acquire_call(lease_key, token, ttl_ms)))

    async def afill_with_lease(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        token: bytes,
        versions: Sequence[VersionCheck] = (),
    ) -> bool:
        fill = scripts.write_call(
            key, lease_key, token, value, ttl_ms, self.channel, False, versions
        )
        return bool(await self._async.script(fill))

    async def aput(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        versions: Sequence[VersionCheck] = (),
        only_if_absent: bool = False,
    ) -> bool:
        write = scripts.write_call(
            key, lease_key, b"", value, ttl_ms, self.channel, only_if_absent, versions
        )
        return bool(await self._async.script(write))

    async def aensure_versions(
        self,
        version_keys: Sequence[str],
        fresh: Sequence[int],
        keep_ms: int,
        near: str | None = None,
    ) -> list[bytes | None]:
        found = await self._async.script(scripts.ensure_call(version_keys, fresh, keep_ms))
        return cast("list[bytes | None]", found)

    async def abump_versions(
        self, version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int
    ) -> None:
        if version_keys:
            await self._async.script(scripts.bump_call(version_keys, fresh, keep_ms, self.channel))

    async def arelease_lease(self, key: str, lease_key: str, token: bytes) -> bool:
        release = scripts.release_call(key, lease_key, token, self.channel)
        return bool(await self._async.script(release))

    async def aextend_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> bool:
        return bool(await self._async.script(scripts.extend_call(lease_key, token, ttl_ms)))

    async def ainvalidate(self, entries: Sequence[tuple[str, str]]) -> int:
        if not entries:
            return 0
        return int(await self._async.script(scripts.invalidate_call(entries, self.channel)))

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        found = await self._async.run("MGET", self._async.retrying().mget(keys))
        return cast("list[bytes | None]", found)

    async def aset_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        if items:
            await self._async.set_many(items, ttl_ms)

    async def adelete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return int(await self._async.run("DEL", self._async.retrying().delete(*keys)))

    async def aput_many(
        self,
        items: Sequence[tuple[str, bytes, str]],
        ttl_ms: int | None,
        versions: Sequence[VersionCheck] = (),
    ) -> list[bool]:
        if not items:
            return []
        return await self._async.put_many(self._writes(items, ttl_ms, versions))

    async def aclose(self) -> None:
        await self._async.close()
