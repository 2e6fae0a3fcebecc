"""The read policies: is a stored entry usable, what does a read return, and the plans that
fill or refresh a key.

Everything here decides from values already read; the sync and async APIs do the I/O (see
``driver``) and share these decisions.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from cacheplug._engine.depends import current
from cacheplug._engine.discovery import _running
from cacheplug._engine.embedded import embedded_hit
from cacheplug._engine.flights import FLIGHT_SEPARATOR
from cacheplug._engine.invalidation import Invalidator
from cacheplug._engine.plain_hits import plain_hits
from cacheplug._engine.plans import (
    ReadPolicy,
)
from cacheplug._engine.state import EngineState
from cacheplug._memo import BoundedMemo
from cacheplug._types import BYPASS, DEFAULT, MISSING, NOTHING, Tags, Ttl
from cacheplug.encoding._codec import Entry
from cacheplug.encoding._tags import (
    Recorded,
    Unread,
    checks,
    parse_versions,
    tag_names,
    versions_match,
)
from cacheplug.stores.base import VersionCheck

GetOrLoadArgs = tuple[Ttl, Any, Any, Any, Any, Any]
"""The arguments of one ``get_or_load`` call, as passed: ttl, stale_ttl, early, refresh_ahead,
max_staleness, negative_ttl (``DEFAULT`` where the cache's default applies). Not the
decorator's :class:`~cacheplug.features._decorators.ReadOptions`."""


class Refresh(NamedTuple):
    """A background refresh a hit asks for: of ``skey`` (read with ``version_keys``), by
    ``loader``, under ``policy``, unless an entry newer than ``seen_created_at`` is found."""

    skey: str
    version_keys: Sequence[str]
    loader: Callable[[], Any]
    policy: ReadPolicy
    seen_created_at: float


class Engine(EngineState):
    """The decisions of the read path (and of writes that record versions) over the state of
    one cache; its invalidations go through its :class:`Invalidator` component."""

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self._invalidator = Invalidator(self)
        self._embedded_hit = embedded_hit(self)
        self._plain_hits_paths = plain_hits(self, self._valid, self._keep_local)

    def nested(self, name: str) -> Engine:
        """An engine for the nested namespace ``name``: its own keys and versions over this
        one's store, settings, counters, flights and pending invalidations."""
        view = copy.copy(self)
        view._keys = self._keys.child(name)
        view._versions = self._versions.nested(view._keys)
        view._implicit = view._versions.implicit
        view._recorded_keys = BoundedMemo()
        view._invalidator = Invalidator(view)
        view._embedded_hit = embedded_hit(view)
        view._plain_hits_paths = plain_hits(view, view._valid, view._keep_local)
        return view

    def _bypass(self, skey: str, version_keys: Sequence[str]) -> bool:
        """True when a read must skip the cache: an invalidation of its own is pending."""
        if self._pending.active and self._pending.affects(skey, version_keys):
            self._counters.bypassed += 1
            return True
        return False

    def _write_args(
        self, skey: str, value: Any, ttl: float | None, version_keys: Sequence[str], read: Any
    ) -> tuple[bytes, list[VersionCheck]] | None:
        """The record of a ``set``/``add`` and its version checks, given the versions
        ``read``; ``None`` when it cannot be written (too large, or the versions unknown)."""
        if not isinstance(read, list):
            return None
        made = checks(version_keys, parse_versions(version_keys, read))
        if made is None:
            return None
        recorded, conditions = made
        record = self._encode(skey, value, ttl, 0.0, recorded=recorded)
        return None if record is None else (record, conditions)

    def _valid(
        self,
        skey: str,
        values: list[Any],
        version_keys: Sequence[str],
        max_staleness: float | None = None,
    ) -> Any:
        """The entry in ``values[0]`` if it may be used (fresh or not), given ``values[1:]``
        read for ``version_keys``: ``None`` if absent, discarded, outdated by an invalidation
        or older than ``max_staleness``; :class:`Unread` if it records version keys that were not
        read."""
        raw = values[0]
        if raw is None:
            return None
        self._counters.bytes_read += len(raw)
        entry = self._codec.decode(skey, raw)
        if entry is None:
            self._discarded(skey)
            return None
        recorded = entry.tags
        if recorded:
            # The usual case inline (one version key, read with the entry); else the general.
            if len(recorded) == 1 == len(version_keys) and recorded[0][0] == version_keys[0]:
                if values[1] != b"%d" % recorded[0][1]:
                    return None
            else:
                match = versions_match(recorded, version_keys, values)
                if match is not True:
                    if not match:
                        return None
                    self._remember_recorded(skey, recorded)
                    return Unread(match)
            if self._pending.active and self._pending.affects(skey, [k for k, _ in recorded]):
                self._counters.bypassed += 1
                return None
        if max_staleness is not None and entry.created_at < self._now() - max_staleness:
            return None
        if recorded and _running[0]:
            discovery = current()
            if discovery is not None:  # a hit inside a load: the load depends on it too
                discovery.absorb(recorded)
        return entry

    def _hit(self, skey: str, values: list[Any], version_keys: Sequence[str]) -> Any:
        """The value of a usable, fresh entry (counted), ``MISSING``, or :class:`Unread`."""
        entry = self._valid(skey, values, version_keys)
        if isinstance(entry, Unread):
            return entry
        if entry is not None and entry.fresh_until >= self._now():
            self._counters.hits += 1
            return entry.value
        self._counters.misses += 1
        return MISSING

    def _begin_get(self, key: str) -> tuple[str, tuple[str, ...], Any, int]:
        """:meth:`_begin_read` for ``get``: the version keys are the ones the entry was seen
        to record, and there are no read policies."""
        skey = self._keys.data(key)
        if self._draw() < self._hot_rate:  # sampled here: no call on most reads
            self._hot.count(key)
        version_keys = self._recorded_keys.get(skey) or self._implicit
        if self._pending.active and self._bypass(skey, version_keys):
            return skey, version_keys, BYPASS, -1
        local = self._local
        if local is None or (_running[0] and current() is not None):
            return skey, version_keys, NOTHING, -1
        found = local.get(skey, version_keys)
        if found is not NOTHING:
            self._counters.hits += 1
            return skey, version_keys, found, -1
        return skey, version_keys, NOTHING, local.epoch

    def _finish_get(
        self, skey: str, values: list[Any], version_keys: tuple[str, ...], epoch: int
    ) -> Any:
        """What ``get`` answers from what it read (see :meth:`_hit`), kept in L1 if fresh."""
        value = self._hit(skey, values, version_keys)
        if epoch >= 0 and value is not MISSING and not isinstance(value, Unread):
            self._keep_local(skey, values, version_keys, epoch)
        return value

    def _begin_read(
        self,
        key: str,
        tags: Tags,
        early: Any,
        refresh_ahead: Any,
        max_staleness: float | None,
    ) -> tuple[str, tuple[str, ...], Any, int]:
        """What ``get_or_load`` does before it reads the store: ``(store key, version keys,
        what to answer now, L1 epoch)``. The answer is a value from L1, ``BYPASS`` (call the
        loader, touch nothing), or ``NOTHING`` (read the store). The epoch is -1 when the
        read's value is not to be kept in L1, -2 when the read needs the general policies
        (stale, early or ahead refreshes, bounded staleness)."""
        skey = self._keys.data(key)
        if self._draw() < self._hot_rate:  # sampled here: no call on most reads
            self._hot.count(key)
        if tags is None:
            # What the entry was seen to record (a load may discover its tags): one round trip.
            version_keys = self._recorded_keys.get(skey) or self._implicit
        else:
            version_keys = self._versions.for_entry(tag_names(tags))
        if max_staleness == 0 or (self._pending.active and self._bypass(skey, version_keys)):
            if max_staleness == 0:
                self._counters.bypassed += 1
            self._counters.loads += 1
            return skey, version_keys, BYPASS, -1
        if (
            not (self._plain_hits and early is DEFAULT and refresh_ahead is DEFAULT)
            or max_staleness is not None
        ):
            return skey, version_keys, NOTHING, -2
        local = self._local
        if local is not None and not (_running[0] and current() is not None):
            found = local.get(skey, version_keys)
            if found is not NOTHING:
                self._counters.hits += 1
                return skey, version_keys, found, -1
            return skey, version_keys, NOTHING, local.epoch
        return skey, version_keys, NOTHING, -1

    def _finish_read(
        self,
        skey: str,
        values: list[Any],
        version_keys: tuple[str, ...],
        loader: Callable[[], Any],
        options: GetOrLoadArgs,
        epoch: int,
        refresh_soon: Callable[[Refresh], None],
    ) -> Any:
        """What ``get_or_load`` answers from what it read: a value, or ``MISSING`` (load).
        ``epoch`` as :meth:`_begin_read` gave it."""
        if epoch != -2 and values[0] is not None:
            # The common case, without the general policy machinery.
            entry = self._valid(skey, values, version_keys)
            if entry is None or type(entry) is Unread:
                self._counters.misses += 1
                return MISSING
            if entry.fresh_until >= self._now():
                self._counters.hits += 1
                if epoch >= 0:
                    self._keep_local(skey, values, version_keys, epoch, entry)
                return entry.value
        value = self._answer(skey, values, version_keys, loader, options, refresh_soon)
        if value is not MISSING and epoch >= 0:
            self._keep_local(skey, values, version_keys, epoch)
        return value

    def _keep_local(
        self,
        skey: str,
        values: list[Any],
        version_keys: Sequence[str],
        epoch: int,
        entry: Entry | None = None,
    ) -> None:
        """Keep the fresh entry just read from the store in L1 (see ``_local``); ``entry``:
        the record already decoded, if the caller has it."""
        local = self._local
        raw = values[0]
        if local is None or raw is None:
            return
        fills = self._store.fills
        if not fills.live:
            fills.start()  # resubscribes (a forked child's first read, say); serves from next time
            return
        if entry is None:
            entry = self._codec.decode(skey, raw)
        if entry is None:
            return
        recorded = tuple(key for key, _ in entry.tags)
        if recorded != tuple(version_keys):
            return
        local.put(skey, entry.value, entry.fresh_until - self._now(), recorded, len(raw), epoch)

    def _loaded_ttl(self, ttl: Ttl, negative_ttl: Any, value: Any) -> float | None:
        """Seconds a value just loaded stays fresh (``0``: not cached)."""
        return self._read_policy(ttl, DEFAULT, DEFAULT, DEFAULT, None, negative_ttl).ttl_for(value)

    def _flight_key(self, skey: str, version_keys: Sequence[str]) -> str:
        """Callers passing other tags for a key than others do share no load with them."""
        if version_keys is self._implicit:
            return skey
        return skey + FLIGHT_SEPARATOR + ",".join(version_keys)

    def _unread_keys(self, skey: str, version_keys: tuple[str, ...]) -> tuple[str, ...] | None:
        """The version keys the entry ``skey`` was just seen to record, when a read without
        tags did not read them all (a load discovered its tags): read again with these."""
        recorded = self._recorded_keys.get(skey)
        return None if recorded is None or recorded == version_keys else recorded

    def _remember_recorded(self, skey: str, recorded: Recorded) -> None:
        # get() fetches these with the entry next time: one round trip instead of two.
        self._recorded_keys.remember(skey, tuple(key for key, _ in recorded))

    def _answer(
        self,
        skey: str,
        values: list[Any],
        version_keys: Sequence[str],
        loader: Callable[[], Any],
        options: GetOrLoadArgs,
        refresh_soon: Callable[[Refresh], None],
    ) -> Any:
        """What ``get_or_load`` returns without loading (a hit, maybe stale, maybe scheduling
        a refresh), or ``MISSING`` for a miss (counted)."""
        if values[0] is not None:
            _, _, early, refresh_ahead, max_staleness, _ = options
            entry = self._valid(skey, values, version_keys, max_staleness)
            if entry is not None and not isinstance(entry, Unread):
                if (
                    self._plain_hits
                    and early is DEFAULT
                    and refresh_ahead is DEFAULT
                    and entry.fresh_until >= self._now()
                ):
                    self._counters.hits += 1
                    return entry.value
                policy = self._read_policy(*options)
                value, refresh = self._serve(skey, entry, policy)
                if refresh:
                    refresh_soon(Refresh(skey, version_keys, loader, policy, entry.created_at))
                if value is not MISSING:
                    return value
        self._counters.misses += 1
        return MISSING

    def _serve(self, skey: str, entry: Entry, policy: ReadPolicy) -> tuple[Any, bool]:
        """``(value or MISSING, refresh it in the background?)`` for a stored entry."""
        now = self._now()
        fresh_until = entry.fresh_until
        if fresh_until >= now:
            self._counters.hits += 1
            refresh = policy.wants_refresh(now, entry.created_at, fresh_until, entry.compute_time)
            return entry.value, refresh
        if policy.stale_ttl and now - fresh_until <= policy.stale_ttl:
            self._counters.hits += 1
            self._counters.stale_hits += 1
            return entry.value, True
        return MISSING, False
