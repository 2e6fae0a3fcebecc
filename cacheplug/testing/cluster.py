"""A throwaway Redis Cluster on loopback ports: 3 masters, each with a replica.

    with RedisClusterSetup() as cluster:
        cache = Cache(cluster.url, secret=...)      # redis+cluster://127.0.0.1:<port>
        cluster.kill_master_of("some key")          # SIGKILL; its replica takes over
        cluster.restart(victim)                     # back, as a replica: a full resync

Needs ``redis-server`` and ``redis-cli`` (``redis-cli --cluster create`` builds it) and the
``redis`` package.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
from typing import Any

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
        self._joining: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``redis+cluster://`` naming the first node (the client discovers the rest)."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self, timeout: float = 30.0, *, in_sync: bool = True) -> RedisClusterSetup:
        """Start the nodes, create the cluster, wait until every node says it is ok.

        With ``in_sync=False`` the cluster is made of the masters alone, and this returns as
        soon as they serve every slot: the replicas join from a background thread and make
        their first sync while the cluster is already answering (a cluster under load from
        its first moment). :meth:`wait_healthy` waits for them too."""
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not on PATH (Debian: apt-get install redis-tools)")
        masters = len(self.nodes) // (1 + self.replicas)
        first = self.nodes if in_sync else self.nodes[:masters]
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in first),
                "--cluster-replicas",
                str(self.replicas if in_sync else 0),
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )
        if in_sync:
            self.wait_healthy(timeout)
            return self
        if not wait_until(lambda: all(self._serving(node) for node in first), timeout, 0.02):
            raise RuntimeError("the cluster did not serve every slot")
        self._joining = threading.Thread(
            target=self._attach_replicas, args=(masters, timeout), daemon=True
        )
        self._joining.start()
        return self

    def _attach_replicas(self, masters: int, timeout: float) -> None:
        """Each node past the masters joins the cluster as a replica of one of them."""
        for index, replica in enumerate(self.nodes[masters:]):
            master = self.nodes[index % masters]
            with (
                redis.Redis(port=master.port, socket_timeout=1) as to_master,
                redis.Redis(port=replica.port, socket_timeout=1) as to_replica,
            ):
                master_id = to_master.execute_command("CLUSTER", "MYID").decode()
                to_replica.execute_command("CLUSTER", "MEET", "127.0.0.1", master.port)

                def replicating(client: Any = to_replica, master: str = master_id) -> bool:
                    try:
                        client.execute_command("CLUSTER", "REPLICATE", master)
                    except redis.ResponseError:
                        return False  # it does not know the master yet
                    return True

                if not wait_until(replicating, timeout, 0.02):
                    raise RuntimeError(f"the node on port {replica.port} did not replicate")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every running node reports ``cluster_state:ok`` and every slot is served."""
        joining, self._joining = self._joining, None
        if joining is not None:
            joining.join(timeout)
        if not wait_until(
            lambda: all(self._ok(node) for node in self.nodes if node.running), timeout, 0.1
        ):
            raise RuntimeError("the cluster did not become healthy")

    @staticmethod
    def _serving(node: RedisServer) -> bool:
        """The node sees every slot served (a replica need not be in sync)."""
        try:
            with redis.Redis(port=node.port, socket_timeout=1) as client:
                return bool(client.cluster("info").get("cluster_state") == "ok")
        except redis.RedisError:
            return False

    def replicas_in_sync(self) -> tuple[int, int]:
        """How many running replicas are in sync with their master, of how many."""
        synced = total = 0
        for node in self.nodes:
            if not node.running:
                continue
            try:
                with redis.Redis(port=node.port, socket_timeout=1) as client:
                    replication = client.info("replication")
            except redis.RedisError:
                continue
            if replication.get("role") == "slave":
                total += 1
                synced += replication.get("master_link_status") == "up"
        return synced, total

    def replica_of(self, master: RedisServer) -> RedisServer:
        """A running replica of ``master``."""
        with redis.Redis(port=master.port, socket_timeout=1) as client:
            replication = client.info("replication")
        for name, value in replication.items():
            if name.startswith("slave") and isinstance(value, dict):
                port = int(value["port"])
                return next(node for node in self.nodes if node.port == port)
        raise RuntimeError(f"the node on port {master.port} has no replica")

    def restart(self, node: RedisServer, timeout: float = 30.0) -> None:
        """Start ``node`` again (killed or stopped; with no persistence, it comes back
        empty) and wait until the cluster is healthy: it rejoins as a replica and syncs in
        full from its master."""
        node.kill()
        node.start()
        self.wait_healthy(timeout)

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
