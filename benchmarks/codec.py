"""The data-only codec and the compressions, as ratios against baselines measured in the same run.

    python benchmarks/codec.py [--redis-url URL] [--rounds N] [--ops N]

Part 1, a Redis hit on one row without a secret (target <= 1.05x raw redis-py ``GET`` +
``pickle.loads``): the candidate decoders after a raw ``GET``, then the cache itself with
each data-only serializer, and two bounds: a raw ``GET`` alone (no decoding at all), and a
raw ``MGET`` of the entry and a version key + ``pickle.loads`` (what one read of the cache's
design costs before any of its own work), and the same through redis-py's
``BlockingConnectionPool``, the kind of pool the cache's store uses so that a full pool makes
callers wait instead of failing.
Part 2, a 32 KB HTML page under each ``compression``: stored size, and time to compress and
to decompress, against ``none``. Without ``--redis-url`` a throwaway redis-server is started.
Contenders are interleaved round by round; each line is the median of per-round ratios.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import os
import pickle
import statistics
import sys
import time
import uuid
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgpack
import orjson
import redis
from _common import SECRET, VALUE
from overhead import measure, report

from cacheplug import Cache, JsonSerializer, MemoryStore, MsgpackSerializer
from cacheplug.testing import RedisServer

TYPED_VALUE = {
    **VALUE,
    "price": decimal.Decimal("249.90"),
    "updated": datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC),
    "sku": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "dimensions": (32.0, 28.5, 41.0),
}
"""The same row with the types JSON cannot hold natively (tagged objects in JSON)."""


def redis_hits(url: str, rounds: int, ops: int) -> None:
    raw = redis.Redis.from_url(url)
    one_value(raw, url, "one row, ~400 bytes", VALUE, rounds, ops)
    one_value(raw, url, "one row with typed fields", TYPED_VALUE, rounds, ops)
    raw.close()


def one_value(raw: redis.Redis, url: str, title: str, value: object, rounds: int, ops: int) -> None:
    json = JsonSerializer()
    packed = MsgpackSerializer()
    raw.set("raw:pickle", pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    raw.set("raw:json", json.dumps(value))
    raw.set("raw:msgpack", packed.dumps(value))
    raw.set("raw:version", b"7")  # stands for the namespace version a hit reads with its entry
    waiting = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(url, timeout=0.5))
    with_json = Cache(url, namespace="codecjson", serializer="json")
    with_msgpack = Cache(url, namespace="codecmsgpack")  # the default without a secret
    signed = Cache(url, namespace="codecsigned", secret=SECRET)
    with_json.set("row", value, ttl=3600)
    with_msgpack.set("row", value, ttl=3600)
    signed.set("row", value, ttl=3600)
    contenders: dict[str, Callable[[], object]] = {
        "raw GET + pickle.loads": lambda: pickle.loads(raw.get("raw:pickle")),  # type: ignore[arg-type]
        "raw GET alone (upper bound)": lambda: raw.get("raw:pickle"),
        # The cache reads an entry and its namespace's version in one MGET (so that a bumped
        # namespace is never served): the bound of that design, with pickle's decoding.
        "raw MGET entry + version, pickle.loads (bound)": lambda: pickle.loads(
            raw.mget(["raw:pickle", "raw:version"])[0]  # type: ignore[index]
        ),
        # The same through a pool that makes callers wait when it is full (redis-py's
        # BlockingConnectionPool, as the cache's store uses: back-pressure, not an outage):
        # what the cache's design costs in all.
        "the same, blocking pool (bound with back-pressure)": lambda: pickle.loads(
            waiting.mget(["raw:pickle", "raw:version"])[0]  # type: ignore[index]
        ),
        "raw GET + JsonSerializer.loads (today's format)": lambda: json.loads(
            raw.get("raw:json")  # type: ignore[arg-type]
        ),
        "raw GET + MsgpackSerializer.loads": lambda: packed.loads(
            raw.get("raw:msgpack")  # type: ignore[arg-type]
        ),
        "cacheplug get, serializer='json'": lambda: with_json.get("row"),
        "cacheplug get, no secret (msgpack)": lambda: with_msgpack.get("row"),
        "cacheplug get, signed pickle (reference)": lambda: signed.get("row"),
    }
    if value is VALUE:
        # Not exact candidates (no tuples, sets, big ints, non-str keys; NaN -> null),
        # shown for their raw speed only.
        raw.set("raw:orjson", orjson.dumps(value))
        raw.set("raw:plain-msgpack", msgpack.packb(value))
        contenders["raw GET + orjson.loads (not exact)"] = lambda: orjson.loads(
            raw.get("raw:orjson")  # type: ignore[arg-type]
        )
        contenders["raw GET + plain msgpack.unpackb (not exact)"] = lambda: msgpack.unpackb(
            raw.get("raw:plain-msgpack")  # type: ignore[arg-type]
        )
    times = measure(contenders, rounds, ops)
    report(
        f"Redis hit without a secret, {title}",
        times,
        "raw GET + pickle.loads",
        {"cacheplug get, no secret (msgpack)": 1.05},
    )
    for cache in (with_json, with_msgpack, signed):
        cache.close()
    waiting.close()


def html_page() -> bytes:
    """A 32 KB product listing, as a template renders it: markup repeated with varied data."""
    rows = [
        f'<tr class="row-{i % 2}"><td><a href="/products/{i}/">Product {i}: espresso '
        f"machine, model {i * 37 % 1000}</a></td><td>{i * 13 % 500}.{i % 100:02d} EUR</td>"
        f'<td><span class="stock">{i * 7 % 40} in stock</span></td></tr>\n'
        for i in range(400)
    ]
    head = "<!doctype html><html><head><title>Catalog</title></head><body><table>\n"
    page = (head + "".join(rows)).encode("utf-8")[: 32 * 1024 - 22] + b"</table></body></html>"
    assert len(page) == 32 * 1024
    return page


def compression(rounds: int, ops: int) -> None:
    """``set`` (serialize + compress) and ``get`` (decompress + deserialize) of the page on the
    in-process store, so that the store's round trip does not drown the compressor's time."""
    page = html_page()
    names = ("none", "zlib", "zstd")
    caches = {name: Cache(MemoryStore(), namespace="codec", compression=name) for name in names}
    contenders: dict[str, Callable[[], object]] = {}
    stored: dict[str, int] = {}
    for name, cache in caches.items():
        cache.set("page", page, ttl=3600)
        record = cache.store.get(cache.store_key("page"))
        assert record is not None
        assert cache.get("page") == page
        stored[name] = len(record)
        contenders[f"{name} set"] = lambda cache=cache: cache.set("page", page, ttl=3600)  # type: ignore[misc]
        contenders[f"{name} get"] = lambda cache=cache: cache.get("page")  # type: ignore[misc]
    times = measure(contenders, rounds, ops)
    print("\nA 32 KB HTML page under each compression (in-process store; ratios to 'none')")
    none_both = [s + g for s, g in zip(times["none set"], times["none get"], strict=True)]
    for name in names:
        both = [s + g for s, g in zip(times[f"{name} set"], times[f"{name} get"], strict=True)]
        ratio = statistics.median(b / n for b, n in zip(both, none_both, strict=True))
        print(
            f"  {name:<5} stored {stored[name]:6d} bytes ({stored[name] / stored['none']:.3f}x)"
            f"   set {statistics.median(times[f'{name} set']) * 1e6:7.1f} us"
            f"   get {statistics.median(times[f'{name} get']) * 1e6:6.1f} us"
            f"   set + get {statistics.median(both) * 1e6:7.1f} us ({ratio:.2f}x)"
        )
    for cache in caches.values():
        cache.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--ops", type=int, default=500)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.redis_url:
        redis_hits(args.redis_url, args.rounds, args.ops)
    else:
        with RedisServer() as server:
            redis_hits(server.url, args.rounds, args.ops)
    compression(args.rounds, max(1, args.ops // 10))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
