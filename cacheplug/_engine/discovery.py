"""Dependencies a load discovers while it runs: what ``depends_on="auto"`` is built on.

A fill records the versions of the tags it was given, read after taking the lease and before
the loader runs, and stores its value only if they are still current: a load that read the
database before an invalidation never stores what it read. A loader that learns what it
depends on only as it reads (the ORM adapters see each ``SELECT`` go by) calls
:func:`depends_on` *before* each read: the versions of those tags are read then, ahead of the
data they stand for, and the fill records them and stores under them as it does for its own
(:class:`Discovery`). An invalidation between that version read and the fill's store makes
the store refuse, as for a declared tag.

A tag whose every invalidation also moves another tag, its *guard*, at the same instant (a
row's tag and its table's: the ORM adapters invalidate both at once) need not be read before
its data: ``depends_on(rows, guarded_by=[table])`` reads the guard's version now and the
rows' when the loader returns, all in one round trip. The entry depends on the rows only
(a write to another row leaves it); the guard is a condition of the store: a write to the
table while the load ran refuses it, so a row version read late, after a write the data
predates, is never stored. Only a store whose bumps move all their keys together
(``Store.bumps_together``) allows this; elsewhere the versions are read at once.

A loader with a ``read_ahead()`` method (the adapters' recording loaders have one) names the
tags it will likely depend on before it runs: on a shared store their versions are read with
the fill's own, in the same round trip, and count once :func:`depends_on` names them.

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

    __slots__ = (
        "_ahead",
        "_deferred",
        "_engine",
        "_known",
        "_mark",
        "_near",
        "_prefetched",
        "ahead_keys",
        "ahead_tags",
        "guards",
        "parent",
        "storable",
        "versions",
    )

    def __init__(
        self,
        engine: EngineState,
        known: Iterable[str] = (),
        near: str | None = None,
        loader: object = None,
    ) -> None:
        self._engine = engine
        self._known = frozenset(known)  # version keys the fill records anyway
        self._near = near  # the entry's key (a store keeping copies of versions needs it)
        self._prefetched: dict[str, int] = {}  # read ahead (may_depend_on), not yet used
        self.parent: Discovery | None = None  # the load this one runs inside, if any
        self.versions: dict[str, int] = {}
        self.guards: dict[str, int] = {}  # checked when the fill stores, not recorded
        # Version keys read when the loader returns, each with the keys of its guards.
        self._deferred: dict[str, tuple[str, ...]] = {}
        self.storable = True
        """False once a version could not be read (the store failed) or there were too many:
        the value is returned, not stored."""
        # A store logging its bumps (in process) lets every version wait for the loader's
        # end: read then, they are the ones read before the data unless the log shows a bump
        # since the load began (then the value is not stored).
        self._mark = engine._store.version_mark()
        self.ahead_keys: tuple[str, ...] = ()
        """Version keys to read with the fill's own (the loader's ``read_ahead()``)."""
        self.ahead_tags: frozenset[str] = frozenset()
        """The tags whose versions were read before the loader started (see
        :func:`tags_read_ahead`)."""
        self._ahead: tuple[tuple[str, str], ...] = ()  # (tag, version key) read ahead
        read_ahead = getattr(loader, "read_ahead", None)
        if read_ahead is not None and engine._store.shared:
            tags = tag_names(read_ahead())
            pairs = tuple(zip(tags, engine._versions.of_tags(tags), strict=True))
            self._ahead = pairs
            known = self._known
            self.ahead_keys = tuple(dict.fromkeys(key for _, key in pairs if key not in known))
            # The fill's own versions are read before the loader too.
            self.ahead_tags = frozenset(tag for tag, key in pairs if key in known)

    def ahead_read(self, raws: list[Any]) -> None:
        """What the fill read for :attr:`ahead_keys` (absent ones are read when named)."""
        prefetched = self._prefetched
        for key, version in parse_versions(self.ahead_keys, raws).items():
            if version is not None:
                prefetched[key] = version
        self.ahead_tags = self.ahead_tags | {tag for tag, key in self._ahead if key in prefetched}

    def _new_keys(self, tags: Iterable[str]) -> list[str]:
        return [
            key
            for key in self._engine._versions.of_tags(tag_names(tags))
            if key not in self._known and key not in self.versions and key not in self._deferred
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

    def add(self, tags: Iterable[str], guarded_by: Iterable[str] = ()) -> None:
        """Read the versions of ``tags`` not seen yet (creating absent ones); with guards, and
        a store whose bumps move their keys together, read the guards' instead and ``tags``'
        when the loader returns."""
        of_tags = self._engine._versions.of_tags
        if self._mark is not None:  # nothing to read now
            # The same statements name the same tags load after load: the keys are memoized.
            tag_keys = of_tags(tag_names(tags))
            deferred = self._deferred
            if guarded_by:
                guard_keys = of_tags(tag_names(guarded_by))
                for key in tag_keys:
                    deferred.setdefault(key, guard_keys)
            else:
                deferred.update(dict.fromkeys(tag_keys, ()))
            return
        keys = self._new_keys(tags)
        if not keys or not self.storable:
            return
        if len(self.versions) + len(self._deferred) + len(keys) > MAX_DISCOVERED:
            self.storable = False
            return
        if guarded_by and self._engine._store.bumps_together:
            guard_keys = of_tags(tag_names(guarded_by))
            guards = [
                key
                for key in guard_keys
                if key not in self._known and key not in self.guards and key not in self.versions
            ]
            found = self._read(guards)
            if found is not None:
                self.guards.update(found)
                self._deferred.update(dict.fromkeys(keys, guard_keys))
            return
        found = self._read(keys)
        if found is not None:
            self.versions.update(found)

    def _read(self, keys: list[str]) -> dict[str, int] | None:
        """The versions of ``keys``, read ahead or now; None (and not storable) when the
        store failed."""
        # A version read earlier than needed is as good: what it stands for was read later.
        known = self.guards
        prefetched = self._prefetched
        missing = [key for key in keys if key not in prefetched and key not in known]
        found = self._current_versions(missing) if missing else {}
        if found is None:
            self.storable = False
            return None
        return {
            key: known[key]
            if key in known
            else prefetched.pop(key)
            if key in prefetched
            else found[key]
            for key in keys
        }

    def settle(self) -> None:
        """Read the versions of the tags whose reading was put off (the loader has returned)."""
        if not self._deferred:
            return
        deferred = self._deferred
        self._deferred = {}
        known, versions = self._known, self.versions
        # A tag whose guards the entry depends on adds nothing: whatever invalidates it
        # invalidates one of them (a row's tag, where the load read the whole table too).
        depended = {key for key, guards in deferred.items() if not guards}
        keys = [
            key
            for key, guards in deferred.items()
            if key not in known
            and key not in versions
            and not (
                guards
                and all(
                    guard in versions or guard in known or guard in depended for guard in guards
                )
            )
        ]
        if len(self.versions) + len(keys) > MAX_DISCOVERED:
            self.storable = False
        if not self.storable:
            return
        found = self._read(keys)
        if found is None:
            return
        # All of them, also those a nested hit passed on meanwhile: its version may be newer
        # than what this loader read before it.
        if (
            self._mark is not None
            and self._engine._store.moved_since(self._mark, list(deferred)) is not False
        ):
            self.storable = False  # a bump since the load began: the versions read may be newer
            return
        self.versions.update(found)

    @property
    def reads_at_end(self) -> bool:
        """True when every version this load needs is read when its loader returns (its
        store logs its bumps): the loader may name its tags any time before then."""
        return self._mark is not None

    def absorb(
        self, recorded: Recorded, storable: bool = True, guards: dict[str, int] | None = None
    ) -> None:
        """What a nested load discovered, or a hit's entry records: versions already read
        (and the guards a nested load stores under: they hold for this value too)."""
        if not storable:
            self.storable = False
        for key, version in recorded:
            if key not in self._known:
                self.versions.setdefault(key, version)
        if guards:
            for key, version in guards.items():
                if key not in self._known:
                    self.guards.setdefault(key, version)
        if len(self.versions) > MAX_DISCOVERED:
            self.storable = False

    def recorded(self) -> tuple[Recorded, list[VersionCheck]]:
        """What the fill records for the discovered tags, and the checks it stores under."""
        pairs = tuple(self.versions.items())
        checks: list[VersionCheck] = [(key, version, False) for key, version in pairs]
        checks += [
            (key, version, False)
            for key, version in self.guards.items()
            if key not in self.versions
        ]
        return pairs, checks

    def run(self, loader: Callable[[], Any]) -> Callable[[], Any]:
        """``loader`` run with this discovery current."""

        def discovering() -> Any:
            parent = self.parent = self._enter()
            token = _current.set(self)
            try:
                value = loader()
                self.settle()
                return value
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
                self.settle()
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
            parent.absorb(tuple(self.versions.items()), self.storable, self.guards)
