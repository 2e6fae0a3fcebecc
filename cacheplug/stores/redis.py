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

import asyncio
import weakref
from collections.abc import Sequence
from importlib import resources
from typing import Any, Final, NamedTuple, cast

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.commands.core import AsyncScript, Script
from redis.retry import Retry

from cacheplug._exceptions import CacheError, CacheUnavailable, ConfigurationError, NotACounter
from cacheplug._redact import redact
from cacheplug.stores._redis_clients import ClientFactory
from cacheplug.stores._redis_fills import RedisFillListener
from cacheplug.stores.base import Store, VersionCheck

_ERRORS = (redis.RedisError, OSError)
_RETRYABLE = (redis.ConnectionError, redis.TimeoutError, OSError)
_NOT_A_COUNTER = "CACHEPLUG_NOT_A_COUNTER"


def _lua(name: str) -> str:
    return resources.files("cacheplug.stores").joinpath(f"lua/{name}.lua").read_text("utf-8")


_INCR_LUA = _lua("incr")
_CAS_LUA = _lua("compare_and_swap")
_ACQUIRE_LUA = _lua("acquire_lease")
_WRITE_LUA = _lua("write")
_BUMP_LUA = _lua("bump_versions")
_ENSURE_LUA = _lua("ensure_versions")
_RELEASE_LUA = _lua("release_lease")
_EXTEND_LUA = _lua("extend_lease")
_INVALIDATE_LUA = _lua("invalidate")


