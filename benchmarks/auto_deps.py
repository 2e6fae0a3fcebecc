"""What ``depends_on="auto"`` costs: on a miss, recording what a loader of 10 ORM queries on a
SQLite file reads (goal: at most 5 % of the loader's own time); on a hit, nothing (goal: the
same time as a hit that names its dependencies).

    python benchmarks/auto_deps.py [--rounds 15] [--ops 200]

Django with the test shop's models, on the embedded store and on a throwaway Redis, rounds
interleaved in one process. Per store:

- the loader called bare (no cache): the baseline of the miss rows;
- a miss with ``depends_on=[Product, Category, Review]`` (the same tables, declared) and a
  miss with ``depends_on="auto"`` (each key new): their difference is what the capture costs,
  printed as a share of the loader's time; on Redis it includes a round trip for each tag a
  load discovers;
- a hit with the models declared and a hit with ``"auto"``, printed as a ratio (the auto one
  reads with what its entry was seen to record: one round trip, like the declared one).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_BLOCK = 10  # calls timed together, each kind in turn
sys.path.insert(0, str(HERE.parent / "tests" / "django"))  # the test shop's models


def configure(database: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="auto-deps",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "cacheplug_django",
            "shop",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        CACHEPLUG={"NAMESPACE": "auto-deps", "OUTBOX": False},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


def fill_shop() -> list[int]:
    from shop.models import Category, Product, Review

    tools = Category.objects.create(name="tools")
    ids = []
    for n in range(20):
        product = Product.objects.create(name=f"p{n}", price=n)
        product.categories.add(tools)
        Review.objects.create(product=product, text="fine")
        ids.append(product.pk)
    return ids


def ten_queries(ids: list[int]) -> Callable[[], Any]:
    """A page's loader: ten ORM queries over three tables (by key, lists, a count, joins)."""
    from shop.models import Category, Product, Review

    def load() -> Any:
        first = Product.objects.get(pk=ids[0])
        return (
            first.name,
            Product.objects.get(pk=ids[1]).name,
            [p.name for p in Product.objects.filter(price__lt=5)],
            [r.text for r in first.reviews.all()],
            [c.name for c in first.categories.all()],
            Product.objects.count(),
            [r.product_id for r in Review.objects.select_related("product")[:5]],
            list(Category.objects.values_list("name", flat=True)),
            Product.objects.filter(pk__in=ids[:3]).count(),
            Review.objects.filter(product_id=ids[2]).exists(),
        )

    return load


def measure(rounds: int, ops: int, store: str | None) -> dict[str, list[float]]:
    from django.conf import settings
    from shop.models import Category, Product, Review

    from cacheplug_django import cache

    settings.CACHEPLUG = {"NAMESPACE": f"auto-deps-{store is not None}", "OUTBOX": False}
    if store is not None:
        settings.CACHEPLUG["STORE"] = store
    cache.reset()
    load = ten_queries(fill_shop())
    declared = [Product, Category, Review]
    counter = [0]

    def timed(call: Callable[[], Any], block: int) -> float:
        started = time.perf_counter()
        for _ in range(block):
            call()
        return (time.perf_counter() - started) / block

    def miss(depends_on: Any) -> Callable[[], Any]:
        def call() -> Any:
            counter[0] += 1
            return cache.get_or_load(f"miss:{counter[0]}", load, depends_on=depends_on)

        return call

    for key, depends_on in (("hit-declared", declared), ("hit-auto", "auto")):
        cache.get_or_load(key, load, depends_on=depends_on)
    misses: dict[str, Callable[[], Any]] = {
        "loader": load,
        "miss declared": miss(declared),
        "miss auto": miss("auto"),
    }
    hits: dict[str, Callable[[], Any]] = {
        "hit declared": lambda: cache.get_or_load("hit-declared", load, depends_on=declared),
        "hit auto": lambda: cache.get_or_load("hit-auto", load, depends_on="auto"),
    }
    if store is not None:
        misses["round trip"] = round_trip(store)
    times: dict[str, list[float]] = {name: [] for name in (*misses, *hits)}
    for _ in range(rounds):
        # Short blocks, taken in turn: the machine's speed drifts within a round (shared,
        # noisy), and a difference of a few percent must not be the drift's. Hits apart,
        # in longer blocks: one just after a load runs with the loader's data in the CPU's
        # caches instead of its own.
        for runs, block in ((misses, _BLOCK), (hits, 10 * _BLOCK)):
            spent = dict.fromkeys(runs, 0.0)
            for _ in range(max(1, ops // block)):
                for name, call in runs.items():
                    spent[name] += timed(call, block)
            for name, total in spent.items():
                times[name].append(total / max(1, ops // block))
    cache.reset()
    return times


def round_trip(url: str) -> Callable[[], Any]:
    """One round trip to the store, as a miss's reading of its rows' versions costs (an
    ``MGET`` of three keys with redis-py)."""
    import redis

    client = redis.Redis.from_url(url)
    keys = ["auto-deps:rt:1", "auto-deps:rt:2", "auto-deps:rt:3"]
    return lambda: client.mget(keys)


def report(label: str, times: dict[str, list[float]]) -> None:
    def median(name: str) -> float:
        return statistics.median(times[name])

    def ratio(base: str, other: str) -> float:
        return statistics.median(b / a for a, b in zip(times[base], times[other], strict=True))

    capture = statistics.median(
        (auto - declared) / bare
        for bare, declared, auto in zip(
            times["loader"], times["miss declared"], times["miss auto"], strict=True
        )
    )
    print(label)
    for name in times:
        print(f"  {name:<14} {median(name) * 1e6:9.1f} us")
    print(f"  capture on a miss: {capture:+.1%} of the loader's time (goal <= 5%)")
    if "round trip" in times:
        # The least capture can add on a shared store: the rows' versions are known only
        # once the statements naming them ran, and the entry records them (one round trip).
        bound = statistics.median(
            trip / bare for bare, trip in zip(times["loader"], times["round trip"], strict=True)
        )
        print(f"  bound, one round trip to the store: {bound:+.1%} of the loader's time")
    print(f"  hit auto / hit declared: {ratio('hit declared', 'hit auto'):.2f}x (goal 1.00x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=200)
    args = parser.parse_args()
    from cacheplug.testing import RedisServer

    with tempfile.TemporaryDirectory() as tmp, RedisServer() as redis:
        configure(f"{tmp}/shop.sqlite3")
        report("embedded store (SQLite file)", measure(args.rounds, args.ops, store=None))
        report("Redis (SQLite file)", measure(args.rounds, args.ops, store=redis.url))


if __name__ == "__main__":
    main()
