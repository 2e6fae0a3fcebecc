"""Purging the edge after the store: the purgers (Varnish, any HTTP ``PURGE`` endpoint, or a
CDN's API through a class of the application's own) and :class:`EdgePurges`, which sends the
edge keys of every invalidation that landed in the store, in order after it.

Why after the store, and on a thread of its own: an edge purged before the store would fetch
the page again from the app while the store still held the old one, and keep that for its
``s-maxage``. So the purge waits for :meth:`cacheplug.Cache.on_landed` (an invalidation queued
because the store was down is purged when it is applied). And a purge is an HTTP request to
another machine that may be slow or down: it must never hold a request or a commit, so the
keys are queued, sent in batches by one thread, and sent again with backoff until the edge
takes them.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Protocol

from cacheplug._redact import redact
from cacheplug.integration._edge import (
    HEADER_STYLES,
    PURGE_MODES,
    EdgeSettings,
    edge_key,
    edge_keys,
)

logger = logging.getLogger("cacheplug")

BATCH: Final = 400
"""Keys per purge request: 400 keys of 13 characters fit Varnish's default 8 KB header."""
MAX_WAITING: Final = 100_000
"""Keys kept waiting for an edge that is down; past that, the whole namespace is purged
instead once it is back (every page carries its namespace's key)."""
_FIRST_BACKOFF: Final = 0.1
_MAX_BACKOFF: Final = 30.0


class EdgePurger(Protocol):
    """Drops from an edge cache every page carrying any of ``keys``; raises when it could
    not (the keys are sent again later). A CDN's API is a class with this method."""

    def purge(self, keys: Sequence[str]) -> None: ...


