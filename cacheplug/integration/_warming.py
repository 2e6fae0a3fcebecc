"""Cache warmers for the command lines (``manage.py cacheplug_warm``, ``flask cacheplug
warm``): the registry, the run (its lines, its JSON document, its progress), and warmers that
fail when the cache could not store what they loaded.

A warmer fills the cache through ``get_or_load``/``set``, which fail open: with the store
down they still return the loaded values, and the warmer would report its keys as warmed.
:func:`store_checked` wraps each warmer so that it fails instead when the cache's store failed
(or its circuit breaker was open) while it ran; the command then reports it among the failed
warmers and exits non-zero.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING, Any

from cacheplug.exceptions import CacheUnavailable
from cacheplug.integration._operations import OperationError, Write, named

if TYPE_CHECKING:
    from cacheplug.cache import Cache

__all__ = ["WarmProgress", "WarmReport", "WarmerRun", "Warmers", "store_checked", "warm"]

Warmer = Callable[[], Any]

PROGRESS_EVERY = 10
"""A warmer's progress is reported every this many keys (and when it ends): a display is
redrawn often enough to move, not once per key."""


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


@dataclass(frozen=True)
class WarmProgress:
    """Where a warm run stands, for a progress display (a terminal's status line, click's
    progress bar): reported once before the first warmer starts, every
    :data:`PROGRESS_EVERY` keys a warmer warms, and when each warmer ends."""

    warmers: int
    """How many warmers the run has."""
    finished: int
    """How many of them have ended (failed ones included)."""
    keys: int
    """Keys warmed so far, by every warmer."""
    current: str | None
    """The warmer this report is about (``None`` before the first one)."""

    def describe(self) -> str:
        """The keys so far and the warmer at work: ``120 key(s) (products)``."""
        return f"{self.keys} key(s)" + (f" ({self.current})" if self.current else "")

    def line(self) -> str:
        """One status line: ``warming: 1/3 warmer(s) done, 120 key(s) (products)``."""
        return f"warming: {self.finished}/{self.warmers} warmer(s) done, {self.describe()}"


@dataclass(frozen=True)
class WarmerRun:
    """How one warmer's run went."""

    name: str
    keys: int
    """The keys it warmed (before it failed, if it did)."""
    seconds: float
    error: str | None = None
    """``type: message`` of what it raised; ``None`` when it succeeded."""

    def line(self, *, verbose: bool = False) -> str:
        took = f" in {self.seconds:.2f} s" if verbose else ""
        failed = f", failed: {self.error}" if verbose and self.error else ""
        return f"{self.name}: {self.keys} key(s){took}{failed}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "keys": self.keys,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


