"""redis-py clients for a store URL: one server, or the master a set of Sentinels names.

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS), ``unix://path?db=0``:
  one server, as redis-py reads the URL.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]``: ask the
  Sentinels which server is the master of ``service_name``, and ask again whenever a
  connection fails, so a failover needs no restart (redis-py's ``Sentinel``). The password
  is the data servers'; query parameters ``sentinel_password`` and ``sentinel_username``
  authenticate to the Sentinels themselves.

Query parameters (``?socket_timeout=0.2``) override the store's keyword options, as with
redis-py URLs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import redis
import redis.asyncio

from cacheplug._exceptions import ConfigurationError
from cacheplug.stores._redis_untyped import (
    async_master,
    async_sentinel_manager,
    sentinel_manager,
    sync_master,
)

SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")
SENTINEL_SCHEME = "redis+sentinel"

_NUMERIC_OPTIONS = {"socket_timeout", "socket_connect_timeout", "health_check_interval"}
_INTEGER_OPTIONS = {"max_connections", "db"}


@dataclass
class SentinelTarget:
    """What a ``redis+sentinel://`` URL names."""

    sentinels: list[tuple[str, int]]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    sentinel_options: dict[str, Any] = field(default_factory=dict)


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Parse ``redis+sentinel://...`` (see the module docstring)."""
    rest = url.split("://", 1)[1]
    rest, _, query = rest.partition("?")
    location, _, path = rest.partition("/")
    credentials, _, hosts = location.rpartition("@")
    username = password = None
    if credentials:
        user, has_password, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    sentinels: list[tuple[str, int]] = []
    for host in filter(None, hosts.split(",")):
        name, _, port = host.rpartition(":")
        try:
            sentinels.append((name or "127.0.0.1", int(port)))
        except ValueError:
            raise ConfigurationError(f"bad Sentinel address {host!r} in {url!r}") from None
    parts = [part for part in path.split("/") if part]
    if not sentinels or not parts or len(parts) > 2:
        raise ConfigurationError(
            "a Sentinel URL looks like "
            f"'redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0', not {url!r}"
        )
    target = SentinelTarget(sentinels, unquote(parts[0]), username=username, password=password)
    if len(parts) == 2:
        target.db = _integer("db", parts[1], url)
    for name, value in parse_qsl(query):
        if name in ("sentinel_password", "sentinel_username"):
            target.sentinel_options[name.removeprefix("sentinel_")] = value
        elif name in _INTEGER_OPTIONS:
            target.options[name] = _integer(name, value, url)
        elif name in _NUMERIC_OPTIONS:
            target.options[name] = float(value)
        else:
            raise ConfigurationError(f"unknown option {name!r} in {url!r}")
    return target


def _integer(name: str, value: str, url: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer in {url!r}") from None


class ClientFactory:
    """Builds the store's clients (sync, and async per event loop) for one URL."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in SCHEMES:
            raise ConfigurationError(
                "RedisStore needs a redis://, rediss://, unix:// or redis+sentinel:// URL, "
                f"not {url!r}"
            )
        self.url = url
        self.options = options
        self.sentinel: SentinelTarget | None = None
        self._sync_manager: Any = None  # a redis.sentinel.Sentinel, made on first use
        if scheme == SENTINEL_SCHEME:
            self.sentinel = parse_sentinel_url(url)
            self.options = {**options, **self.sentinel.options}

    @property
    def db(self) -> int:
        """The database number the URL names."""
        if self.sentinel is not None:
            return self.sentinel.db
        kwargs = redis.Redis.from_url(self.url).connection_pool.connection_kwargs
        return int(kwargs.get("db", 0))

    def _sentinel_kwargs(self) -> dict[str, Any]:
        target = self.sentinel
        assert target is not None
        sentinel_kwargs = {
            "socket_timeout": self.options.get("socket_timeout"),
            "socket_connect_timeout": self.options.get("socket_connect_timeout"),
            **target.sentinel_options,
        }
        return sentinel_kwargs

    def _master_kwargs(self, retry: Any) -> dict[str, Any]:
        target = self.sentinel
        assert target is not None
        kwargs = {**self.options, "retry": retry, "db": target.db}
        if target.username is not None:
            kwargs["username"] = target.username
        if target.password is not None:
            kwargs["password"] = target.password
        return kwargs

    def sync_client(self, retry: Any) -> redis.Redis:
        """A client on the server (the current master, for Sentinel)."""
        if self.sentinel is None:
            return redis.Redis.from_url(self.url, retry=retry, **self.options)
        if self._sync_manager is None:
            self._sync_manager = sentinel_manager(self.sentinel.sentinels, self._sentinel_kwargs())
        return sync_master(
            self._sync_manager, self.sentinel.service_name, **self._master_kwargs(retry)
        )

    def async_client(self, retry: Any) -> redis.asyncio.Redis:
        """The asyncio twin of :meth:`sync_client` (a new one: call it once per loop)."""
        if self.sentinel is None:
            return redis.asyncio.Redis.from_url(self.url, retry=retry, **self.options)
        manager = async_sentinel_manager(self.sentinel.sentinels, self._sentinel_kwargs())
        return async_master(manager, self.sentinel.service_name, **self._master_kwargs(retry))
