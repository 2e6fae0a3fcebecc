"""L1 hit ratio on a Zipf workload: TinyLFU admission against plain LRU of the same size.

    python benchmarks/l1_zipf.py [--keys N] [--entries N] [--requests N] [--skew S]

Requests for ``--keys`` keys (default 1,000,000) drawn from a Zipf distribution of exponent
``--skew`` (default 1.0: the k-th most popular key is asked k times less often than the
first), read with ``get_or_load`` through a cache on the in-process store whose L1 tier
(``LocalTier``) holds ``--entries`` entries (default 10,000): an L1 miss reads the store, or
loads, and offers the key to the tier, as every read does. The hit ratio is the tier's
(``stats().l1_hits``); the first 20% of requests warm the tier and are not counted. The
better policy is to be the default.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from cacheplug import Cache, LocalTier, MemoryStore


def zipf_requests(keys: int, requests: int, skew: float, seed: int = 7) -> list[str]:
    weights = 1.0 / np.arange(1, keys + 1) ** skew
    weights /= weights.sum()
    ranks = np.random.default_rng(seed).choice(keys, size=requests, p=weights)
    # Shuffle which key has which rank, so that popularity is not tied to the key's name.
    names = np.random.default_rng(seed + 1).permutation(keys)
    return [f"key:{names[rank]}" for rank in ranks]


def hit_ratio(requests: list[str], entries: int, admission: str) -> tuple[float, float]:
    """The L1 tier's hit ratio over ``requests`` after the warm-up, and the seconds taken."""
    tier = LocalTier(max_entries=entries, ttl=3600, admission=admission)
    cache = Cache(MemoryStore(max_entries=len(set(requests))), namespace="zipf", l1=tier)
    warm = len(requests) // 5
    read = cache.get_or_load
    started = time.perf_counter()
    for key in requests[:warm]:
        read(key, int, ttl=3600)
    before = cache.stats().l1_hits
    for key in requests[warm:]:
        read(key, int, ttl=3600)
    hits = cache.stats().l1_hits - before
    elapsed = time.perf_counter() - started
    cache.close()
    return hits / (len(requests) - warm), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2_000_000)
    parser.add_argument("--skew", type=float, default=1.0)
    args = parser.parse_args()
    requests = zipf_requests(args.keys, args.requests, args.skew)
    print(
        f"Zipf({args.skew:g}) over {args.keys:,} keys, {args.requests:,} requests "
        f"(the first 20% warm up), L1 of {args.entries:,} entries"
    )
    results = {name: hit_ratio(requests, args.entries, name) for name in ("lru", "tinylfu")}
    for name, (ratio, elapsed) in results.items():
        per_request = elapsed / len(requests) * 1e6
        print(f"  {name:<8} hit ratio {ratio:6.1%}   ({per_request:.2f} us per request)")
    better = max(results, key=lambda name: results[name][0])
    gain = results["tinylfu"][0] - results["lru"][0]
    print(
        f"  better: {better} ({gain:+.1%} hit ratio for TinyLFU); default: {LocalTier().admission}"
    )


if __name__ == "__main__":
    main()
