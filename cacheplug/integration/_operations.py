"""What the adapters' command lines do (``manage.py cacheplug_*``, ``flask cacheplug ...``):
warm, flush, stats, inspect. The framework commands only parse their arguments and call
these, so both behave and print alike.

Every function reports bad input or a failure by raising :class:`OperationError` with the
message to show; the command turns it into a non-zero exit. When an operation refuses its
input, nothing has been changed.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral
from typing import TYPE_CHECKING, Any, TypeVar

from cacheplug.exceptions import CacheError
from cacheplug.integration._cdc_stats import feed_report

if TYPE_CHECKING:
    from cacheplug.cache import Cache
    from cacheplug.integration._cdc import PostgresChangeFeed
    from cacheplug.integration._debezium import DebeziumStreamFeed

Warmer = Callable[[], Any]
Write = Callable[[str], None]
V = TypeVar("V")


class OperationError(Exception):
    """An operation refused its input or failed; ``str()`` is the message for the user."""


class Warmers:
    """A registry of cache warmers: functions that fill the cache ahead of traffic.

    A warmer returns an iterable (one item per key it warmed, consumed as it runs, which
    drives the progress display), a number of keys, or ``None``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registry: dict[str, Warmer] = {}

    def register(self, name: str) -> Callable[[Warmer], Warmer]:
        """Decorator: register a warmer under ``name`` (unique)."""
        if not isinstance(name, str) or not name:
            raise TypeError("a warmer needs a name: @warmer('bestsellers')")

        def register(fn: Warmer) -> Warmer:
            with self._lock:
                existing = self._registry.get(name)
                if existing is not None and _label(existing) != _label(fn):
                    raise ValueError(
                        f"two warmers named {name!r}: {_label(existing)} and {_label(fn)}"
                    )
                self._registry[name] = fn
            return fn

        return register

    def all(self) -> dict[str, Warmer]:
        """Every registered warmer, by name."""
        with self._lock:
            return dict(sorted(self._registry.items()))


def _label(fn: Warmer) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _named(
    found: Mapping[str, V], only: Sequence[str] | None, what: str, none: str
) -> dict[str, V]:
    """The entries of ``found`` named in ``only`` (all of them without ``only``); raises
    :class:`OperationError` naming the unknown names ``what`` and the known ones (``none``
    when there are none) before anything runs."""
    selected = dict(found)
    if only:
        unknown = sorted(set(only) - set(selected))
        if unknown:
            known = ", ".join(selected) or none
            raise OperationError(f"unknown {what}: {', '.join(unknown)} (known: {known})")
        selected = {name: value for name, value in selected.items() if name in only}
    return selected


def warm(
    warmers: Mapping[str, Warmer],
    *,
    only: Sequence[str] | None = None,
    workers: int = 1,
    dry_run: bool = False,
    out: Write,
    err: Write,
    progress: Callable[[str], None] | None = None,
    each_done: Callable[[], None] | None = None,
) -> None:
    """Run ``warmers`` (those named in ``only``), ``workers`` at a time; ``out`` gets a line
    per warmer and a summary, ``err`` each failure, ``progress`` (a terminal) running
    counts. ``each_done`` runs in the worker thread after each warmer (to close its database
    connections, say). Raises :class:`OperationError` for unknown names or failed warmers."""
    selected = _named(warmers, only, "warmer(s)", "none registered")
    if workers < 1:
        raise OperationError("--workers must be at least 1")
    if dry_run:
        for name in selected:
            out(f"would run {name}")
        out(f"{len(selected)} warmer(s); nothing was run")
        return
    started = time.monotonic()

    def run(item: tuple[str, Warmer]) -> tuple[int, bool]:
        name, fn = item
        count = 0
        try:
            result = fn()
            if isinstance(result, Integral):
                count = int(result)
            elif isinstance(result, Iterable) and not isinstance(result, str | bytes):
                for _ in result:
                    count += 1
                    if progress is not None and count % 10 == 0:
                        progress(f"{name}: {count} keys")
            out(f"{name}: {count} key(s)")
            return count, False
        except Exception:
            err(f"{name} failed after {count} key(s):\n{traceback.format_exc()}")
            return count, True
        finally:
            if each_done is not None:
                each_done()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run, selected.items()))
    keys = sum(count for count, _ in results)
    failed = [name for (_, failure), name in zip(results, selected, strict=True) if failure]
    out(
        f"warmed {keys} key(s) with {len(selected)} warmer(s) in "
        f"{time.monotonic() - started:.1f} s, {len(failed)} failed"
    )
    if failed:
        raise OperationError(f"warmer(s) failed: {', '.join(failed)}")


