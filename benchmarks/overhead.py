"""Per-call overhead of a cache hit, as ratios against baselines measured in the same run.

    python benchmarks/overhead.py [--redis-url URL] [--rounds N] [--ops N]

Without ``--redis-url`` a throwaway redis-server is started on a free loopback port. Each
contender runs ``--ops`` calls per round; contenders are interleaved round by round so that
machine noise hits them alike, and each line reports the median over rounds of the per-round
ratio to its baseline. Targets (issue 2): get_or_load hit <= 1.10x raw redis-py GET +
pickle.loads; get_many(100) <= 1.2x raw MGET. Issue 20: MemoryStore ``get`` hit <= 2.0x and
``get_or_load`` hit <= 2.5x cachetools.TTLCache.get (was 3x for both, issue 2); an L1 hit
(a Redis store behind the tier) <= 1.0x cachetools.TTLCache.get.

The in-process section also measures a floor: a dict read under a lock and ``pickle.loads``,
the least a hit can cost that hands each caller its own copy of a mutable value (TTLCache
hands out the very object it holds). ``--in-process-only`` runs that section alone.
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis
from _common import SECRET, VALUE

from cacheplug import Cache, LocalTier, MemoryStore
from cacheplug.testing import RedisServer


def measure(
    contenders: dict[str, Callable[[], object]], rounds: int, ops: int
) -> dict[str, list[float]]:
    """Per-call seconds of each contender, one figure per round, interleaved."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm up connections, caches, code paths
        for _ in range(min(ops, 200)):
            fn()
    order = list(contenders.items())
    shuffle = random.Random(7).shuffle
    for _ in range(rounds):
        shuffle(order)  # no contender always runs first or right after a given other
        for name, fn in order:
            started = time.perf_counter()
            for _ in range(ops):
                fn()
            times[name].append((time.perf_counter() - started) / ops)
    return times


def report(
    title: str, times: dict[str, list[float]], baseline: str, targets: dict[str, float]
) -> None:
    print(f"\n{title}")
    base = times[baseline]
    print(f"  {baseline:<50} {statistics.median(base) * 1e6:9.2f} us/op   1.00x (baseline)")
    for name, values in times.items():
        if name == baseline:
            continue
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        target = targets.get(name)
        verdict = ""
        if target is not None:
            verdict = f"  target <= {target:.2f}x: {'OK' if ratio <= target else 'MISSED'}"
        print(f"  {name:<50} {statistics.median(values) * 1e6:9.2f} us/op   {ratio:.2f}x{verdict}")


def redis_hits(url: str, rounds: int, ops: int) -> None:
    raw = redis.Redis.from_url(url)
    signed = Cache(url, namespace="bench", secret=SECRET)
    unsigned_json = Cache(url, namespace="benchjson")
    signed.set("product:42", VALUE, ttl=3600)
    unsigned_json.set("product:42", VALUE, ttl=3600)
    raw.set("raw:product:42", pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL))

    def loader() -> object:
        raise AssertionError("the benchmark must only hit")

    def cold_get(cache: Cache) -> object:
        # Forget verified records, as for an entry this process reads for the first time.
        cache._engine._codec._known.clear()
        return cache.get("product:42")

    pool = raw.connection_pool

    def connection_api_get() -> object:
        # The transport cacheplug's read path uses: redis-py's connection API, no wrapper.
        connection = pool.get_connection()
        try:
            connection.send_command("GET", "raw:product:42")
            return pickle.loads(connection.read_response())
        finally:
            pool.release(connection)

    contenders: dict[str, Callable[[], object]] = {
        "raw redis-py GET + pickle.loads": lambda: pickle.loads(raw.get("raw:product:42")),  # type: ignore[arg-type]
        "same raw client again (noise floor)": lambda: pickle.loads(raw.get("raw:product:42")),  # type: ignore[arg-type]
        "redis-py connection API GET + pickle.loads": connection_api_get,
        "cacheplug get_or_load (signed pickle)": lambda: signed.get_or_load("product:42", loader),
        "cacheplug get (signed pickle)": lambda: signed.get("product:42"),
        "cacheplug get (signed, MAC checked every time)": lambda: cold_get(signed),
        "cacheplug get_or_load (json, unsigned)": lambda: unsigned_json.get_or_load(
            "product:42", loader
        ),
    }
    contenders.update(_peers(url))
    times = measure(contenders, rounds, ops)
    report(
        "Redis hit, one value of ~400 bytes",
        times,
        "raw redis-py GET + pickle.loads",
        {"cacheplug get_or_load (signed pickle)": 1.10, "cacheplug get (signed pickle)": 1.10},
    )


def _peers(url: str) -> dict[str, Callable[[], object]]:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            CACHES={
                "django-redis": {
                    "BACKEND": "django_redis.cache.RedisCache",
                    "LOCATION": url,
                },
                "django-builtin-redis": {
                    "BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": url,
                },
                "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            }
        )
    from django.core.cache import caches
    from flask_caching.backends.rediscache import RedisCache as FlaskRedisCache

    django_redis = caches["django-redis"]
    django_builtin = caches["django-builtin-redis"]
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    flask_cache = FlaskRedisCache(host=host, port=int(port), key_prefix="flaskbench:")
    django_redis.set("product:42", VALUE, 3600)
    django_builtin.set("product:42b", VALUE, 3600)
    flask_cache.set("product:42", VALUE, timeout=3600)
    return {
        "django-redis cache.get": lambda: django_redis.get("product:42"),
        "Django RedisCache cache.get": lambda: django_builtin.get("product:42b"),
        "Flask-Caching RedisCache.get": lambda: flask_cache.get("product:42"),
    }


