"""Invalidating what a committed transaction wrote, without ever failing the write.

The adapters invalidate a transaction's tags from its commit hook (Django ``on_commit`` and
the ORM hooks, SQLAlchemy ``after_commit``). By then the data is written: an exception from
the cache would tell the user that a write failed when it did not, and would skip the
invalidation. :class:`AfterCommit` runs those invalidations so that nothing escapes:

- the store is down (a strict cache raises ``CacheUnavailable``): the cache has queued the
  invalidation already and retries it until the store takes it (``pending_invalidations()``);
  the failure is logged and counted here;
- the cache cannot even be set up (a bad setting, say): the tags are *held* here, logged and
  counted, and handed to the cache as soon as there is one (:meth:`AfterCommit.replay`, or the
  next commit); past ``max_held`` tags, the held ones are forgotten and the whole namespace is
  bumped instead (always safe: it costs misses, never a stale read);
- anything else unexpected: the tags are held the same way.

What is held lives in this process: if it exits before a cache can be set up, the error log
(which names the tags) is the record of what was not invalidated.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cacheplug._engine.pending import DEFAULT_MAX_PENDING
from cacheplug.exceptions import CacheUnavailable
from cacheplug.integration._calls import _log as _calls

if TYPE_CHECKING:
    from cacheplug.cache import Cache

__all__ = ["AfterCommit", "Invalidate"]

Invalidate = Callable[[list[str], "float | None"], None]
"""Invalidates ``(tags, again_after)``: the cache's ``invalidate_tags``, as an adapter wraps it."""

logger = logging.getLogger("cacheplug")


class AfterCommit:
    """Runs committed transactions' invalidations: never raises, never drops one.

    ``failures`` counts the invalidations that could not be handed over as asked (each is
    logged); :meth:`held` lists the tags waiting for a cache.
    """

    def __init__(self, *, max_held: int = DEFAULT_MAX_PENDING) -> None:
        self.max_held = max_held
        self.failures = 0
        self._lock = threading.Lock()
        self._held: dict[str, None] = {}  # an ordered set
        self._bump = False  # too many held: bump the namespace instead

    def held(self) -> list[str]:
        """Tags waiting for a cache; ``["<namespace bump>"]`` once there were too many."""
        with self._lock:
            return ["<namespace bump>"] if self._bump else list(self._held)

    def run(
        self,
        get_invalidate: Callable[[], Invalidate | None],
        tags: Sequence[str],
        again_after: float | None = None,
    ) -> None:
        """Invalidate ``tags`` through ``get_invalidate()`` (``None``: invalidation is off),
        with the tags held from earlier failures; never raises."""
        try:
            invalidate = get_invalidate()
        except Exception as exc:
            self._hold(tags, f"the cache could not be set up ({type(exc).__name__}: {exc})")
            return
        if invalidate is None:
            return
        with self._lock:
            held, bump = list(self._held), self._bump
        if bump:
            # Only a cache can bump its namespace: keep holding until replay() gets one.
            self._hold(tags, "a namespace bump is still waiting for the cache")
            return
        everything = list(dict.fromkeys([*held, *tags]))
        if (log := _calls.get()) is not None:  # a debugging panel listens
            log.invalidated(everything)
        try:
            invalidate(everything, again_after)
        except CacheUnavailable as exc:
            # A strict cache queued it before raising: it is retried until the store is back.
            self._count()
            logger.warning(
                "cacheplug: the store could not take the invalidation of %d tag(s) written by "
                "a committed transaction (%s); it is queued and retried until it does",
                len(everything),
                exc,
            )
        except Exception as exc:
            self._hold(tags, f"the invalidation failed ({type(exc).__name__}: {exc})")
            return
        self._forget(held)

    def replay(self, cache: Cache) -> None:
        """Hand what is held to ``cache`` (call it when the cache has just been set up,
        before it serves a read); never raises: what fails stays held."""
        with self._lock:
            held, bump = list(self._held), self._bump
        if not (held or bump):
            return
        try:
            if bump:
                cache.bump()
            else:
                cache.invalidate_tags(*held)
        except CacheUnavailable:
            pass  # queued by the cache, retried until the store takes it
        except Exception as exc:
            self._count()
            logger.error(
                "cacheplug: %d held invalidation(s) still cannot be applied (%s: %s); kept",
                len(held) or 1,
                type(exc).__name__,
                exc,
            )
            return
        with self._lock:
            if bump:
                self._bump = False
        self._forget(held)

    def _forget(self, tags: Sequence[str]) -> None:
        with self._lock:
            for tag in tags:
                self._held.pop(tag, None)

    def _count(self) -> None:
        with self._lock:
            self.failures += 1

    def _hold(self, tags: Sequence[str], why: str) -> None:
        with self._lock:
            self.failures += 1
            if not self._bump:
                self._held.update(dict.fromkeys(tags))
                if len(self._held) > self.max_held:
                    self._held.clear()
                    self._bump = True
            waiting = len(self._held)
            bump = self._bump
        logger.error(
            "cacheplug: a committed transaction's invalidation could not reach the cache: %s. "
            "The write stands; %s until the cache can be used. Tags: %s",
            why,
            "the whole namespace will be bumped"
            if bump
            else f"{waiting} tag(s) are held in this process and invalidated",
            ", ".join(tags[:20]) + (" ..." if len(tags) > 20 else ""),
        )