def flush(
    cache: Cache,
    *,
    tags: Sequence[str] = (),
    described_as: str | None = None,
    keys: Sequence[str] = (),
    namespace: str | None = None,
    everything: bool = False,
    confirm: Callable[[str], bool] | None = None,
) -> str:
    """Invalidate by ``tags``, remove ``keys``, bump a nested ``namespace``, or bump the
    cache's own namespace (``everything``, after ``confirm(question)`` says yes; ``None``
    means the caller already has the user's yes). Only ever this cache's own entries, never
    the rest of the store. Returns what was done, for the user."""
    if everything:
        question = f"Flush every entry of cache namespace {cache.namespace_name!r}?"
        if confirm is not None and not confirm(question):
            raise OperationError("nothing was flushed")
        cache.bump()
        done = (
            f"flushed every entry of namespace {cache.namespace_name!r} "
            "(other data on the store untouched)"
        )
    elif tags:
        cache.invalidate_tags(*tags)
        done = f"invalidated {described_as or 'tag(s): ' + ', '.join(tags)}"
    elif keys:
        lines = []
        for key in keys:
            lines.append(f"removed {key!r}" if cache.delete(key) else f"no entry under {key!r}")
        done = "\n".join(lines)
    elif namespace is not None:
        try:
            nested = cache.namespace(namespace)
        except CacheError as exc:
            raise OperationError(f"{exc}; nothing was flushed") from exc
        nested.bump()
        done = f"flushed namespace {nested.namespace_name!r}"
    else:
        raise OperationError("say what to flush: a tag, model, key, namespace, or everything")
    pending = cache.pending_invalidations()
    if pending:
        cache.close(flush_timeout=5.0)
        if cache.pending_invalidations():
            raise OperationError(
                f"the store could not be reached: {len(pending)} invalidation(s) not applied"
            )
    return done


def stats_report(
    cache: Cache,
    *,
    as_json: bool = False,
    change_feed: PostgresChangeFeed | DebeziumStreamFeed | None = None,
) -> str:
    """The counters every process published (see ``Cache.publish_stats``), hot keys and the
    store, as text or JSON; with ``change_feed`` (CDC is configured), its slot's lag too, and
    a warning past the feed's ``warn_lag_bytes`` (Debezium's: its streams' pending and
    undelivered entries)."""
    try:
        totals, hot = cache.shared_stats()
    except CacheError as exc:
        raise OperationError(f"the store could not be reached: {exc}") from exc
    store = {
        "store": repr(cache.store),
        "namespace": cache.namespace_name,
        "shared": cache.store.shared,
        "circuit_breaker_open": cache.breaker.tripped,
    }
    queues: dict[str, dict[str, int]] = {}
    for name, queue in cache.write_behind_queues().items():
        try:
            queues[name] = {"queued": queue.length(), "dead_letters": queue.dead_count()}
        except CacheError as exc:
            raise OperationError(f"the store could not be reached: {exc}") from exc
    cdc = None if change_feed is None else feed_report(change_feed)
    if as_json:
        return json.dumps(
            {
                **store,
                "stats": totals.as_dict(),
                "hot_keys": hot,
                "write_behind": queues,
                **({} if cdc is None else {"cdc": cdc}),
            },
            indent=2,
        )
    lines = [
        f"store       {store['store']}  (namespace {store['namespace']!r})",
        f"hit ratio   {totals.hit_ratio:.1%}  ({totals.hits} hits, {totals.misses} misses, "
        f"{totals.stale_hits} stale)",
        f"loads       {totals.loads}  (stampedes averted: {totals.coalesced})",
        f"L1 hits     {totals.l1_hits}   replica hits {totals.replica_hits}",
        f"errors      {totals.errors}   discarded {totals.discarded}   oversize {totals.oversize}",
        f"invalidated {totals.invalidations}  (queued while the store was down: "
        f"{totals.queued_invalidations})",
    ]
    if not cache.store.shared:
        lines.append("(the in-process store: only this command's own process is counted)")
    lines.append("hot keys" + ("" if hot else "   none published yet"))
    lines += [f"  {qps:10.1f}/s  {key}" for key, qps in hot]
    if queues:
        lines.append("write-behind")
        lines += [
            f"  {name}: {counts['queued']} queued, {counts['dead_letters']} dead letter(s)"
            for name, counts in queues.items()
        ]
    if cdc is not None:
        lines.append(f"cdc {'stream' if 'streams' in cdc else 'slot  '}  {cdc['text']}")
        if cdc["warning"]:
            lines.append(f"WARNING     {cdc['warning']}")
    return "\n".join(lines)