class HttpPurger:
    """Purges by sending ``method`` (default ``PURGE``) to ``url`` with the keys in one
    header (default ``Surrogate-Key``, separated by spaces): what a proxy or a purge endpoint
    of one's own takes. Any answer but 2xx is a failure."""

    def __init__(
        self,
        url: str,
        *,
        header: str = "Surrogate-Key",
        method: str = "PURGE",
        separator: str = " ",
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.header = header
        self.method = method
        self.separator = separator
        self.timeout = timeout

    def purge(self, keys: Sequence[str]) -> None:
        request = urllib.request.Request(
            self.url, method=self.method, headers={self.header: self.separator.join(keys)}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        if not 200 <= status < 300:
            raise OSError(f"{self.method} {redact(self.url)} answered {status}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.url)!r}, method={self.method!r})"


class VarnishPurger(HttpPurger):
    """Purges a Varnish running ``example_project/edge/cacheplug.vcl``: ``mode="xkey"``
    sends ``PURGE`` with an ``xkey-purge`` header (vmod_xkey drops those pages at once);
    ``mode="ban"`` sends ``BAN`` with the same header (any Varnish: the VCL bans the pages
    whose ``xkey`` holds one of the keys)."""

    def __init__(self, url: str, *, mode: str = "xkey", timeout: float = 5.0) -> None:
        if mode not in ("xkey", "ban"):
            raise ValueError(f"mode must be 'xkey' or 'ban', not {mode!r}")
        super().__init__(
            url,
            header="xkey-purge",
            method="PURGE" if mode == "xkey" else "BAN",
            timeout=timeout,
        )
        self.mode = mode


class EdgePurges:
    """The edge keys waiting to be purged, sent by a thread of their own: in batches of
    ``batch`` keys (:data:`BATCH`; fewer for an API that takes fewer a call), again with
    backoff (0.1 s doubling to 30 s) while the purger fails. ``everything``: the version keys
    every page carries (its namespace's), purged instead when more than :data:`MAX_WAITING`
    keys pile up.

    Each :meth:`add` is numbered; a key waits with the number of the oldest add it serves, so
    "everything added up to number N is purged" is known from the oldest key still waiting or
    being sent, under a steady stream of new keys too (an empty queue may never be seen)."""

    def __init__(
        self,
        purger: EdgePurger,
        *,
        everything: Iterable[str] = (),
        max_waiting: int = MAX_WAITING,
        batch: int = BATCH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self.purger = purger
        self.batch = batch
        self.everything = edge_keys(everything)
        self.max_waiting = max_waiting
        self.purged = 0
        """Keys purged so far."""
        self.failures = 0
        """Purge requests that failed (each sent again later)."""
        self.stop_listening: Callable[[], None] = lambda: None
        """Stops what feeds this queue (:func:`start_edge_purges` sets it); :meth:`close`
        calls it."""
        self._clock = clock
        self._waiting: dict[str, int] = {}  # key -> number of the oldest add it serves
        self._added = 0  # the number of the last add
        self._sending: list[tuple[str, int]] = []  # the batch on its way
        self._after: list[tuple[int, Callable[[], None]]] = []
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._stopping = False
        self._stopped = threading.Event()  # ends a backoff early: nothing else hurries one
        self._thread: threading.Thread | None = None

    def add_version_keys(self, version_keys: Sequence[str]) -> None:
        """Purge the pages checked against ``version_keys`` (what
        :meth:`cacheplug.Cache.on_landed` reports): queued, never blocking."""
        self.add([edge_key(key) for key in version_keys])

    def add(self, keys: Iterable[str]) -> None:
        """Purge the pages carrying any of the edge ``keys`` (queued, never blocking)."""
        with self._lock:
            self._added += 1
            for key in keys:
                self._waiting.setdefault(key, self._added)
            if len(self._waiting) > self.max_waiting and self.everything:
                logger.error(
                    "cacheplug: more than %d edge keys wait for a purge; the namespace's "
                    "pages will be purged instead",
                    self.max_waiting,
                )
                oldest = next(iter(self._waiting.values()))
                self._waiting = dict.fromkeys(self.everything, oldest)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="cacheplug-edge-purges", daemon=True
                )
                self._thread.start()
            self._wakeup.notify_all()

    def _done_through(self) -> int:
        """The number of the last add whose keys are all purged (the lock is held)."""
        oldest = [numbers[0][1] for numbers in (self._sending,) if numbers]
        if self._waiting:
            oldest.append(next(iter(self._waiting.values())))
        return min(oldest) - 1 if oldest else self._added

    def after_purged(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once every key queued so far is purged: at once if none
        waits, else on the purge thread (an outbox row is deleted only then, so that a
        process that dies with purges waiting leaves the row to a relay, which purges
        again). Never called while the edge stays down."""
        with self._lock:
            if self._done_through() < self._added:
                self._after.append((self._added, callback))
                return
        _call(callback)

    def waiting(self) -> int:
        """Keys not purged yet (queued, or being sent)."""
        with self._lock:
            return len(self._waiting) + len(self._sending)

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every key queued so far to be purged; True when
        it was."""
        deadline = self._clock() + timeout
        with self._lock:
            target = self._added
            while self._done_through() < target:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return False
                self._wakeup.wait(min(remaining, 0.05))
            return True

    def close(self, timeout: float = 2.0) -> bool:
        """Purge what waits (for up to ``timeout`` seconds), then stop the thread; True when
        nothing was left unpurged (what is left is logged)."""
        self.stop_listening()
        done = self.flush(timeout)
        with self._lock:
            self._stopping = True
            left = len(self._waiting) + len(self._sending)
            self._wakeup.notify_all()
        self._stopped.set()
        if not done:
            logger.error("cacheplug: %d edge key(s) were not purged before shutdown", left)
        return done

    def _run(self) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            with self._lock:
                while not self._waiting and not self._stopping:
                    self._wakeup.wait()
                if self._stopping:
                    return
                self._sending = list(itertools.islice(self._waiting.items(), self.batch))
                for key, _ in self._sending:
                    del self._waiting[key]
                batch = [key for key, _ in self._sending]
            try:
                self.purger.purge(batch)
            except Exception as exc:
                with self._lock:
                    self.failures += 1
                    # First again, with the numbers they had (a key queued again meanwhile
                    # keeps the older one).
                    again = dict(self._sending)
                    for key, number in self._waiting.items():
                        again.setdefault(key, number)
                    self._waiting, self._sending = again, []
                    waiting = len(self._waiting)
                logger.warning(
                    "cacheplug: edge purge failed (%d key(s) wait; again in %.1f s): %s",
                    waiting,
                    backoff,
                    redact(str(exc)),
                )
                self._stopped.wait(backoff)  # new keys do not hurry a dead edge
                backoff = min(_MAX_BACKOFF, backoff * 2)
                continue
            backoff = _FIRST_BACKOFF
            with self._lock:
                self.purged += len(batch)
                self._sending = []
                done = self._done_through()
                ready = [callback for number, callback in self._after if number <= done]
                self._after = [(number, cb) for number, cb in self._after if number > done]
                self._wakeup.notify_all()
            for callback in ready:
                _call(callback)


def _call(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:
        logger.exception("cacheplug: a callback after an edge purge failed")


class _Landing(Protocol):
    def on_landed(self, callback: Callable[[Sequence[str]], None]) -> Callable[[], None]: ...


def purge_after_landing(cache: _Landing, purges: EdgePurges) -> Callable[[], None]:
    """Send ``cache``'s landed invalidations (:meth:`cacheplug.Cache.on_landed`) to
    ``purges``; returns a function that stops it."""
    return cache.on_landed(purges.add_version_keys)


def edge_purger(settings: EdgeSettings) -> EdgePurger | None:
    """The purger the ``EDGE`` setting describes (``PURGE_URL``, ``PURGE``); ``None`` without
    a ``PURGE_URL`` (pages are marked for the edge, which then keeps them for ``S_MAXAGE``)."""
    if settings.purge_url is None:
        return None
    if settings.purge == "http":
        name, separator = HEADER_STYLES[settings.header]
        return HttpPurger(settings.purge_url, header=name, separator=separator)
    assert settings.purge in PURGE_MODES
    return VarnishPurger(settings.purge_url, mode=settings.purge)


class _Versioned(_Landing, Protocol):
    def version_keys(self, *tags: str) -> tuple[str, ...]: ...


def start_edge_purges(cache: _Versioned, settings: EdgeSettings | None) -> EdgePurges | None:
    """Purge the edge ``settings`` describes after every invalidation of ``cache`` that
    landed (what both adapters do once their cache is built); ``None`` when there is no
    purger. :meth:`EdgePurges.close` also stops listening."""
    purger = None if settings is None else edge_purger(settings)
    if purger is None:
        return None
    purges = EdgePurges(purger, everything=cache.version_keys())
    purges.stop_listening = purge_after_landing(cache, purges)
    return purges
