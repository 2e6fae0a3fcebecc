"""What a loader calls while it runs (:func:`depends_on` and its kin), and where the load
running here is (the :class:`~cacheplug._engine.discovery.Discovery` it set as current).

Apart from the discovery itself because these are the loader's side: one context variable
lookup each, and nothing to do outside a load.
"""

from __future__ import annotations

from collections.abc import Iterable

from cacheplug._engine.discovery import Discovery, _current, _running

__all__ = [
    "current",
    "depends_on",
    "depends_on_later",
    "dont_store",
    "loading",
    "may_depend_on",
    "tags_read_ahead",
]


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


def depends_on(tags: Iterable[str], guarded_by: Iterable[str] = ()) -> bool:
    """Inside a loader of ``get_or_load`` (or a ``cached`` function's miss): the value being
    loaded depends on ``tags`` too. Call it *before* reading what they stand for: their
    versions are read now, and the entry is stored only if none has moved on when the load
    ends. False when no load is running here (nothing to do).

    ``guarded_by``: tags at least one of which every invalidation of ``tags`` also
    invalidates, at the same instant (a row's table). Their versions are read now and
    ``tags``' when the loader returns (one round trip for all a load names this way); the
    entry is stored only if the guards have not moved on either, but depends on ``tags``
    alone."""
    discovery = _current.get()
    if discovery is None:
        return False
    discovery.add(tags, guarded_by)
    return True


def tags_read_ahead() -> frozenset[str]:
    """Inside a loader: the tags whose versions its load read before the loader started
    (those its ``read_ahead()`` named that exist, and the load's own): :func:`depends_on`
    may name them any time before the loader returns, to the same effect. Empty when no load
    is running here."""
    discovery = _current.get()
    return frozenset() if discovery is None else discovery.ahead_tags


def depends_on_later() -> bool:
    """Inside a loader: True when its load reads no version ahead of the data (its store logs
    its version bumps, as the in-process store does): :func:`depends_on` may then be called
    for the whole load just before the loader returns, to the same effect. False when no
    load is running here, or its store needs each call before the read it stands for."""
    discovery = _current.get()
    return discovery is not None and discovery.reads_at_end


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
