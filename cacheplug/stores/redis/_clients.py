"""redis-py clients for a store URL: one server, or the master a set of Sentinels names.

- ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS), ``unix://path?db=0``:
  one server, as redis-py reads the URL.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]``: ask the
  Sentinels which server is the master of ``service_name``, and ask again whenever a
  connection fails, so a failover needs no restart (redis-py's ``Sentinel``). The password
  is the data servers'; query parameters ``sentinel_password`` and ``sentinel_username``
  authenticate to the Sentinels themselves.

Query parameters (``?socket_timeout=0.2``, ``?max_connections=20``) override the store's
keyword options, as with redis-py URLs.

Every client draws its connections from a *blocking* pool of at most ``max_connections``: a
caller that finds them all busy waits for one (``pool_timeout`` at a time, see ``_pools``)
instead of failing.
redis-py's default pools raise ``MaxConnectionsError`` at once (redis-py 6+: past 100
connections), which the cache would take for an outage: it would run the loader for a key that
is in the cache and open the circuit breaker, under load, when the store is fine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from cacheplug._redact import redact
from cacheplug.exceptions import ConfigurationError
from cacheplug.stores.redis._pools import (
    AsyncBlockingSentinelPool,
    AsyncWaitingPool,
    BlockingSentinelPool,
    WaitingPool,
)
from cacheplug.stores.redis._untyped import (
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


@dataclass
class ClusterTarget:
    """What a ``redis+cluster://[[user]:password@]host:port[,host:port...][?options]`` URL
    names: the nodes to start from (the client discovers the others)."""

    nodes: list[tuple[str, int]]
    username: str | None = None
    password: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class _HostsURL:
    """A URL naming several ``host:port``: its parts, unquoted."""

    hosts: list[tuple[str, int]]
    path: list[str]
    username: str | None
    password: str | None
    query: list[tuple[str, str]]


def _parse_hosts(url: str, example: str) -> _HostsURL:
    rest = url.split("://", 1)[1]
    rest, _, query = rest.partition("?")
    # The userinfo ends at the last "@": a password may hold an unencoded "@" or "/".
    credentials, _, rest = rest.rpartition("@")
    location, _, path = rest.partition("/")
    username = password = None
    if credentials:
        user, has_password, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    hosts: list[tuple[str, int]] = []
    for host in filter(None, location.split(",")):
        name, _, port = host.rpartition(":")
        try:
            hosts.append((name or "127.0.0.1", int(port)))
        except ValueError:
            raise ConfigurationError(
                f"bad address {host!r} in {redact(url)!r}; a URL looks like {example!r}"
            ) from None
    if not hosts:
        raise ConfigurationError(f"a URL looks like {example!r}, not {redact(url)!r}")
    parts = [part for part in path.split("/") if part]
    return _HostsURL(hosts, parts, username, password, parse_qsl(query))


def _option(options: dict[str, Any], name: str, value: str, url: str) -> None:
    """Put the query parameter ``name`` into ``options``, converted, or refuse it."""
    if name in _INTEGER_OPTIONS:
        options[name] = _integer(name, value, url)
    elif name in _NUMERIC_OPTIONS:
        options[name] = float(value)
    else:
        raise ConfigurationError(f"unknown option {name!r} in {redact(url)!r}")


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Parse ``redis+sentinel://...`` (see the module docstring)."""
    example = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0"
    parsed = _parse_hosts(url, example)
    parts = parsed.path
    if not parts or len(parts) > 2:
        raise ConfigurationError(f"a Sentinel URL looks like {example!r}, not {redact(url)!r}")
    target = SentinelTarget(
        parsed.hosts, unquote(parts[0]), username=parsed.username, password=parsed.password
    )
    if len(parts) == 2:
        target.db = _integer("db", parts[1], url)
    for name, value in parsed.query:
        if name in ("sentinel_password", "sentinel_username"):
            target.sentinel_options[name.removeprefix("sentinel_")] = value
        else:
            _option(target.options, name, value, url)
    return target


def parse_cluster_url(url: str) -> ClusterTarget:
    """Parse ``redis+cluster://...`` (see :class:`ClusterTarget`); ``?password=`` and
    ``?username=`` are accepted as well as the userinfo."""
    example = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"
    parsed = _parse_hosts(url, example)
    if parsed.path not in ([], ["0"]):
        raise ConfigurationError(
            f"a Redis Cluster has database 0 only; a URL looks like {example!r}, "
            f"not {redact(url)!r}"
        )
    target = ClusterTarget(parsed.hosts, parsed.username, parsed.password)
    for name, value in parsed.query:
        if name == "password":
            target.password = value
        elif name == "username":
            target.username = value
        else:
            _option(target.options, name, value, url)
    return target


