"""Invalidation costs, as ratios against baselines measured in the same run.

    python benchmarks/invalidation.py [--redis-url URL] [--entries N] [--rounds N]

1. Invalidating a tag carried by ``--entries`` entries (default 100,000) with
   ``invalidate_tags``, against deleting the same entries by key pattern with ``SCAN`` +
   ``DEL`` (what django-redis's ``delete_pattern`` does). Prints the time of each, the ratio,
   and the round trips ``invalidate_tags`` made (target, issue 4: at most 2, whatever the
   count). The pattern delete is timed on a freshly filled keyspace each round.
2. A ``get_or_load`` hit carrying 3 tags against an untagged hit (both one round trip).

Without ``--redis-url`` a throwaway redis-server is started on a free loopback port.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis
from _common import SECRET, VALUE
from overhead import measure, report

from cacheplug import Cache, RedisStore
from cacheplug.testing import RedisServer
from cacheplug.testing.round_trips import RoundTrips

TAGS = ["product:42", "catalog", "vendor:7"]


def fill(cache: Cache, entries: int) -> None:
    batch = 5_000
    for start in range(0, entries, batch):
        mapping = {f"item:{i}": VALUE for i in range(start, min(entries, start + batch))}
        failed = cache.set_many(mapping, ttl=3600, tags="bulk")
        assert not failed, f"{len(failed)} entries were not stored"


def pattern_delete(client: redis.Redis, pattern: str) -> int:
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1_000):
        batch.append(key)
        if len(batch) == 1_000:
            deleted += int(client.delete(*batch))
            batch = []
    if batch:
        deleted += int(client.delete(*batch))
    return deleted


def tag_invalidation(url: str, entries: int, rounds: int) -> None:
    store = RedisStore(url)
    trips = RoundTrips(store)
    cache = Cache(store, namespace="benchinval", secret=SECRET)
    client = redis.Redis.from_url(url)
    started = time.perf_counter()
    fill(cache, entries)
    print(f"\nfilled {entries:,} tagged entries in {time.perf_counter() - started:.1f} s")
    cache.invalidate_tags("warm-up")  # redis-py loads the script on its first use
    pattern = "benchinval:*:d:{item:*}"

    tag_times: list[float] = []
    pattern_times: list[float] = []
    round_trips: list[int] = []
    for _ in range(rounds):
        sample = [f"item:{i}" for i in range(0, entries, max(1, entries // 50))]
        assert len(cache.get_many(sample)) == len(sample)
        sent = trips.count
        started = time.perf_counter()
        cache.invalidate_tags("bulk")
        tag_times.append(time.perf_counter() - started)
        round_trips.append(trips.count - sent)
        assert cache.get_many(sample) == {}, "the tag invalidation missed entries"

        started = time.perf_counter()
        deleted = pattern_delete(client, pattern)
        pattern_times.append(time.perf_counter() - started)
        assert deleted == entries, f"the pattern delete removed {deleted} of {entries}"
        fill(cache, entries)  # for the next round (the tag's version moved on)

    ratio = statistics.median(t / p for t, p in zip(tag_times, pattern_times, strict=True))
    most = max(round_trips)
    print(f"\nInvalidating {entries:,} entries")
    print(
        f"  {'SCAN + DEL by key pattern':<50} {statistics.median(pattern_times) * 1e3:9.2f} "
        "ms      1.00x (baseline)"
    )
    print(
        f"  {'cacheplug invalidate_tags':<50} {statistics.median(tag_times) * 1e3:9.2f} ms "
        f"  {ratio:8.5f}x  round trips: {most}  target <= 2: {'OK' if most <= 2 else 'MISSED'}"
    )
    cache.close()
    client.close()


def tagged_hits(url: str, rounds: int, ops: int) -> None:
    cache = Cache(url, namespace="benchtags", secret=SECRET)
    cache.set("plain", VALUE, ttl=3600)
    cache.set("tagged", VALUE, ttl=3600, tags=TAGS)

    def loader() -> object:
        raise AssertionError("the benchmark must only hit")

    times = measure(
        {
            "cacheplug get_or_load hit, untagged": lambda: cache.get_or_load("plain", loader),
            "cacheplug get_or_load hit, 3 tags": lambda: cache.get_or_load(
                "tagged", loader, tags=TAGS
            ),
        },
        rounds,
        ops,
    )
    report(
        "Tagged hit (one MGET: the entry and its version keys)",
        times,
        "cacheplug get_or_load hit, untagged",
        {},
    )
    cache.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hit-rounds", type=int, default=21)
    parser.add_argument("--ops", type=int, default=500)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, redis-py {redis.__version__}")
    if args.redis_url:
        tag_invalidation(args.redis_url, args.entries, args.rounds)
        tagged_hits(args.redis_url, args.hit_rounds, args.ops)
    else:
        with RedisServer() as server:
            tag_invalidation(server.url, args.entries, args.rounds)
            tagged_hits(server.url, args.hit_rounds, args.ops)


if __name__ == "__main__":
    main()