def inspect_report(cache: Cache, key: str, *, as_json: bool = False) -> str:
    """What is stored under ``key``, as text or JSON; :class:`OperationError` if nothing."""
    try:
        info = cache.inspect(key)
    except CacheError as exc:
        raise OperationError(f"the store could not be reached: {exc}") from exc
    if info is None:
        raise OperationError(f"no entry under {key!r}")
    if as_json:
        return json.dumps(info.as_dict(), indent=2)

    def seconds(value: float | None) -> str:
        return "never" if value is None else f"{value:.1f} s"

    lines = [
        f"key        {info.key}",
        f"stored as  {info.store_key}",
        f"state      {info.state}",
        f"size       {info.size} bytes",
    ]
    if info.state != "discarded" and info.created_at is not None:
        written = datetime.datetime.fromtimestamp(info.created_at, datetime.UTC).isoformat()
        lines += [
            f"type       {info.value_type}",
            f"written    {written}  (age {seconds(info.age)})",
            f"fresh for  {seconds(info.fresh_for)}",
            f"ttl left   {seconds(info.ttl_left)}",
            f"tags       {', '.join(info.tags) or '-'}",
        ]
    return "\n".join(lines)


def drain_queues(
    queues: Mapping[str, Any],
    *,
    only: Sequence[str] | None = None,
    once: bool = False,
    stop: threading.Event | None = None,
    out: Write,
) -> int:
    """Run write-behind workers: drain ``queues`` (those named in ``only``) until they are
    empty (``once``) or until ``stop`` is set; how many entries were handled."""
    selected = _named(queues, only, "queue(s)", "none made")
    if not selected:
        raise OperationError("no write-behind queue to drain")
    stop = stop or threading.Event()
    handled = 0
    consumer = f"worker-{threading.get_native_id()}-{time.monotonic_ns()}"
    while not stop.is_set():
        batch = 0
        for name, queue in selected.items():
            try:
                if not once and not queue.due():
                    continue  # let a batch build up for flush_every
                batch += queue.drain(consumer, block=0.0 if once else 0.2)
            except CacheError as exc:
                out(f"{name}: {exc}; retrying")
                stop.wait(1.0)
            except Exception as exc:  # the sink failed: its batch comes back later
                out(f"{name}: the sink failed ({type(exc).__name__}: {exc}); retrying")
                stop.wait(1.0)
        handled += batch
        if not batch:
            if once and not any(queue.length() for queue in selected.values()):
                break
            stop.wait(0.05)  # entries a dead worker holds come back after claim_idle
    out(f"drained {handled} write(s) from {len(selected)} queue(s)")
    return handled