def memory_hits(rounds: int, ops: int) -> None:
    import cachetools
    from django.core.cache import caches

    ttl_cache: cachetools.TTLCache[str, object] = cachetools.TTLCache(maxsize=10_000, ttl=3600)
    ttl_cache["product:42"] = VALUE
    embedded = Cache(MemoryStore(), namespace="bench")
    embedded.set("product:42", VALUE, ttl=3600)
    lock = threading.Lock()
    held = {"product:42": (pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL), float("inf"))}

    def floor() -> object:
        with lock:
            item = held.get("product:42")
        return None if item is None else pickle.loads(item[0])

    locmem = caches["locmem"]
    locmem.set("product:42", VALUE, 3600)

    def loader() -> object:
        raise AssertionError("the benchmark must only hit")

    times = measure(
        {
            "cachetools.TTLCache.get": lambda: ttl_cache.get("product:42"),
            "cacheplug get_or_load (MemoryStore)": lambda: embedded.get_or_load(
                "product:42", loader
            ),
            "cacheplug get (MemoryStore)": lambda: embedded.get("product:42"),
            "Django LocMemCache.get": lambda: locmem.get("product:42"),
            "floor: dict.get under a lock + pickle.loads": floor,
        },
        rounds,
        ops,
    )
    report(
        "In-process hit (the embedded default)",
        times,
        "cachetools.TTLCache.get",
        {"cacheplug get_or_load (MemoryStore)": 2.5, "cacheplug get (MemoryStore)": 2.0},
    )


def l1_hits(url: str, rounds: int, ops: int) -> None:
    """A hit from the L1 tier (a Redis store behind it) against ``cachetools.TTLCache.get``,
    which hands out the object it holds, as the L1 tier does."""
    import cachetools

    ttl_cache: cachetools.TTLCache[str, object] = cachetools.TTLCache(maxsize=10_000, ttl=3600)
    ttl_cache["product:42"] = VALUE
    cache = Cache(url, namespace="benchl1", secret=SECRET, l1=LocalTier(ttl=3600))
    cache.set("product:42", VALUE, ttl=3600)
    deadline = time.monotonic() + 10
    while cache.stats().l1_hits == 0:  # until the bus is heard and the tier keeps the value
        if time.monotonic() > deadline:
            raise RuntimeError("the L1 tier never kept the value")
        cache.get("product:42")
        time.sleep(0.01)

    def loader() -> object:
        raise AssertionError("the benchmark must only hit")

    before = cache.stats()
    times = measure(
        {
            "cachetools.TTLCache.get": lambda: ttl_cache.get("product:42"),
            "cacheplug get (L1 hit)": lambda: cache.get("product:42"),
            "cacheplug get_or_load (L1 hit)": lambda: cache.get_or_load("product:42", loader),
        },
        rounds,
        ops,
    )
    after = cache.stats()
    report(
        "L1 hit (a Redis store behind the tier)",
        times,
        "cachetools.TTLCache.get",
        {"cacheplug get (L1 hit)": 1.0, "cacheplug get_or_load (L1 hit)": 1.0},
    )
    hits, l1 = after.hits - before.hits, after.l1_hits - before.l1_hits
    print(f"  hits while measuring: {hits:,}, from L1: {l1:,}")
    cache.close()


def many_hits(url: str, rounds: int, ops: int) -> None:
    raw = redis.Redis.from_url(url)
    signed = Cache(url, namespace="benchmany", secret=SECRET)
    keys = [f"product:{i}" for i in range(100)]
    raw_keys = [f"raw:many:{i}" for i in range(100)]
    signed.set_many({k: VALUE for k in keys}, ttl=3600)
    blob = pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL)
    raw.mset({k: blob for k in raw_keys})

    def raw_mget() -> object:
        return [pickle.loads(v) for v in raw.mget(raw_keys)]  # type: ignore[union-attr, arg-type]

    def cold_get_many() -> object:
        signed._engine._codec._known.clear()  # as if every entry were read for the first time
        return signed.get_many(keys)

    times = measure(
        {
            "raw redis-py MGET + pickle.loads x100": raw_mget,
            "cacheplug get_many(100) (signed pickle)": lambda: signed.get_many(keys),
            "cacheplug get_many(100) (MAC checked every time)": cold_get_many,
        },
        rounds,
        max(1, ops // 20),
    )
    report(
        "get_many of 100 keys",
        times,
        "raw redis-py MGET + pickle.loads x100",
        {"cacheplug get_many(100) (signed pickle)": 1.2},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument(
        "--in-process-only", action="store_true", help="only the in-process section, no Redis"
    )
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, redis-py {redis.__version__}, "
        f"hiredis {'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}"
    )
    if args.in_process_only:
        _configure_locmem()
    elif args.redis_url:
        redis_hits(args.redis_url, args.rounds, args.ops)
        many_hits(args.redis_url, args.rounds, args.ops)
        l1_hits(args.redis_url, args.rounds, args.ops * 10)
    else:
        with RedisServer() as server:
            redis_hits(server.url, args.rounds, args.ops)
            many_hits(server.url, args.rounds, args.ops)
            l1_hits(server.url, args.rounds, args.ops * 10)
    memory_hits(args.rounds, args.ops * 10)


def _configure_locmem() -> None:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            CACHES={"locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        )


if __name__ == "__main__":
    main()
