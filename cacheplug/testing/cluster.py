"""A throwaway Redis Cluster on loopback ports: 3 masters, each with a replica.

    with RedisClusterSetup() as cluster:
        cache = Cache(cluster.url, secret=...)      # redis+cluster://127.0.0.1:<port>
        cluster.kill_master_of("some key")          # SIGKILL; its replica takes over

Needs ``redis-server`` and ``redis-cli`` (``redis-cli --cluster create`` builds it) and the
``redis`` package.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess

import redis
from redis.crc import key_slot

from cacheplug.testing._setups import Throwaway, wait_until
from cacheplug.testing.redis_server import RedisServer


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus ports (port + 10000) are free too."""
    found: list[int] = []
    candidates = list(range(20000, 30000))
    random.Random().shuffle(candidates)
    for port in candidates:
        if port in found or port + 10000 in found:
            continue
        if all(_free(candidate) for candidate in (port, port + 10000)):
            found.append(port)
            if len(found) == count:
                return found
    raise RuntimeError("no free ports for a Redis Cluster")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class RedisClusterSetup(Throwaway):
    """``masters`` masters with ``replicas`` replicas each."""

    def __init__(self, masters: int = 3, replicas: int = 1, *, node_timeout_ms: int = 1000):
        args = (
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(node_timeout_ms),
            "--repl-diskless-sync-delay",
            "0",
        )
        self.replicas = replicas
        ports = _cluster_ports(masters * (1 + replicas))
        self.nodes = [RedisServer(port, extra_args=args) for port in ports]

    @property
    def url(self) -> str:
        """``redis+cluster://`` naming the first node (the client discovers the rest)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 30.0) -> RedisClusterSetup:
        """Start the nodes, create the cluster, wait until every node says it is ok."""
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not on PATH (Debian: apt-get install redis-tools)")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every running node reports ``cluster_state:ok`` and every slot is served."""
        if not wait_until(
            lambda: all(self._ok(node) for node in self.nodes if node.running), timeout, 0.1
        ):
            raise RuntimeError("the cluster did not become healthy")

    @staticmethod
    def _ok(node: RedisServer) -> bool:
        """The node sees a healthy cluster and, if a replica, is in sync with its master."""
        try:
            with redis.Redis(port=node.port, socket_timeout=1) as client:
                if client.cluster("info").get("cluster_state") != "ok":
                    return False
                replication = client.info("replication")
                return bool(
                    replication.get("role") == "master"
                    or replication.get("master_link_status") == "up"
                )
        except redis.RedisError:
            return False

    def master_of(self, key: str) -> RedisServer:
        """The node that is the master for ``key``'s slot right now."""
        slot = key_slot(key.encode())
        for node in self.nodes:
            if not node.running:
                continue
            try:
                with redis.Redis(port=node.port, socket_timeout=1) as client:
                    for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                        if start <= slot <= end:
                            port = int(master[1])
                            return next(n for n in self.nodes if n.port == port)
            except redis.RedisError:
                continue
        raise RuntimeError(f"no node serves slot {slot}")

    def kill_master_of(self, key: str, timeout: float = 30.0) -> RedisServer:
        """SIGKILL the master of ``key``'s slot and wait until its replica has taken over."""
        victim = self.master_of(key)
        victim.kill()

        def taken_over() -> bool:
            try:
                if self.master_of(key) is victim:
                    return False
                self.wait_healthy(timeout)
            except RuntimeError:
                return False  # no node answers yet, or not healthy yet: ask again
            return True

        if not wait_until(taken_over, timeout, 0.1):
            raise RuntimeError("no replica took over")
        return victim

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def discard(self) -> None:
        """Remove the nodes' directories (stopped)."""
        for node in self.nodes:
            node.discard()
