"""One hot key: what the L1 tier spares Redis, and what an L1 hit costs.

    python benchmarks/hotkey.py [--redis-url URL] [--duration S] [--processes N]
        [--threads N] [--rounds N] [--ops N]

1. ``--processes`` x ``--threads`` workers (default 4 x 8) read ONE key with
   ``get_or_load`` for ``--duration`` seconds (default 5), first with the L1 tier off, then
   on. Redis's own command counter (``INFO commandstats``) gives the commands it served per
   second. Target (issue 5): at least 20x fewer with L1 on.
2. The cost of an L1 hit of ``get_or_load`` against ``cachetools.TTLCache.get``, one thread,
   interleaved rounds (see ``overhead.py``). Target (issue 5): at most 1.0x.

Without ``--redis-url`` a throwaway redis-server is started on a free loopback port. Hot-key
replication over Redis Cluster slots (the third figure the issue asks for) is not measured
here yet: it comes with the Cluster store.
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
from _common import SECRET, VALUE
from overhead import measure, report

from cacheplug import Cache, LocalTier
from cacheplug.testing import RedisServer

KEY = "celebrity"


def worker(url: str, l1: bool, threads: int, duration: float, counts: Any) -> None:
    cache = Cache(url, namespace="hotkey", secret=SECRET, l1=LocalTier(ttl=60) if l1 else None)
    deadline = time.monotonic() + duration
    served = [0] * threads

    def loop(index: int) -> None:
        while time.monotonic() < deadline:
            cache.get_or_load(KEY, lambda: VALUE, ttl=3600)
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
    while cache._local is None or not len(cache._local):  # until the value sits in L1
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


if __name__ == "__main__":
    main()