def _integer(name: str, value: str, url: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer in {redact(url)!r}") from None


class ClientFactory:
    """Builds the store's clients (sync, and async per event loop) for one URL.

    ``pool_timeout``: one wait of a caller for a free connection of a full pool (``None``:
    the socket timeout in effect for the URL); ``_pools`` says when the caller gives up.
    """

    def __init__(
        self, url: str, options: dict[str, Any], pool_timeout: float | None = None
    ) -> None:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in SCHEMES:
            raise ConfigurationError(
                "RedisStore needs a redis://, rediss://, unix:// or redis+sentinel:// URL, "
                f"not {redact(url)!r}"
            )
        self.url = url
        self.options = options
        self._pool_timeout = pool_timeout
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

    def _wait_for_connection(self, pool: Any) -> None:
        """Set one wait of a caller of ``pool`` for a connection (its ``socket_timeout`` is the
        one in effect: the URL's, if it names one)."""
        timeout = self._pool_timeout
        if timeout is None:
            timeout = pool.connection_kwargs.get("socket_timeout")
        pool.timeout = timeout

    def sync_client(self, retry: Any) -> redis.Redis:
        """A client on the server (the current master, for Sentinel)."""
        if self.sentinel is None:
            # The retry policy goes to the pool: redis-py applies the connection's.
            pool = WaitingPool.from_url(self.url, retry=retry, **self.options)
            self._wait_for_connection(pool)
            return redis.Redis.from_pool(pool)
        if self._sync_manager is None:
            self._sync_manager = sentinel_manager(self.sentinel.sentinels, self._sentinel_kwargs())
        client = sync_master(
            self._sync_manager,
            self.sentinel.service_name,
            connection_pool_class=BlockingSentinelPool,
            **self._master_kwargs(retry),
        )
        self._wait_for_connection(client.connection_pool)
        return client

    def async_client(self, retry: Any) -> redis.asyncio.Redis:
        """The asyncio twin of :meth:`sync_client` (a new one: call it once per loop)."""
        if self.sentinel is None:
            pool = AsyncWaitingPool.from_url(self.url, retry=retry, **self.options)
            self._wait_for_connection(pool)
            return redis.asyncio.Redis.from_pool(pool)
        manager = async_sentinel_manager(self.sentinel.sentinels, self._sentinel_kwargs())
        client = async_master(
            manager,
            self.sentinel.service_name,
            connection_pool_class=AsyncBlockingSentinelPool,
            **self._master_kwargs(retry),
        )
        self._wait_for_connection(client.connection_pool)
        return client

    def sync_pair(
        self, retries: int, shared: redis.ConnectionPool | None = None
    ) -> tuple[redis.Redis, redis.Redis]:
        """The client whose commands are retried ``retries`` times (on ``shared``, a pool of
        the application's, if given) and the one whose commands never are."""
        if shared is None:
            retrying = self.sync_client(Retry(ExponentialBackoff(cap=0.05, base=0.005), retries))
        elif shared.connection_kwargs.get("decode_responses"):
            raise ConfigurationError(
                "RedisStore needs a connection pool with decode_responses=False (entries are bytes)"
            )
        else:
            retrying = redis.Redis(connection_pool=shared)
        return retrying, self.sync_client(Retry(NoBackoff(), 0))

    def async_pair(self, retries: int) -> tuple[redis.asyncio.Redis, redis.asyncio.Redis]:
        """The asyncio twin of :meth:`sync_pair` (new clients: call it once per loop)."""
        retrying = self.async_client(AsyncRetry(ExponentialBackoff(cap=0.05, base=0.005), retries))
        return retrying, self.async_client(AsyncRetry(NoBackoff(), 0))


def connect(
    url: str,
    options: dict[str, Any],
    pool_timeout: float | None,
    retries: int,
    shared: redis.ConnectionPool | None,
) -> tuple[ClientFactory, redis.Redis, redis.Redis]:
    """The client factory of ``url`` and its sync pair (see :meth:`ClientFactory.sync_pair`);
    a redacted :class:`ConfigurationError` if redis-py cannot read the URL."""
    try:
        factory = ClientFactory(url, options, pool_timeout)
        return (factory, *factory.sync_pair(retries, shared))
    except ConfigurationError:
        raise
    except ValueError:
        # redis-py's message quotes the piece of the URL it could not read, which may be part
        # of the password.
        raise ConfigurationError(
            f"cannot read the store URL {redact(url)!r}: percent-encode the characters "
            "of the password that a URL reserves (@ : / ? # %)"
        ) from None
