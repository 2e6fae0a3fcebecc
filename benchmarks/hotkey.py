"""One hot key: what the L1 tier spares Redis, and what an L1 hit costs.

    python benchmarks/hotkey.py [--redis-url URL] [--duration S] [--processes N]
        [--threads N] [--rounds N] [--ops N]

1. ``--processes`` x ``--threads`` workers (default 4 x 8) read ONE key with
   ``get_or_load`` for ``--duration`` seconds (default 5), first with the L1 tier off, then
   on. Redis's own command counter (``INFO commandstats``) gives the commands it served per
   second. Target (issue 5): at least 20x fewer with L1 on.
2. The cost of an L1 hit of ``get_or_load`` against ``cachetools.TTLCache.get``, one thread,
   interleaved rounds (see ``overhead.py``). Target (issue 5): at most 1.0x.

3. On a Redis Cluster (3 masters, 3 replicas), the same workers with the L1 tier off read
   the key with ``replicas=8``, then without replicas: the share of the hot key's commands
   each master served (``INFO commandstats`` per master, admin commands left out). Target
   (issue 5): with replicas, the busiest master serves at most 1.5x the mean.

Without ``--redis-url`` a throwaway redis-server is started on a free loopback port; without
``--cluster-url`` a throwaway cluster (``cacheplug.testing.cluster``) on loopback ports.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cachetools
import redis
import redis.cluster
from _common import SECRET, VALUE
from overhead import measure, report

from cacheplug import Cache, LocalTier
from cacheplug.testing import RedisServer
from cacheplug.testing.cluster import RedisClusterSetup

KEY = "celebrity"


def worker(
    url: str, l1: bool, threads: int, duration: float, counts: Any, replicas: int = 0
) -> None:
    cache = Cache(url, namespace="hotkey", secret=SECRET, l1=LocalTier(ttl=60) if l1 else None)
    deadline = time.monotonic() + duration
    served = [0] * threads

    def loop(index: int) -> None:
        while time.monotonic() < deadline:
            cache.get_or_load(KEY, lambda: VALUE, ttl=3600, replicas=replicas or None)
            served[index] += 1

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    counts.put(sum(served))
    cache.close()


def commands(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


_ADMIN_COMMANDS = ("info", "cluster", "ping", "command", "config", "client", "hello")


def commands_per_master(client: redis.cluster.RedisCluster) -> dict[str, int]:
    """Commands each master has run, admin ones (the benchmark's own INFO, the client's
    topology refreshes) left out."""
    counts = {}
    for node in client.get_primaries():
        stats: dict[str, Any] = client.get_redis_connection(node).info("commandstats")
        counts[node.name] = sum(
            int(entry["calls"])
            for name, entry in stats.items()
            if not name.removeprefix("cmdstat_").startswith(_ADMIN_COMMANDS)
        )
    return counts


def cluster_run(
    url: str, replicas: int, processes: int, threads: int, duration: float
) -> tuple[float, dict[str, int]]:
    """(reads served per second, commands each master ran) with the L1 tier off."""
    client = redis.cluster.RedisCluster.from_url("redis://" + url.split("://", 1)[1])
    Cache(url, namespace="hotkey", secret=SECRET).set(KEY, VALUE, ttl=3600)
    ctx = mp.get_context("spawn")
    counts = ctx.Queue()
    pool = [
        ctx.Process(target=worker, args=(url, False, threads, duration, counts, replicas))
        for _ in range(processes)
    ]
    before = commands_per_master(client)
    for process in pool:
        process.start()
    served = sum(counts.get(timeout=duration + 60) for _ in pool)
    for process in pool:
        process.join()
    after = commands_per_master(client)
    client.close()
    return served / duration, {name: after[name] - before[name] for name in after}


def cluster_share(url: str, processes: int, threads: int, duration: float) -> None:
    shape = f"{processes} processes x {threads} threads, {duration:g} s, L1 off"
    print(f"\nOne key on a Redis Cluster (3 masters), read by {shape}")
    verdict = ""
    for replicas in (8, 0):
        served, per_master = cluster_run(url, replicas, processes, threads, duration)
        total = sum(per_master.values())
        mean = total / len(per_master)
        busiest = max(per_master.values()) / max(mean, 1e-9)
        shares = "  ".join(f"{n / max(total, 1):5.1%}" for n in sorted(per_master.values()))
        label = f"replicas={replicas}" if replicas else "no replicas"
        print(
            f"  {label:<12} {served:9,.0f} reads/s  {total / duration:9,.0f} commands/s"
            f"   per-master share {shares}   busiest {busiest:.2f}x mean"
        )
        if replicas:
            verdict = "OK" if busiest <= 1.5 else "MISSED"
            target = f"{busiest:.2f}x"
    print(f"  busiest master with replicas=8: {target} the mean   target <= 1.5x: {verdict}")


def load_run(
    url: str, l1: bool, processes: int, threads: int, duration: float
) -> tuple[float, float]:
    """(requests served per second, commands Redis ran per second)."""
    client = redis.Redis.from_url(url)
    Cache(url, namespace="hotkey", secret=SECRET).set(KEY, VALUE, ttl=3600)
    ctx = mp.get_context("spawn")
    counts = ctx.Queue()
    pool = [
        ctx.Process(target=worker, args=(url, l1, threads, duration, counts))
        for _ in range(processes)
    ]
    before = commands(client)
    started = time.monotonic()
    for process in pool:
        process.start()
    served = sum(counts.get(timeout=duration + 60) for _ in pool)
    for process in pool:
        process.join()
    elapsed = time.monotonic() - started
    ran = commands(client) - before - 1  # the second INFO
    return served / duration, ran / elapsed


def l1_hit_cost(url: str, rounds: int, ops: int) -> None:
    cache = Cache(url, namespace="hotkeycost", secret=SECRET, l1=LocalTier(ttl=3600))
    cache.set(KEY, VALUE, ttl=3600)
    while cache.stats().l1_hits == 0:  # until a read is answered from L1
        cache.get_or_load(KEY, lambda: VALUE)
        time.sleep(0.01)
    ttl_cache: cachetools.TTLCache[str, object] = cachetools.TTLCache(maxsize=10_000, ttl=3600)
    ttl_cache[KEY] = VALUE

    def loader() -> object:
        raise AssertionError("the benchmark must only hit")

    times = measure(
        {
            "cachetools.TTLCache.get": lambda: ttl_cache.get(KEY),
            "cacheplug get_or_load, L1 hit": lambda: cache.get_or_load(KEY, loader),
            "cacheplug get, L1 hit": lambda: cache.get(KEY),
        },
        rounds,
        ops,
    )
    report(
        "L1 hit (in process, kept coherent by the bus)",
        times,
        "cachetools.TTLCache.get",
        {"cacheplug get_or_load, L1 hit": 1.0},
    )
    cache.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--cluster-url", help="redis+cluster:// URL instead of starting one")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--ops", type=int, default=5000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, redis-py {redis.__version__}, {os.cpu_count()} CPUs")

    def run(url: str) -> None:
        shape = f"{args.processes} processes x {args.threads} threads, {args.duration:g} s"
        print(f"\nOne key read by {shape}")
        off = load_run(url, False, args.processes, args.threads, args.duration)
        on = load_run(url, True, args.processes, args.threads, args.duration)
        for label, (served, ran) in (("L1 off", off), ("L1 on", on)):
            print(f"  {label:<8} {served:12,.0f} reads/s   Redis commands {ran:10,.0f}/s")
        fewer = off[1] / max(on[1], 1e-9)
        verdict = "OK" if fewer >= 20 else "MISSED"
        print(f"  Redis commands with L1 on: {fewer:,.0f}x fewer   target >= 20x: {verdict}")
        l1_hit_cost(url, args.rounds, args.ops)

    if args.redis_url:
        run(args.redis_url)
    else:
        with RedisServer() as server:
            run(server.url)
    if args.cluster_url:
        cluster_share(args.cluster_url, args.processes, args.threads, args.duration)
    else:
        with RedisClusterSetup() as cluster:
            cluster_share(cluster.url, args.processes, args.threads, args.duration)


if __name__ == "__main__":
    main()
