"""Dependencies a load discovers while it runs: what ``depends_on="auto"`` is built on.

A fill records the versions of the tags it was given, read after taking the lease and before
the loader runs, and stores its value only if they are still current: a load that read the
database before an invalidation never stores what it read. A loader that learns what it
depends on only as it reads (the ORM adapters see each ``SELECT`` go by) calls
:func:`depends_on` *before* each read: the versions of those tags are read then, ahead of the
data they stand for, and the fill records them and stores under them as it does for its own
(:class:`Discovery`). An invalidation between that version read and the fill's store makes
the store refuse, as for a declared tag.

Outside a load, :func:`depends_on` does nothing (and says so). The versions are read with a
blocking call, also in an async load (the adapters' hooks run in sync code).

A load nested in another (a cached function called by a loader) passes what it discovered to
the enclosing one when it ends: those versions were read before its data, so they hold for
the outer value too. A hit inside a load passes on what its entry records (its versions were
just checked current), and skips the in-process (L1) tier, which keeps no versions; and a load
inside a load shares no flight with other callers (their load would discover for them only).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, Final

from cacheplug.encoding._tags import Recorded, fresh_version, parse_versions, tag_names
from cacheplug.stores.base import VersionCheck

if TYPE_CHECKING:
    from cacheplug._engine.state import EngineState

_current: ContextVar[Discovery | None] = ContextVar("cacheplug_discovery", default=None)
_running = [0]  # discoveries running in this process: a read looks further only when not 0
_running_lock = threading.Lock()

MAX_DISCOVERED: Final = 48
"""Tags a load may discover (an entry records at most 64 version keys, its own included);
past that the value is not stored."""


class Discovery:
    """The tags one load discovered, with their versions as read before what they stand for."""

    __slots__ = ("_engine", "_known", "_near", "_prefetched", "parent", "storable", "versions")

    def __init__(
        self, engine: EngineState, known: Iterable[str] = (), near: str | None = None
    ) -> None:
        self._engine = engine
        self._known = frozenset(known)  # version keys the fill records anyway
        self._near = near  # the entry's key (a store keeping copies of versions needs it)
        self._prefetched: dict[str, int] = {}  # read ahead (may_depend_on), not yet used
        self.parent: Discovery | None = None  # the load this one runs inside, if any
        self.versions: dict[str, int] = {}
        self.storable = True
        """False once a version could not be read (the store failed) or there were too many:
        the value is returned, not stored."""

    def _new_keys(self, tags: Iterable[str]) -> list[str]:
        return [
            key
            for key in self._engine._versions.of_tags(tag_names(tuple(tags)))
            if key not in self._known and key not in self.versions
        ]

    def _current_versions(self, keys: list[str]) -> dict[str, int] | None:
        """The versions of ``keys`` now, absent ones created: one round trip; None when the
        store failed."""
        engine = self._engine
        if not engine._store.shared:
            # In process: a read costs nothing, and most keys exist (a fresh version each
            # costs a call to the OS's random source).
            read = engine._read(keys, False)
            needed = engine._absent_versions(keys, read, self._near)
            if needed is not None:
                positions, args = needed
                created = engine._call(
                    "ensure_versions", False, engine._store.ensure_versions, *args
                )
                read = engine._merge_versions(read, positions, created)
            return self._parsed(keys, read)
        fresh = [fresh_version() for _ in keys]
        read = engine._call(
            "ensure_versions",
            False,
            engine._store.ensure_versions,
            keys,
            fresh,
            engine._version_keep_ms(),
            self._near,
        )
        return self._parsed(keys, read)

    @staticmethod
    def _parsed(keys: list[str], read: Any) -> dict[str, int] | None:
        if not isinstance(read, list):
            return None
        versions = parse_versions(keys, read)
        if any(version is None for version in versions.values()):
            return None
        return {key: version for key, version in versions.items() if version is not None}

    def prefetch(self, tags: Iterable[str]) -> None:
        """Read the versions of tags the load will likely depend on, in one round trip; they
        count only once :meth:`add` names them."""
        if not self._engine._store.shared:
            return  # an in-process store: reading a version is no round trip to save
        keys = [key for key in self._new_keys(tags) if key not in self._prefetched]
        if keys and self.storable:
            self._prefetched.update(self._current_versions(keys) or {})

    def add(self, tags: Iterable[str]) -> None:
        """Read the versions of ``tags`` not seen yet (creating absent ones)."""
        keys = self._new_keys(tags)
        if not keys or not self.storable:
            return
        if len(self.versions) + len(keys) > MAX_DISCOVERED:
            self.storable = False
            return
        prefetched = self._prefetched
        missing = [key for key in keys if key not in prefetched]
        found = self._current_versions(missing) if missing else {}
        if found is None:
            self.storable = False
            return
        for key in keys:
            self.versions[key] = prefetched.pop(key) if key in prefetched else found[key]

    def absorb(self, recorded: Recorded, storable: bool = True) -> None:
        """What a nested load discovered, or a hit's entry records: versions already read."""
        if not storable:
            self.storable = False
        for key, version in recorded:
            if key not in self._known:
                self.versions.setdefault(key, version)
        if len(self.versions) > MAX_DISCOVERED:
            self.storable = False

    def recorded(self) -> tuple[Recorded, list[VersionCheck]]:
        """What the fill records for the discovered tags, and the checks it stores under."""
        pairs = tuple(self.versions.items())
        return pairs, [(key, version, False) for key, version in pairs]

    def run(self, loader: Callable[[], Any]) -> Callable[[], Any]:
        """``loader`` run with this discovery current."""

        def discovering() -> Any:
            parent = self.parent = self._enter()
            token = _current.set(self)
            try:
                return loader()
            finally:
                _current.reset(token)
                self._leave(parent)

        return discovering

    def arun(self, loader: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
        """The async :meth:`run`: ``loader`` may be sync or return an awaitable."""

        async def discovering() -> Any:
            parent = self.parent = self._enter()
            token = _current.set(self)
            try:
                value = loader()
                if isawaitable(value):
                    value = await value
                return value
            finally:
                _current.reset(token)
                self._leave(parent)

        return discovering

    @staticmethod
    def _enter() -> Discovery | None:
        with _running_lock:
            _running[0] += 1
        return _current.get()

    def _leave(self, parent: Discovery | None) -> None:
        with _running_lock:
            _running[0] -= 1
        if parent is not None:
            parent.absorb(tuple(self.versions.items()), self.storable)


def loading(key: str) -> bool:
    """True when the entry ``key`` is being loaded here, by this load or one it runs inside
    (a loader reading its own key would wait for itself)."""
    discovery = current()
    while discovery is not None:
        if discovery._near == key:
            return True
        discovery = discovery.parent
    return False


def current() -> Discovery | None:
    """The discovery of the load running here, if any (cheap when none runs anywhere)."""
    return _current.get() if _running[0] else None


def depends_on(tags: Iterable[str]) -> bool:
    """Inside a loader of ``get_or_load`` (or a ``cached`` function's miss): the value being
    loaded depends on ``tags`` too. Call it *before* reading what they stand for: their
    versions are read now, and the entry is stored only if none has moved on when the load
    ends. False when no load is running here (nothing to do)."""
    discovery = _current.get()
    if discovery is None:
        return False
    discovery.add(tags)
    return True


def dont_store() -> bool:
    """Inside a loader: the value being loaded depends on something no tag names (it is
    returned, not stored). False when no load is running here."""
    discovery = _current.get()
    if discovery is None:
        return False
    discovery.storable = False
    return True


def may_depend_on(tags: Iterable[str]) -> bool:
    """Inside a loader: it will likely depend on ``tags`` (what earlier loads of the same
    kind did): their versions are read now, in one round trip, and count only once
    :func:`depends_on` names them. False when no load is running here."""
    discovery = _current.get()
    if discovery is None:
        return False
    discovery.prefetch(tags)
    return True
