"""A throwaway Redis Sentinel set-up on loopback ports: a master, a replica, three Sentinels.

    with SentinelSetup() as setup:
        cache = Cache(setup.url, secret=...)        # redis+sentinel://...
        setup.failover()                            # the replica becomes the master

Needs ``redis-server`` (which runs Sentinels with ``--sentinel``) and the ``redis`` package.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import redis

from cacheplug.testing._setups import Throwaway, stop_processes, wait_until
from cacheplug.testing.redis_server import RedisServer, free_port

SERVICE = "mymaster"


class SentinelSetup(Throwaway):
    """One master, one replica and three Sentinels watching them (quorum 2)."""

    def __init__(self, *, down_after_ms: int = 1000, failover_timeout_ms: int = 5000) -> None:
        self.master = RedisServer()
        self.replica = RedisServer(extra_args=("--replicaof", "127.0.0.1", str(self.master.port)))
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._down_after_ms = down_after_ms
        self._failover_timeout_ms = failover_timeout_ms
        self._dir = Path(tempfile.mkdtemp(prefix="cacheplug-sentinel-"))
        self._sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """``redis+sentinel://`` naming the three Sentinels and the service, database 0."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self, timeout: float = 20.0) -> SentinelSetup:
        """Start everything and wait until the Sentinels know the master and its replica."""
        self.master.start()
        self.replica.start()
        binary = shutil.which("redis-server")
        assert binary is not None  # RedisServer() checked
        for port in self.sentinel_ports:
            config = self._dir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self._dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {self._down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} {self._failover_timeout_ms}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self._sentinels.append(
                subprocess.Popen(
                    [binary, str(config), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        self._wait(lambda: self._ready(self.master.port), timeout, "the Sentinels to be ready")
        return self

    def master_port(self) -> int:
        """The master's port, as the first Sentinel that answers says."""
        for port in self.sentinel_ports:
            try:
                with redis.Redis(port=port, socket_timeout=1) as sentinel:
                    address = sentinel.sentinel_get_master_addr_by_name(SERVICE)
                if address:
                    return int(address[1])
            except redis.RedisError:
                continue
        raise RuntimeError("no Sentinel answers")

    def failover(self, timeout: float = 30.0) -> int:
        """Make the replica the master (``SENTINEL FAILOVER``); the new master's port."""
        old = self.master_port()
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=2) as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        self._wait(lambda: self.master_port() != old, timeout, "the failover")
        new = self.master_port()
        self._wait(lambda: self._ready(new), timeout, "the new master to be writable")
        return new

    def _ready(self, master_port: int) -> bool:
        try:
            with redis.Redis(port=master_port, socket_timeout=1) as master:
                if master.info("replication").get("role") != "master":
                    return False
                if master.info("replication").get("connected_slaves", 0) < 1:
                    return False
            for port in self.sentinel_ports:
                with redis.Redis(port=port, socket_timeout=1) as sentinel:
                    address = sentinel.sentinel_get_master_addr_by_name(SERVICE)
                    if not address or int(address[1]) != master_port:
                        return False
                    if not sentinel.sentinel_slaves(SERVICE):
                        return False
        except redis.RedisError:
            return False
        return True

    @staticmethod
    def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
        if not wait_until(condition, timeout, 0.1):
            raise RuntimeError(f"timed out waiting for {what}")

    def stop(self) -> None:
        """Stop the Sentinels and both servers."""
        stop_processes(self._sentinels)
        self._sentinels = []
        self.replica.stop()
        self.master.stop()

    def discard(self) -> None:
        """Remove the servers' and the Sentinels' directories (stopped)."""
        self.master.discard()
        self.replica.discard()
        shutil.rmtree(self._dir, ignore_errors=True)
