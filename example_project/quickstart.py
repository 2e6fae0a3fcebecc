"""cacheplug in one screen, on the embedded in-process store (nothing else to install).

    python example_project/quickstart.py            # or: bash scripts/demo.sh
    python example_project/quickstart.py --redis redis://127.0.0.1:6379/0

A pretend database answers slowly; the cache answers it once and then from memory. Pass
``--redis URL`` to run the same steps against a Redis server (entries are then signed).
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass

from cacheplug import Cache


@dataclass
class Product:
    pk: int
    name: str
    price: str


class SlowDatabase:
    """Stands in for the database: every query takes a while and is counted."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.queries = 0
        self.rows = {
            42: Product(42, "Espresso machine", "249.90"),
            7: Product(7, "Grinder", "89.00"),
        }

    def product(self, pk: int) -> Product | None:
        self.queries += 1
        time.sleep(self.delay)
        return self.rows.get(pk)


def timed(label: str, call: object) -> None:
    started = time.perf_counter()
    result = call() if callable(call) else call
    print(f"  {label:<44} {result!r:<58} {(time.perf_counter() - started) * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description="cacheplug quickstart")
    parser.add_argument(
        "--redis", metavar="URL", help="use this Redis instead of the embedded store"
    )
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per database query")
    args = parser.parse_args()

    db = SlowDatabase(args.delay)
    if args.redis:
        cache = Cache(args.redis, namespace="quickstart", secret="quickstart-demo-secret")
    else:
        cache = Cache(namespace="quickstart")  # the embedded default: MemoryStore
    print(f"cacheplug quickstart on {type(cache.store).__name__}, database delay {args.delay}s\n")

    @cache.cached(ttl=60, key="product:{pk}")
    def load_product(pk: int) -> Product | None:
        return db.product(pk)

    print("1. A cached function: the first call queries, the next ones do not")
    timed("load_product(42)   (miss: queries the db)", lambda: load_product(42))
    timed("load_product(42)   (hit)", lambda: load_product(42))
    timed("load_product(pk=42) (same key, hit)", lambda: load_product(pk=42))

    print("\n2. 'Not found' is a value too: a cached None is a hit")
    timed("load_product(999)  (miss)", lambda: load_product(999))
    timed("load_product(999)  (hit, still None)", lambda: load_product(999))

    print("\n3. After a write, invalidate and the next read loads the new row")
    db.rows[42] = Product(42, "Espresso machine", "199.90")
    load_product.invalidate(pk=42)
    timed("load_product(42)   (after invalidate)", lambda: load_product(42))

    print("\n4. The plain API")

    def greeting() -> str:
        return "hello"

    timed("cache.get_or_load('hi', greeting)", lambda: cache.get_or_load("hi", greeting))
    cache.set_many({"a": 1, "b": 2})
    timed("cache.get_many(['a', 'b', 'c'])", lambda: cache.get_many(["a", "b", "c"]))
    cache.incr("visits")
    timed("cache.incr('visits') (the second time)", lambda: cache.incr("visits"))

    print("\n5. A stampede: 50 threads ask for the same cold key at the same moment")
    before = db.queries
    start_line = threading.Barrier(50)

    def request() -> None:
        start_line.wait()
        load_product(7)

    threads = [threading.Thread(target=request) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"  database queries for 50 concurrent requests: {db.queries - before}")

    print("\n6. Tags: one call invalidates every entry that depends on a row")
    before = db.queries

    def catalog_page() -> list[str]:
        return [row.name for row in (db.product(42), db.product(7)) if row is not None]

    timed(
        "catalog page (miss: 2 queries)",
        lambda: cache.get_or_load("page:catalog", catalog_page, tags=["product:42", "product:7"]),
    )
    timed(
        "catalog page (hit)",
        lambda: cache.get_or_load("page:catalog", catalog_page, tags=["product:42", "product:7"]),
    )
    db.rows[7] = Product(7, "Burr grinder", "99.00")
    cache.invalidate_tags("product:7")  # after the write commits
    timed(
        "catalog page (after invalidate_tags)",
        lambda: cache.get_or_load("page:catalog", catalog_page, tags=["product:42", "product:7"]),
    )
    print(f"  database queries for the catalog page: {db.queries - before}")

    print("\n7. Namespaces: bump one to orphan all of its keys at once")
    reports = cache.namespace("reports")
    reports.set("daily", "old report")
    reports.bump()
    timed("reports.get('daily') after reports.bump()", lambda: reports.get("daily", "gone"))

    stats = cache.stats()
    print(
        f"\nDatabase queries: {db.queries}   cache hits: {stats.hits}   "
        f"callers served by another's load: {stats.coalesced}"
    )
    cache.close()


if __name__ == "__main__":
    main()