def _write_args(
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


def _unavailable(command: str, exc: BaseException) -> CacheError:
    if isinstance(exc, redis.ResponseError) and _NOT_A_COUNTER in str(exc):
        return NotACounter("the value under this key is not an integer counter")
    # redis-py's messages name hosts, not passwords; redacted all the same, in case one
    # quotes a URL.
    return CacheUnavailable(redact(f"redis {command} failed: {type(exc).__name__}: {exc}"))


class _AsyncClients(NamedTuple):
    retrying: redis.asyncio.Redis
    once: redis.asyncio.Redis
    incr: AsyncScript
    cas: AsyncScript
    acquire: AsyncScript
    write: AsyncScript
    bump: AsyncScript
    ensure: AsyncScript
    release: AsyncScript
    extend: AsyncScript
    invalidate: AsyncScript


class RedisStore(Store):
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
    runs the loader for a key that is in the cache nor opens the circuit breaker. The wait
    fails (as a failed store call) only when no connection came back in working order for
    ``pool_timeout`` seconds (default: the socket timeout): the server is stuck or down.

    ``connection_pool``: a redis-py pool to share with the rest of the application (the
    Django adapter passes django-redis' for ``STORE="django:<alias>"``). Reads, idempotent
    writes and the pub/sub listener then use its connections, with its timeouts; the few
    writes that must never be retried (counters, leases) keep a small pool of their own on
    ``url``, which must name the same server.
    """

    shared = True
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
        try:
            self._setup(url, options, pool_timeout, retries, connection_pool)
        except ConfigurationError:
            raise
        except ValueError:
            # redis-py's message quotes the piece of the URL it could not read, which may be
            # part of the password.
            raise ConfigurationError(
                f"cannot read the store URL {redact(url)!r}: percent-encode the characters "
                "of the password that a URL reserves (@ : / ? # %)"
            ) from None

    def _setup(
        self,
        url: str,
        options: dict[str, Any],
        pool_timeout: float | None,
        retries: int,
        connection_pool: redis.ConnectionPool | None,
    ) -> None:
        self._clients = ClientFactory(url, options, pool_timeout)
        self._retries = retries
        if connection_pool is not None:
            if connection_pool.connection_kwargs.get("decode_responses"):
                raise ConfigurationError(
                    "RedisStore needs a connection pool with decode_responses=False "
                    "(entries are bytes)"
                )
            self._client: redis.Redis = redis.Redis(connection_pool=connection_pool)
        else:
            self._client = self._clients.sync_client(
                Retry(ExponentialBackoff(cap=0.05, base=0.005), retries)
            )
        self._once_client: redis.Redis = self._clients.sync_client(Retry(NoBackoff(), 0))
        self._pool = self._client.connection_pool
        self._incr: Script = self._once_client.register_script(_INCR_LUA)
        self._cas: Script = self._once_client.register_script(_CAS_LUA)
        self._acquire: Script = self._once_client.register_script(_ACQUIRE_LUA)
        self._write: Script = self._once_client.register_script(_WRITE_LUA)
        self._release: Script = self._once_client.register_script(_RELEASE_LUA)
        self._extend: Script = self._once_client.register_script(_EXTEND_LUA)
        # Idempotent: runs on the retrying client.
        self._invalidate: Script = self._client.register_script(_INVALIDATE_LUA)
        # Not idempotent (a retried bump would increment twice), but incrementing twice is as
        # good as once: a retry only costs an extra miss.
        self._bump: Script = self._client.register_script(_BUMP_LUA)
        self._ensure: Script = self._client.register_script(_ENSURE_LUA)  # idempotent
        self.channel = f"cacheplug:fills:{self._clients.db}"
        self._fills = RedisFillListener(self._client, self.channel)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AsyncClients] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """The store for ``url`` with default options (see the class docstring)."""
        return cls(url)

    def __repr__(self) -> str:
        return f"RedisStore({redact(self.url)!r})"

    @property
    def fills(self) -> RedisFillListener:
        return self._fills

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
        connection after a connection error."""
        pool = self._pool
        attempt = 0
        while True:
            connection: Any = pool.get_connection()
            try:
                connection.send_command(*command)
                return connection.read_response()
            except _RETRYABLE:
                connection.disconnect()
                if attempt >= self._retries:
                    raise
                attempt += 1
            finally:
                pool.release(connection)

    def get(self, key: str) -> bytes | None:
        try:
            return self._read_command("GET", key)  # type: ignore[no-any-return]
        except _ERRORS as exc:
            raise _unavailable("GET", exc) from exc

    def set(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        try:
            self._client.set(key, value, px=ttl_ms)
        except _ERRORS as exc:
            raise _unavailable("SET", exc) from exc

    def add(self, key: str, value: bytes, ttl_ms: int | None) -> bool:
        try:
            return bool(self._once_client.set(key, value, px=ttl_ms, nx=True))
        except _ERRORS as exc:
            raise _unavailable("SET NX", exc) from exc

    def delete(self, key: str) -> bool:
        try:
            return bool(self._client.delete(key))
        except _ERRORS as exc:
            raise _unavailable("DEL", exc) from exc

    def incr(self, key: str, delta: int, ttl_ms: int | None) -> int:
        try:
            return int(self._incr(keys=[key], args=[delta, ttl_ms or 0]))
        except _ERRORS as exc:
            raise _unavailable("incr script", exc) from exc

    def compare_and_swap(self, key: str, expected: bytes, new: bytes) -> bool:
        try:
            return bool(self._cas(keys=[key], args=[expected, new]))
        except _ERRORS as exc:
            raise _unavailable("compare-and-swap script", exc) from exc

    def acquire_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> int:
        try:
            return int(self._acquire(keys=[lease_key], args=[token, ttl_ms]))
        except _ERRORS as exc:
            raise _unavailable("lease script", exc) from exc

    def fill_with_lease(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        token: bytes,
        versions: Sequence[VersionCheck] = (),
    ) -> bool:
        extra, args = _write_args(token, value, ttl_ms, self.channel, False, versions)
        try:
            return bool(self._write(keys=[key, lease_key, *extra], args=args))
        except _ERRORS as exc:
            raise _unavailable("fill script", exc) from exc

    def put(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        versions: Sequence[VersionCheck] = (),
        only_if_absent: bool = False,
    ) -> bool:
        extra, args = _write_args(b"", value, ttl_ms, self.channel, only_if_absent, versions)
        try:
            return bool(self._write(keys=[key, lease_key, *extra], args=args))
        except _ERRORS as exc:
            raise _unavailable("write script", exc) from exc

    def ensure_versions(
        self,
        version_keys: Sequence[str],
        fresh: Sequence[int],
        keep_ms: int,
        near: str | None = None,
    ) -> list[bytes | None]:
        try:
            found = self._ensure(keys=list(version_keys), args=[keep_ms, *fresh])
        except _ERRORS as exc:
            raise _unavailable("version script", exc) from exc
        return cast("list[bytes | None]", found)

    def bump_versions(
        self, version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int
    ) -> None:
        if not version_keys:
            return
        try:
            self._bump(keys=list(version_keys), args=[self.channel, keep_ms, *fresh])
        except _ERRORS as exc:
            raise _unavailable("bump script", exc) from exc

    def release_lease(self, key: str, lease_key: str, token: bytes) -> bool:
        try:
            return bool(self._release(keys=[key, lease_key], args=[token, self.channel]))
        except _ERRORS as exc:
            raise _unavailable("release script", exc) from exc

    def extend_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> bool:
        try:
            return bool(self._extend(keys=[lease_key], args=[token, ttl_ms]))
        except _ERRORS as exc:
            raise _unavailable("extend script", exc) from exc

    def invalidate(self, entries: Sequence[tuple[str, str]]) -> int:
        if not entries:
            return 0
        keys = [name for pair in entries for name in pair]
        try:
            return int(self._invalidate(keys=keys, args=[self.channel]))
        except _ERRORS as exc:
            raise _unavailable("invalidate script", exc) from exc

    def ttl_ms(self, key: str) -> int | None:
        try:
            remaining = int(self._client.pttl(key))
        except _ERRORS as exc:
            raise _unavailable("PTTL", exc) from exc
        return {-2: -1, -1: None}.get(remaining, remaining)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            return self._read_command("MGET", *keys)  # type: ignore[no-any-return]
        except _ERRORS as exc:
            raise _unavailable("MGET", exc) from exc

    def set_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        if not items:
            return
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for key, value in items:
                    pipe.set(key, value, px=ttl_ms)
                pipe.execute()
        except _ERRORS as exc:
            raise _unavailable("SET (pipeline)", exc) from exc

    def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        try:
            return int(self._client.delete(*keys))
        except _ERRORS as exc:
            raise _unavailable("DEL", exc) from exc

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
                for key, value, lease_key in items:
                    extra, args = _write_args(b"", value, ttl_ms, self.channel, False, versions)
                    self._write(keys=[key, lease_key, *extra], args=args, client=pipe)
                return [bool(stored) for stored in pipe.execute()]
        except _ERRORS as exc:
            raise _unavailable("write script (pipeline)", exc) from exc

    def close(self) -> None:
        self._fills.stop()
        self._client.close()
        self._once_client.close()

    # -- async (one client pair per event loop: redis.asyncio connections belong to a loop) --

    def _aclients(self) -> _AsyncClients:
        loop = asyncio.get_running_loop()
        clients = self._async.get(loop)
        if clients is None:
            retrying = self._clients.async_client(
                AsyncRetry(ExponentialBackoff(cap=0.05, base=0.005), self._retries)
            )
            once = self._clients.async_client(AsyncRetry(NoBackoff(), 0))
            script = once.register_script
            clients = _AsyncClients(
                retrying=retrying,
                once=once,
                incr=script(_INCR_LUA),
                cas=script(_CAS_LUA),
                acquire=script(_ACQUIRE_LUA),
                write=script(_WRITE_LUA),
                bump=retrying.register_script(_BUMP_LUA),
                ensure=retrying.register_script(_ENSURE_LUA),
                release=script(_RELEASE_LUA),
                extend=script(_EXTEND_LUA),
                invalidate=retrying.register_script(_INVALIDATE_LUA),  # idempotent: retried
            )
            self._async[loop] = clients
        return clients

    async def aget(self, key: str) -> bytes | None:
        try:
            return cast("bytes | None", await self._aclients().retrying.get(key))
        except _ERRORS as exc:
            raise _unavailable("GET", exc) from exc

    async def aset(self, key: str, value: bytes, ttl_ms: int | None) -> None:
        try:
            await self._aclients().retrying.set(key, value, px=ttl_ms)
        except _ERRORS as exc:
            raise _unavailable("SET", exc) from exc

    async def aadd(self, key: str, value: bytes, ttl_ms: int | None) -> bool:
        try:
            return bool(await self._aclients().once.set(key, value, px=ttl_ms, nx=True))
        except _ERRORS as exc:
            raise _unavailable("SET NX", exc) from exc

    async def adelete(self, key: str) -> bool:
        try:
            return bool(await self._aclients().retrying.delete(key))
        except _ERRORS as exc:
            raise _unavailable("DEL", exc) from exc

    async def aincr(self, key: str, delta: int, ttl_ms: int | None) -> int:
        try:
            return int(await self._aclients().incr(keys=[key], args=[delta, ttl_ms or 0]))
        except _ERRORS as exc:
            raise _unavailable("incr script", exc) from exc

    async def acompare_and_swap(self, key: str, expected: bytes, new: bytes) -> bool:
        try:
            return bool(await self._aclients().cas(keys=[key], args=[expected, new]))
        except _ERRORS as exc:
            raise _unavailable("compare-and-swap script", exc) from exc

    async def aacquire_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> int:
        try:
            return int(await self._aclients().acquire(keys=[lease_key], args=[token, ttl_ms]))
        except _ERRORS as exc:
            raise _unavailable("lease script", exc) from exc

    async def afill_with_lease(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        token: bytes,
        versions: Sequence[VersionCheck] = (),
    ) -> bool:
        extra, args = _write_args(token, value, ttl_ms, self.channel, False, versions)
        try:
            return bool(await self._aclients().write(keys=[key, lease_key, *extra], args=args))
        except _ERRORS as exc:
            raise _unavailable("fill script", exc) from exc

    async def aput(
        self,
        key: str,
        value: bytes,
        ttl_ms: int | None,
        lease_key: str,
        versions: Sequence[VersionCheck] = (),
        only_if_absent: bool = False,
    ) -> bool:
        extra, args = _write_args(b"", value, ttl_ms, self.channel, only_if_absent, versions)
        try:
            return bool(await self._aclients().write(keys=[key, lease_key, *extra], args=args))
        except _ERRORS as exc:
            raise _unavailable("write script", exc) from exc

    async def aensure_versions(
        self,
        version_keys: Sequence[str],
        fresh: Sequence[int],
        keep_ms: int,
        near: str | None = None,
    ) -> list[bytes | None]:
        try:
            args: list[int] = [keep_ms, *fresh]
            found = await self._aclients().ensure(keys=list(version_keys), args=args)
        except _ERRORS as exc:
            raise _unavailable("version script", exc) from exc
        return cast("list[bytes | None]", found)

    async def abump_versions(
        self, version_keys: Sequence[str], fresh: Sequence[int], keep_ms: int
    ) -> None:
        if not version_keys:
            return
        try:
            args: list[str | int] = [self.channel, keep_ms, *fresh]
            await self._aclients().bump(keys=list(version_keys), args=args)
        except _ERRORS as exc:
            raise _unavailable("bump script", exc) from exc

    async def arelease_lease(self, key: str, lease_key: str, token: bytes) -> bool:
        try:
            args: list[bytes | str] = [token, self.channel]
            return bool(await self._aclients().release(keys=[key, lease_key], args=args))
        except _ERRORS as exc:
            raise _unavailable("release script", exc) from exc

    async def aextend_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> bool:
        try:
            return bool(await self._aclients().extend(keys=[lease_key], args=[token, ttl_ms]))
        except _ERRORS as exc:
            raise _unavailable("extend script", exc) from exc

    async def ainvalidate(self, entries: Sequence[tuple[str, str]]) -> int:
        if not entries:
            return 0
        keys = [name for pair in entries for name in pair]
        try:
            return int(await self._aclients().invalidate(keys=keys, args=[self.channel]))
        except _ERRORS as exc:
            raise _unavailable("invalidate script", exc) from exc

    async def aget_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            return cast("list[bytes | None]", await self._aclients().retrying.mget(keys))
        except _ERRORS as exc:
            raise _unavailable("MGET", exc) from exc

    async def aset_many(self, items: Sequence[tuple[str, bytes]], ttl_ms: int | None) -> None:
        if not items:
            return
        try:
            async with self._aclients().retrying.pipeline(transaction=False) as pipe:
                for key, value in items:
                    pipe.set(key, value, px=ttl_ms)
                await pipe.execute()
        except _ERRORS as exc:
            raise _unavailable("SET (pipeline)", exc) from exc

    async def adelete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        try:
            return int(await self._aclients().retrying.delete(*keys))
        except _ERRORS as exc:
            raise _unavailable("DEL", exc) from exc

    async def aput_many(
        self,
        items: Sequence[tuple[str, bytes, str]],
        ttl_ms: int | None,
        versions: Sequence[VersionCheck] = (),
    ) -> list[bool]:
        if not items:
            return []
        clients = self._aclients()
        try:
            async with clients.once.pipeline(transaction=False) as pipe:
                for key, value, lease_key in items:
                    extra, args = _write_args(b"", value, ttl_ms, self.channel, False, versions)
                    await clients.write(keys=[key, lease_key, *extra], args=args, client=pipe)
                return [bool(stored) for stored in await pipe.execute()]
        except _ERRORS as exc:
            raise _unavailable("write script (pipeline)", exc) from exc

    async def aclose(self) -> None:
        clients = self._async.pop(asyncio.get_running_loop(), None)
        if clients is not None:
            await clients.retrying.aclose()
            await clients.once.aclose()
