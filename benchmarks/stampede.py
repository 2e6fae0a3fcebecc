"""Stampede on one hot key: loader calls and latency around expiry, cacheplug against peers.

    python benchmarks/stampede.py [--redis-url URL] [--quick] [--duration S] [--ttl S]
        [--processes N] [--threads N] [--loader-ms MS] [--contender NAME ...]
        [--show-loads] [--plot PATH.png]

Workers (``--processes`` spawned processes x ``--threads`` threads each, default 4 x 16) call
ONE key in a tight loop for ``--duration`` seconds (default 10; ``--quick``: 3). The loader
sleeps ``--loader-ms`` (default 50 ms) and its value is cached for ``--ttl`` seconds (default
1). Without ``--redis-url`` a throwaway redis-server is started on a free loopback port; the
database is flushed before each contender (so do not point ``--redis-url`` at data you need).

Contenders, one after the other:

1. cacheplug ``get_or_load`` with defaults (leases + single-flight), signed entries;
2. the same with ``stale_ttl=5`` (serve stale while one caller refreshes);
3. the same with ``early=XFetch(beta=1.0)`` (probabilistic early refresh);
4. Django's ``cache.get_or_set(key, loader, timeout=ttl)`` over django-redis;
5. plain cache-aside with redis-py: ``GET``; on a miss load, pickle, ``SET ... PX ttl``.

Loader calls are counted with ``INCR`` on a Redis key of their own (and timestamped in the
worker, for the per-second series). Every request is recorded as (start time, latency). An
"expiry window" is the 200 ms after a stored value's nominal expiry (loader end + ttl); the
expiry figures are the requests in flight at some moment of a window, the "hit" figures those
outside every window and after the first load (the cold start is left out of both).

Targets (issue): cacheplug calls the loader at most ``ceil(duration / ttl) + 1`` times; with
``stale_ttl`` or XFetch the p99 right after an expiry stays within 2x the p99 of hits.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import threading
import time
import traceback
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import multiprocessing as mp

import redis
from _common import SECRET, VALUE

KEY = "hot:product:42"
COUNTER_KEY = "stampede:loader-calls"
EXPIRY_WINDOW = 0.2  # seconds after each nominal expiry that count as "right after expiry"

# name -> description; the order is the order of the runs.
CONTENDERS: dict[str, str] = {
    "cacheplug": "cacheplug get_or_load, defaults (leases + single-flight), signed",
    "cacheplug-stale": "cacheplug get_or_load, stale_ttl=5 (serve stale while one refreshes)",
    "cacheplug-xfetch": "cacheplug get_or_load, early=XFetch(beta=1.0)",
    "django-redis": "Django cache.get_or_set(key, loader, timeout=ttl) over django-redis",
    "redis-py": "plain cache-aside with redis-py: GET; on miss load, pickle, SET PX ttl",
}
CACHEPLUG = ("cacheplug", "cacheplug-stale", "cacheplug-xfetch")
SMOOTH = ("cacheplug-stale", "cacheplug-xfetch")  # contenders held to the 2x expiry target


@dataclass(frozen=True)
class Run:
    """What one worker process needs to know (pickled into spawned processes)."""

    contender: str
    url: str
    threads: int
    duration: float
    ttl: float
    loader_s: float


@dataclass
class Outcome:
    """Everything the worker processes of one contender reported, merged."""

    times: array[float]  # request start, seconds after the common start
    latencies: array[float]  # seconds
    loads: list[tuple[float, float]]  # (start, end) of each loader call, after the start
    counter: int  # loader calls according to the Redis counter
    errors: int
    error_samples: list[str]
    stats: dict[str, int]
    hung_threads: int
    lost_processes: int
    wall: float  # seconds from the common start until the last worker reported


# -- worker side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Calls:
    """A contender as seen by a worker process."""

    fetch: Callable[[], Any]  # one request for the hot key
    warm: Callable[[], Any]  # touch the store once per thread (connections) before the start
    stats: Callable[[], dict[str, Any]] = dict
    reset: Callable[[], None] = lambda: None
    close: Callable[[], None] = lambda: None


def _contender_calls(run: Run, loader: Callable[[], Any]) -> Calls:
    if run.contender in CACHEPLUG:
        from cacheplug import Cache, XFetch

        options: dict[str, Any] = {}
        if run.contender == "cacheplug-stale":
            options["stale_ttl"] = 5.0
        elif run.contender == "cacheplug-xfetch":
            options["early"] = XFetch(beta=1.0)
        cache = Cache(run.url, namespace="stampede", secret=SECRET, **options)
        ttl = run.ttl
        # Subscribe to fill announcements now, as a long-running application would have.
        cache.store.fills.start()
        return Calls(
            fetch=lambda: cache.get_or_load(KEY, loader, ttl),
            warm=lambda: cache.get("warm-up"),
            stats=lambda: cache.stats().as_dict(),
            reset=cache.reset_stats,
            close=cache.close,
        )
    if run.contender == "django-redis":
        from django.conf import settings

        if not settings.configured:
            settings.configure(
                CACHES={
                    "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": run.url}
                }
            )
        from django.core.cache import cache as django_cache

        ttl = run.ttl
        return Calls(
            fetch=lambda: django_cache.get_or_set(KEY, loader, timeout=ttl),
            warm=lambda: django_cache.get("warm-up"),
        )
    if run.contender == "redis-py":
        client = redis.Redis.from_url(run.url)
        ttl_ms = max(1, round(run.ttl * 1000))
        raw_key = "plain:" + KEY

        def cache_aside() -> Any:
            raw = client.get(raw_key)
            if raw is not None:
                return pickle.loads(raw)  # type: ignore[arg-type]
            value = loader()
            client.set(raw_key, pickle.dumps(value, pickle.HIGHEST_PROTOCOL), px=ttl_ms)
            return value

        return Calls(fetch=cache_aside, warm=lambda: client.get("warm-up"), close=client.close)
    raise ValueError(f"unknown contender {run.contender!r}")


def worker(run: Run, ready: Any, go: Any, start_at: Any, results: Any) -> None:
    """One process: ``run.threads`` threads hammer the key from the common start time."""
    try:
        _worker(run, ready, go, start_at, results)
    except BaseException:
        results.put({"fatal": traceback.format_exc()})
        raise


def _worker(run: Run, ready: Any, go: Any, start_at: Any, results: Any) -> None:
    counter = redis.Redis.from_url(run.url)
    loads: list[tuple[float, float]] = []  # absolute wall-clock (start, end)
    loader_s = run.loader_s

    def loader() -> dict[str, Any]:
        started = time.time()
        counter.incr(COUNTER_KEY)
        time.sleep(loader_s)
        loads.append((started, time.time()))
        return VALUE

    calls = _contender_calls(run, loader)
    fetch = calls.fetch
    counter.ping()
    per_thread: list[tuple[array[float], array[float]]] = []
    errors: list[str] = []
    begin_box: list[float] = []
    warmed = threading.Barrier(run.threads + 1)
    started_together = threading.Barrier(run.threads + 1)

    def hammer() -> None:
        calls.warm()
        warmed.wait()
        started_together.wait()
        begin = begin_box[0]
        end = begin + run.duration
        times: array[float] = array("d")
        latencies: array[float] = array("d")
        per_thread.append((times, latencies))
        delay = begin - time.time()
        if delay > 0:
            time.sleep(delay)
        clock, perf = time.time, time.perf_counter
        while True:
            started = clock()
            if started >= end:
                break
            p0 = perf()
            try:
                fetch()
            except Exception as exc:
                if len(errors) < 1000:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(perf() - p0)
            times.append(started - begin)

    threads = [
        threading.Thread(target=hammer, name=f"hammer-{i}", daemon=True) for i in range(run.threads)
    ]
    for thread in threads:
        thread.start()
    warmed.wait()
    calls.reset()  # the warm-up's misses are not part of the run
    ready.put(os.getpid())
    go.wait()
    begin_box.append(start_at.value)
    started_together.wait()
    deadline = start_at.value + run.duration + 30.0
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.time()))
    hung = sum(thread.is_alive() for thread in threads)
    if not hung:
        calls.close()  # lets background refreshes finish, so they are in the stats
    snapshot = calls.stats()
    times: array[float] = array("d")
    latencies: array[float] = array("d")
    for t, lat in list(per_thread):
        times.extend(t)
        latencies.extend(lat)
    base = start_at.value
    results.put(
        {
            "times": times.tobytes(),
            "latencies": latencies.tobytes(),
            "loads": [(s - base, e - base) for s, e in loads],
            "errors": len(errors),
            "error_samples": sorted(set(errors))[:5],
            "stats": snapshot,
            "hung": hung,
        }
    )
    if hung:
        results.close()
        results.join_thread()  # the report must leave before the hard exit
        os._exit(0)  # hung threads would keep the process alive at exit otherwise


# -- driver side ---------------------------------------------------------------------------


def run_contender(
    name: str, url: str, processes: int, threads: int, duration: float, ttl: float, loader_s: float
) -> Outcome:
    admin = redis.Redis.from_url(url)
    admin.flushdb()
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    start_at = ctx.Value("d", 0.0)
    run = Run(name, url, threads, duration, ttl, loader_s)
    procs = [
        ctx.Process(target=worker, args=(run, ready, go, start_at, results), daemon=True)
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    fatal: list[str] = []
    try:
        for _ in procs:
            ready.get(timeout=120)
    except Exception:
        # a worker died during setup: its traceback is on the results queue
        while not results.empty():
            fatal.append(results.get().get("fatal", "?"))
        for proc in procs:
            proc.terminate()
        raise RuntimeError(f"{name}: a worker failed to start\n" + "\n".join(fatal)) from None
    start_at.value = time.time() + 0.5
    go.set()
    reports: list[dict[str, Any]] = []
    lost = 0
    for _ in procs:
        try:
            report = results.get(timeout=duration + 60)
        except Exception:
            lost += 1
            continue
        if "fatal" in report:
            fatal.append(report["fatal"])
            lost += 1
        else:
            reports.append(report)
    wall = time.time() - start_at.value
    for proc in procs:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
            proc.join()
    if fatal:
        print(f"  worker failure in {name}:\n" + "\n".join(fatal), file=sys.stderr)
    times: array[float] = array("d")
    latencies: array[float] = array("d")
    loads: list[tuple[float, float]] = []
    stats: dict[str, int] = {}
    samples: set[str] = set()
    for report in reports:
        times.frombytes(report["times"])
        latencies.frombytes(report["latencies"])
        loads.extend(report["loads"])
        samples.update(report["error_samples"])
        for key, value in report["stats"].items():
            if key != "hit_ratio":
                stats[key] = stats.get(key, 0) + value
    counter = int(admin.get(COUNTER_KEY) or 0)
    admin.close()
    return Outcome(
        times=times,
        latencies=latencies,
        loads=sorted(loads),
        counter=counter,
        errors=sum(r["errors"] for r in reports),
        error_samples=sorted(samples)[:5],
        stats=stats,
        hung_threads=sum(r["hung"] for r in reports),
        lost_processes=lost,
        wall=wall,
    )


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def per_second(loads: list[tuple[float, float]], duration: float) -> list[int]:
    """Loader calls started in each second of the run."""
    buckets = [0] * max(1, math.ceil(duration))
    for started, _ in loads:
        buckets[min(len(buckets) - 1, max(0, int(started)))] += 1
    return buckets


@dataclass
class Summary:
    requests: int
    p50: float
    p99: float
    max: float
    expiry_p99: float
    expiry_max: float
    expiry_n: int
    windows: int
    hit_p99: float
    hit_n: int
    cold_n: int
    buckets: list[int]

    @property
    def ratio(self) -> float:
        if self.hit_p99 > 0 and not math.isnan(self.expiry_p99):
            return self.expiry_p99 / self.hit_p99
        return math.nan


def summarize(outcome: Outcome, duration: float, ttl: float) -> Summary:
    ends = sorted(end for _, end in outcome.loads)
    first_end = ends[0] if ends else math.inf
    # Each stored value's nominal expiry (those inside the run), merged into a sorted list.
    windows = sorted({round(end + ttl, 6) for end in ends if end + ttl < duration})
    expiry: list[float] = []
    hits: list[float] = []
    cold = 0
    for started, latency in zip(outcome.times, outcome.latencies, strict=True):
        if started < first_end:
            cold += 1
            continue
        # In a window if in flight at any moment of it: a request that began just before the
        # expiry (its GET delayed by the GIL) may well be one that waited for the reload.
        i = bisect_right(windows, started + latency)
        if i and started < windows[i - 1] + EXPIRY_WINDOW:
            expiry.append(latency)
        else:
            hits.append(latency)
    expiry.sort()
    hits.sort()
    everything = sorted(outcome.latencies)
    # Windows that overlap (several loads within 200 ms) count as one expiry.
    distinct = sum(1 for i, w in enumerate(windows) if i == 0 or w >= windows[i - 1] + 0.2)
    return Summary(
        requests=len(everything),
        p50=percentile(everything, 0.50),
        p99=percentile(everything, 0.99),
        max=everything[-1] if everything else math.nan,
        expiry_p99=percentile(expiry, 0.99),
        expiry_max=expiry[-1] if expiry else math.nan,
        expiry_n=len(expiry),
        windows=distinct,
        hit_p99=percentile(hits, 0.99),
        hit_n=len(hits),
        cold_n=cold,
        buckets=per_second(outcome.loads, duration),
    )


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.2f} ms"


def report(
    name: str, outcome: Outcome, summary: Summary, duration: float, show_loads: bool
) -> None:
    print(f"\n{name}: {CONTENDERS[name]}")
    calls = len(outcome.loads)
    agree = "" if calls == outcome.counter else f"  (MISMATCH: {calls} timestamped in workers)"
    print(f"  loader calls     {outcome.counter:>9}{agree}")
    print(f"  per second       {summary.buckets}")
    rate = summary.requests / duration
    print(f"  requests served  {summary.requests:>9,}  ({rate:,.0f}/s), errors {outcome.errors}")
    print(
        f"  latency          p50 {ms(summary.p50)}   p99 {ms(summary.p99)}   max {ms(summary.max)}"
    )
    print(
        f"  expiry p99       {ms(summary.expiry_p99)}, max {ms(summary.expiry_max)}  "
        f"({summary.expiry_n:,} requests in {summary.windows} windows of "
        f"{EXPIRY_WINDOW * 1000:.0f} ms after expiry)"
    )
    print(
        f"  hit p99          {ms(summary.hit_p99)}  ({summary.hit_n:,} requests; "
        f"{summary.cold_n:,} cold-start requests left out)"
    )
    print(f"  expiry p99 / hit p99  {summary.ratio:.2f}x")
    if outcome.stats:
        shown = ("hits", "misses", "stale_hits", "loads", "coalesced", "refreshes", "errors")
        print("  cacheplug stats  " + ", ".join(f"{k}={outcome.stats.get(k, 0)}" for k in shown))
    if show_loads:
        spans = ", ".join(f"{s:.3f}-{e:.3f}" for s, e in outcome.loads)
        print(f"  loader calls at  {spans} (s after the start)")
    for sample in outcome.error_samples:
        print(f"  error sample     {sample}")
    if outcome.hung_threads or outcome.lost_processes:
        print(
            f"  PROBLEM          {outcome.hung_threads} threads still running 30 s after the "
            f"end, {outcome.lost_processes} worker processes lost"
        )


def bar_chart(series: dict[str, list[int]], width: int = 50) -> None:
    print("\nLoader calls per second (one # per call, or scaled to the largest count)")
    peak = max((max(counts) for counts in series.values() if counts), default=0)
    scale = 1.0 if peak <= width else width / peak
    for name, counts in series.items():
        print(f"  {name}")
        for second, count in enumerate(counts):
            bar = "#" * math.ceil(count * scale)
            print(f"    {second:>3}-{second + 1:<3}s |{bar} {count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis (FLUSHED between contenders)")
    parser.add_argument("--quick", action="store_true", help="a ~3 s run per contender")
    parser.add_argument("--duration", type=float, help="seconds per contender (default 10)")
    parser.add_argument("--ttl", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=16, help="per process")
    parser.add_argument("--loader-ms", type=float, default=50.0, help="loader sleep (ms)")
    parser.add_argument(
        "--contender", action="append", choices=list(CONTENDERS), help="run only these"
    )
    parser.add_argument("--show-loads", action="store_true", help="print when each loader call ran")
    parser.add_argument("--plot", metavar="PATH.png", help="draw loader calls per second")
    args = parser.parse_args()
    duration = args.duration or (3.0 if args.quick else 10.0)
    loader_s = args.loader_ms / 1000.0
    names = args.contender or list(CONTENDERS)
    print(
        f"python {sys.version.split()[0]}, redis-py {redis.__version__}, "
        f"hiredis {'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}, {os.cpu_count()} CPUs"
    )
    print(
        f"{args.processes} processes x {args.threads} threads on one key, {duration:g} s per "
        f"contender, ttl {args.ttl:g} s, loader {args.loader_ms:g} ms"
    )
    if args.redis_url:
        results = run_all(names, args.redis_url, args, duration, loader_s)
    else:
        from cacheplug.testing import RedisServer

        with RedisServer() as server:
            results = run_all(names, server.url, args, duration, loader_s)

    bar_chart({name: summary.buckets for name, (_, summary) in results.items()})

    bound = math.ceil(duration / args.ttl) + 1
    print("\nChecks")
    for name, (outcome, summary) in results.items():
        if name not in CACHEPLUG:
            continue
        verdict = "OK" if outcome.counter <= bound else "MISSED"
        print(
            f"  {name:<17} loader calls <= ceil(run/ttl)+1: {verdict} "
            f"({outcome.counter} calls, limit {bound})"
        )
        if name in SMOOTH:
            verdict = "OK" if summary.ratio <= 2.0 else "MISSED"
            print(
                f"  {name:<17} expiry p99 within 2x hit p99: {verdict} "
                f"({ms(summary.expiry_p99)} vs {ms(summary.hit_p99)}, {summary.ratio:.2f}x)"
            )

    if args.plot:
        from _plot import plot_loader_calls

        plot_loader_calls(
            {name: summary.buckets for name, (_, summary) in results.items()},
            args.plot,
            title=(
                f"Loader calls per second: {args.processes}x{args.threads} workers, one key, "
                f"ttl {args.ttl:g} s, loader {args.loader_ms:g} ms"
            ),
        )


def run_all(
    names: list[str], url: str, args: argparse.Namespace, duration: float, loader_s: float
) -> dict[str, tuple[Outcome, Summary]]:
    results: dict[str, tuple[Outcome, Summary]] = {}
    for name in names:
        outcome = run_contender(
            name, url, args.processes, args.threads, duration, args.ttl, loader_s
        )
        summary = summarize(outcome, duration, args.ttl)
        report(name, outcome, summary, duration, args.show_loads)
        results[name] = (outcome, summary)
    return results


if __name__ == "__main__":
    main()
