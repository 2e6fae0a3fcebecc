"""What the adapters' command lines do (``manage.py cacheplug_*``, ``flask cacheplug ...``):
flush, stats, inspect, write-behind workers (warm: ``_warming``, ``--watch``: ``_watch``).
The framework commands only parse their arguments and call these, so both behave and print
alike.

Every function reports bad input or a failure by raising :class:`OperationError` with the
message to show; the command turns it into a non-zero exit. When an operation refuses its
input, nothing has been changed.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from cacheplug.exceptions import CacheError
from cacheplug.integration._cdc_stats import feed_report

if TYPE_CHECKING:
    from cacheplug.cache import Cache
    from cacheplug.integration._cdc import PostgresChangeFeed
    from cacheplug.integration._debezium import DebeziumStreamFeed

Write = Callable[[str], None]
V = TypeVar("V")


class OperationError(Exception):
    """An operation refused its input or failed; ``str()`` is the message for the user."""


def named(found: Mapping[str, V], only: Sequence[str] | None, what: str, none: str) -> dict[str, V]:
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


def flush(
    cache: Cache,
    *,
    tags: Sequence[str] = (),
    described_as: str | None = None,
    keys: Sequence[str] = (),
    namespace: str | None = None,
    everything: bool = False,
    confirm: Callable[[str], bool] | None = None,
    as_json: bool = False,
    verbose: bool = False,
) -> str:
    """Invalidate by ``tags``, remove ``keys``, bump a nested ``namespace``, or bump the
    cache's own namespace (``everything``, after ``confirm(question)`` says yes; ``None``
    means the caller already has the user's yes). Only ever this cache's own entries, never
    the rest of the store. Returns what was done, for the user: text (``verbose``: with the
    tags a description such as a model stood for), or one JSON document (``as_json``:
    ``flushed`` is ``tags``, ``keys``, ``namespace`` or ``all``, with ``namespace`` and
    ``message`` always, and ``tags`` or ``removed``/``missing`` as they apply)."""
    document: dict[str, Any] = {"namespace": cache.namespace_name}
    if everything:
        question = f"Flush every entry of cache namespace {cache.namespace_name!r}?"
        if confirm is not None and not confirm(question):
            raise OperationError("nothing was flushed")
        cache.bump()
        document["flushed"] = "all"
        done = (
            f"flushed every entry of namespace {cache.namespace_name!r} "
            "(other data on the store untouched)"
        )
    elif tags:
        cache.invalidate_tags(*tags)
        document.update(flushed="tags", tags=list(tags))
        done = f"invalidated {described_as or 'tag(s): ' + ', '.join(tags)}"
        if verbose and described_as:
            done += f"\ntags: {', '.join(tags)}"
    elif keys:
        deleted = [(key, cache.delete(key)) for key in keys]
        removed = [key for key, gone in deleted if gone]
        missing = [key for key, gone in deleted if not gone]
        document.update(flushed="keys", removed=removed, missing=missing)
        done = "\n".join(
            f"removed {key!r}" if gone else f"no entry under {key!r}" for key, gone in deleted
        )
    elif namespace is not None:
        try:
            nested = cache.namespace(namespace)
        except CacheError as exc:
            raise OperationError(f"{exc}; nothing was flushed") from exc
        nested.bump()
        document.update(flushed="namespace", namespace=nested.namespace_name)
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
    if as_json:
        return json.dumps({**document, "message": done}, indent=2)
    return done


def stats_report(
    cache: Cache,
    *,
    as_json: bool = False,
    change_feed: PostgresChangeFeed | DebeziumStreamFeed | None = None,
    verbose: bool = False,
    one_line: bool = False,
) -> str:
    """The counters every process published (see ``Cache.publish_stats``), hot keys and the
    store, as text (``verbose``: every counter too) or JSON (``one_line``: on one line, for
    a stream of documents); with ``change_feed`` (CDC is configured), its slot's lag too, and
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
            indent=None if one_line else 2,
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
    if verbose:
        lines.append("counters")
        lines += [f"  {name:<21} {value}" for name, value in totals.as_dict().items()]
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
    warn: Write | None = None,
) -> int:
    """Run write-behind workers: drain ``queues`` (those named in ``only``) until they are
    empty (``once``) or until ``stop`` is set; how many entries were handled. ``warn`` (by
    default ``out``) gets what is retried: the store unreachable, a sink that failed."""
    selected = named(queues, only, "queue(s)", "none made")
    if not selected:
        raise OperationError("no write-behind queue to drain")
    stop = stop or threading.Event()
    warn = warn or out
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
                warn(f"{name}: {exc}; retrying")
                stop.wait(1.0)
            except Exception as exc:  # the sink failed: its batch comes back later
                warn(f"{name}: the sink failed ({type(exc).__name__}: {exc}); retrying")
                stop.wait(1.0)
        handled += batch
        if not batch:
            if once and not any(queue.length() for queue in selected.values()):
                break
            stop.wait(0.05)  # entries a dead worker holds come back after claim_idle
    out(f"drained {handled} write(s) from {len(selected)} queue(s)")
    return handled
