"""A traffic spike on warm keys: thousands of concurrent async reads at once.

    python benchmarks/backpressure.py [--redis-url URL] [--tasks N] [--waves N] [--rounds N]

Each wave, ``--tasks`` coroutines (default 2,000) on one event loop read 200 warm keys at
the same moment, ``--waves`` waves a round (default 5), ``--rounds`` rounds per contender
(default 5), contenders interleaved round by round so machine noise hits them alike. The
figures: reads answered with the cached value per second (median over rounds), the ratio to
the baseline, and how many reads did not get the cached value. redis-py's own asyncio pool
*raises* once 100 connections are out, and a cache that counts that as a store failure runs
the loader (the database) for the rest and opens its circuit breaker. cacheplug's pools make
the surplus callers wait for a connection instead.

- baseline: raw ``redis.asyncio`` GET + ``pickle.loads`` over a ``BlockingConnectionPool`` of
  50 connections: the cheapest way to answer every read from Redis (the upper bound);
- raw ``redis.asyncio`` over redis-py's default pool (raises past 100 connections): how many
  reads fail;
- ``cache.aget_or_load`` on a signed cache (its default pool: 50 connections, callers wait).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis.asyncio
from _common import SECRET, VALUE

from cacheplug import Cache
from cacheplug.testing import RedisServer

KEYS = 200

Reader = Callable[[int], Awaitable[object]]


class Contender:
    """One way of reading a key, with the reads per second and the failures it had."""

    def __init__(self, name: str, read: Reader) -> None:
        self.name = name
        self.read = read
        self.rates: list[float] = []
        self.reads = 0
        self.failed = 0

    async def round(self, tasks: int, waves: int) -> None:
        started = time.perf_counter()
        answered = 0
        for _ in range(waves):
            results = await asyncio.gather(
                *(self.read(i % KEYS) for i in range(tasks)), return_exceptions=True
            )
            ok = sum(1 for result in results if result == VALUE)
            answered += ok
            self.reads += len(results)
            self.failed += len(results) - ok
        self.rates.append(answered / (time.perf_counter() - started))


def _unpickle(raw: object) -> object:
    assert isinstance(raw, bytes), raw
    return pickle.loads(raw)


async def run(url: str, tasks: int, waves: int, rounds: int) -> None:
    blocking = redis.asyncio.Redis(
        connection_pool=redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=50)
    )
    raising = redis.asyncio.Redis.from_url(url)  # redis-py's default pool: at most 100
    cache = Cache(url, namespace="spike", secret=SECRET)
    loads = 0

    def loader() -> object:
        nonlocal loads
        loads += 1
        # Only while warming is this the value; later, a load stands for a database query,
        # and its answer is not counted as answered from Redis.
        return VALUE if warming else "loaded from the database"

    payload = pickle.dumps(VALUE)
    warming = True
    for i in range(KEYS):
        await blocking.set(f"raw:{i}", payload)
        await cache.aget_or_load(f"k{i}", loader, ttl=3600)
    warmed, warming = loads, False

    async def raw_blocking(i: int) -> object:
        return _unpickle(await blocking.get(f"raw:{i}"))

    async def raw_raising(i: int) -> object:
        return _unpickle(await raising.get(f"raw:{i}"))

    async def cacheplug(i: int) -> object:
        return await cache.aget_or_load(f"k{i}", loader, ttl=3600)

    contenders = [
        Contender("raw redis.asyncio, blocking pool of 50 (upper bound)", raw_blocking),
        Contender("raw redis.asyncio, redis-py's default pool", raw_raising),
        Contender("cacheplug aget_or_load (signed)", cacheplug),
    ]
    for _ in range(rounds):
        for contender in contenders:
            await contender.round(tasks, waves)

    print(f"{tasks:,} concurrent reads of {KEYS} warm keys, {waves} waves x {rounds} rounds")
    baseline = statistics.median(contenders[0].rates)
    for contender in contenders:
        rate = statistics.median(contender.rates)
        print(
            f"  {contender.name:<54} {rate:>9,.0f} answered/s  {rate / baseline:5.2f}x"
            f"   not answered from Redis: {contender.failed:,} of {contender.reads:,}"
        )
    print(
        f"  cacheplug: loader calls while measuring {loads - warmed}, "
        f"breaker {'open' if cache.breaker.is_open else 'closed'}, "
        f"store errors {cache.stats().errors}"
    )
    await blocking.aclose()
    await raising.aclose()
    cache.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--tasks", type=int, default=2_000)
    parser.add_argument("--waves", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, redis-py {redis.__version__}")
    if args.redis_url:
        asyncio.run(run(args.redis_url, args.tasks, args.waves, args.rounds))
    else:
        with RedisServer() as server:
            asyncio.run(run(server.url, args.tasks, args.waves, args.rounds))


if __name__ == "__main__":
    main()