@dataclass(frozen=True)
class WarmReport:
    """What a warm run did: every warmer's :class:`WarmerRun`, in name order."""

    runs: tuple[WarmerRun, ...]
    workers: int
    seconds: float
    dry_run: bool = False

    @property
    def keys(self) -> int:
        return sum(run.keys for run in self.runs)

    @property
    def failed(self) -> list[str]:
        """The names of the warmers that failed."""
        return [run.name for run in self.runs if run.error is not None]

    def summary(self) -> str:
        """The last line of the text output."""
        if self.dry_run:
            return f"{len(self.runs)} warmer(s); nothing was run"
        return (
            f"warmed {self.keys} key(s) with {len(self.runs)} warmer(s) in "
            f"{self.seconds:.1f} s, {len(self.failed)} failed"
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of ``--json`` (a dry run lists each warmer by name only)."""
        return {
            "dry_run": self.dry_run,
            "workers": self.workers,
            "warmers": [{"name": run.name} if self.dry_run else run.as_dict() for run in self.runs],
            "keys": self.keys,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
        }


def warm(
    warmers: Mapping[str, Warmer],
    *,
    only: Sequence[str] | None = None,
    workers: int = 1,
    dry_run: bool = False,
    as_json: bool = False,
    verbose: bool = False,
    out: Write,
    err: Write,
    done: Callable[[WarmReport], None] | None = None,
    progress: Write | None = None,
    advance: Callable[[WarmProgress], None] | None = None,
    each_done: Callable[[], None] | None = None,
) -> WarmReport:
    """Run ``warmers`` (those named in ``only``), ``workers`` at a time.

    ``out`` gets a line per warmer as it ends (``verbose``: a line as each starts, and the
    time each took), then the summary (to ``done`` instead, when given, with the report: to
    style it); with ``as_json``, ``out`` gets only one JSON document, at the end. ``err``
    gets each failure's traceback. For a progress display, ``advance`` gets a
    :class:`WarmProgress` and ``progress`` a text line (``products: 10 keys``) as the run
    moves. The callbacks are called one at a time, never from two worker threads at once.
    ``each_done`` runs in the worker thread after each warmer (to close its database
    connections, say). Raises :class:`OperationError` for unknown names or failed warmers
    (after the output: the JSON document lists the failures too)."""
    selected = named(warmers, only, "warmer(s)", "none registered")
    if workers < 1:
        raise OperationError("--workers must be at least 1")
    if dry_run:
        runs = tuple(WarmerRun(name, 0, 0.0) for name in selected)
        report = WarmReport(runs, workers, 0.0, dry_run=True)
        if not as_json:
            for name in selected:
                out(f"would run {name}")
    else:
        steps = _Steps(len(selected), progress, advance)
        if verbose and not as_json:
            out(f"running {len(selected)} warmer(s), {workers} at a time: {', '.join(selected)}")
        steps.started()
        started = time.monotonic()

        def run(item: tuple[str, Warmer]) -> WarmerRun:
            name, fn = item
            try:
                if verbose and not as_json:
                    steps.say(out, f"{name}: started")
                outcome = _run_one(name, fn, steps)
                if outcome.traceback is not None:
                    failed = f"{name} failed after {outcome.run.keys} key(s)"
                    steps.say(err, f"{failed}:\n{outcome.traceback}")
                if not as_json:
                    steps.say(out, outcome.run.line(verbose=verbose))
                steps.ended(name, outcome.run.keys)
                return outcome.run
            finally:
                if each_done is not None:
                    each_done()

        with ThreadPoolExecutor(max_workers=workers) as pool:
            runs = tuple(pool.map(run, selected.items()))
        report = WarmReport(runs, workers, time.monotonic() - started)
    if as_json:
        out(json.dumps(report.as_dict(), indent=2))
    elif done is not None:
        done(report)
    else:
        out(report.summary())
    if report.failed:
        raise OperationError(f"warmer(s) failed: {', '.join(report.failed)}")
    return report


class _Steps:
    """A run's progress, shared by its worker threads: the counts, and the callbacks called
    under one lock."""

    def __init__(
        self,
        warmers: int,
        progress: Write | None,
        advance: Callable[[WarmProgress], None] | None,
    ) -> None:
        self._warmers = warmers
        self._lock = threading.Lock()  # the worker threads' callbacks, one at a time
        self._progress = progress
        self._advance = advance
        self._finished = 0
        self._keys: dict[str, int] = {}  # by warmer

    def say(self, write: Write, line: str) -> None:
        with self._lock:
            write(line)

    def started(self) -> None:
        with self._lock:
            self._report(None)

    def keys(self, name: str, count: int) -> None:
        """``name`` has warmed ``count`` keys so far."""
        with self._lock:
            self._keys[name] = count
            if self._progress is not None:
                self._progress(f"{name}: {count} keys")
            self._report(name)

    def ended(self, name: str, count: int) -> None:
        with self._lock:
            self._keys[name] = count
            self._finished += 1
            self._report(name)

    def _report(self, name: str | None) -> None:
        if self._advance is not None:
            keys = sum(self._keys.values())
            self._advance(WarmProgress(self._warmers, self._finished, keys, name))


@dataclass(frozen=True)
class _Outcome:
    run: WarmerRun
    traceback: str | None = None
    """What the warmer raised, in full, for ``err`` (the run keeps one line of it)."""


def _run_one(name: str, fn: Warmer, steps: _Steps) -> _Outcome:
    """Run one warmer, counting its keys as it yields them."""
    started = time.monotonic()
    count = 0
    try:
        result = fn()
        if isinstance(result, Integral):
            count = int(result)
        elif isinstance(result, Iterable) and not isinstance(result, str | bytes):
            for _ in result:
                count += 1
                if count % PROGRESS_EVERY == 0:
                    steps.keys(name, count)
    except Exception as exc:
        run = WarmerRun(name, count, time.monotonic() - started, f"{type(exc).__name__}: {exc}")
        return _Outcome(run, traceback.format_exc())
    return _Outcome(WarmerRun(name, count, time.monotonic() - started))


def store_checked(warmers: Mapping[str, Warmer], cache: Cache) -> dict[str, Warmer]:
    """``warmers``, each raising :class:`~cacheplug.CacheUnavailable` at its end if ``cache``
    counted a failed store call, or had its circuit breaker open, while it ran. (Warmers run
    side by side share the counter: with the store down, every one of them fails.)"""
    return {name: _checked(fn, cache) for name, fn in warmers.items()}


def _checked(fn: Warmer, cache: Cache) -> Warmer:
    def run() -> Any:
        before = cache.stats().errors
        result = fn()
        if isinstance(result, Iterable) and not isinstance(result, str | bytes | Integral):
            return _consumed(result, cache, before)  # the keys are warmed as it is consumed
        _raise_if_failed(cache, before)
        return result

    return run


def _consumed(items: Iterable[Any], cache: Cache, before: int) -> Iterator[Any]:
    yield from items
    _raise_if_failed(cache, before)


def _raise_if_failed(cache: Cache, before: int) -> None:
    failed = cache.stats().errors - before
    if failed > 0 or cache.breaker.tripped:
        raise CacheUnavailable(
            "the cache store could not be reached while this warmer ran "
            f"({failed} failed store call(s)"
            f"{', circuit breaker open' if cache.breaker.tripped else ''}): what it loaded "
            "was not cached. Check that the store is up, then run the warmer again."
        )
