"""Tags and namespace versions: what an entry records, and how a read validates it.

Every tag, and every namespace, has a *version key* in the store holding a number. An entry
records the versions of its version keys when it is written (inside the signed record);
invalidating a tag or bumping a namespace increments its number, so every entry recording the
old one reads as a miss — O(1) however many entries carry it. A cache's own namespace is
always among an entry's version keys, which is what makes ``bump()`` a logical flush.

A read fetches the entry and the version keys it expects in one round trip (``MGET``). A
write is conditional on the versions it records still being current (``fill_with_lease`` /
``put`` check them atomically): a load that read the database before an invalidation can
never store what it read. A version key that is absent when a writer reads it is created first
with a fresh random version (``ensure_versions``, set-if-absent); invalidating an absent key
also picks a fresh random version. Versions are therefore never reused, even when a version key is
evicted or expires, and the entries recording it are never mistaken for current.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

from cacheplug._memo import BoundedMemo
from cacheplug.encoding._keys import KeyBuilder, Purpose
from cacheplug.stores.base import VersionCheck

MAX_TAGS: Final = 64
"""Tags per entry (each costs a few bytes in the record and a key in every read)."""

_FRESH_VERSION_BITS: Final = 53  # leaves room for increments below 2**63 (Redis INCR)

Versions = dict[str, int | None]
"""Version key -> its current version, ``None`` where absent (or unreadable)."""

Recorded = tuple[tuple[str, int], ...]
"""What an entry records: ``(version key, version)`` pairs."""


def fresh_version() -> int:
    """A version nobody has used: random, so an evicted version key never repeats one."""
    return secrets.randbits(_FRESH_VERSION_BITS) | 1


def tag_names(tags: str | Iterable[str] | None, most: int | None = MAX_TAGS) -> tuple[str, ...]:
    """``tags`` as a tuple of tag names, checked (a lone string is one tag): at most
    ``most`` of them, the bound of what an entry carries (``None``: no bound, for an
    invalidation, which may name any number: one transaction can write hundreds of rows)."""
    if tags is None:
        return ()
    if isinstance(tags, str):
        return (tags,)
    try:
        names = tuple(tags)
    except TypeError:
        raise TypeError(
            f"tags must be a string or an iterable of strings, not {type(tags).__name__}"
        ) from None
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"tags must be strings, not {type(name).__name__} ({name!r:.60})")
    if most is not None and len(names) > most:
        raise ValueError(f"an entry can carry at most {most} tags, not {len(names)}")
    return names


class VersionKeys:
    """Builds version keys: of tags (shared by a cache and its nested namespaces) and of the
    namespaces an entry of this cache always records."""

    __slots__ = ("_memo", "_root", "_tag_memo", "implicit")

    def __init__(self, root: KeyBuilder, namespaces: Sequence[KeyBuilder]) -> None:
        self._root = root
        self.implicit: tuple[str, ...] = tuple(
            builder.build(Purpose.NAMESPACE, "*") for builder in namespaces
        )
        self._memo: BoundedMemo[tuple[str, ...], tuple[str, ...]] = BoundedMemo(1024)
        self._tag_memo: BoundedMemo[tuple[str, ...], tuple[str, ...]] = BoundedMemo(4096)

    def nested(self, namespace: KeyBuilder) -> VersionKeys:
        """The version keys of a namespace nested in this one."""
        nested = VersionKeys(self._root, ())
        nested.implicit = (*self.implicit, namespace.build(Purpose.NAMESPACE, "*"))
        return nested

    def of_tags(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The version keys of tags ``names`` (memoized, as :meth:`for_entry`)."""
        found = self._tag_memo.get(names)
        if found is None:
            found = tuple(self._root.build(Purpose.TAG, name) for name in names)
            self._tag_memo.remember(names, found)
        return found

    def for_entry(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """Every version key an entry carrying tags ``names`` records (memoized: hot call
        sites pass the same tags again and again)."""
        if not names:
            return self.implicit
        found = self._memo.get(names)
        if found is None:
            found = tuple(dict.fromkeys((*self.implicit, *self.of_tags(names))))
            self._memo.remember(names, found)
        return found


def parse_versions(version_keys: Sequence[str], raws: Sequence[bytes | None]) -> Versions:
    """The versions read for ``version_keys``."""
    versions: Versions = {}
    for key, raw in zip(version_keys, raws, strict=True):
        try:
            versions[key] = None if raw is None else int(raw)
        except ValueError:
            versions[key] = None
    return versions


def unknown(recorded: Recorded, versions: Versions) -> list[str]:
    """The version keys an entry records that were not read."""
    return [key for key, _ in recorded if key not in versions]


def current(recorded: Recorded, versions: Versions) -> bool:
    """True when every version the entry records is the current one (all must be read)."""
    return all(versions.get(key) == version for key, version in recorded)


def checks(
    version_keys: Sequence[str], versions: Versions
) -> tuple[Recorded, list[VersionCheck]] | None:
    """What a write records, and the conditions it is made under (each version as read);
    ``None`` when a version is unknown (make sure they exist first: ``ensure_versions``)."""
    recorded: list[tuple[str, int]] = []
    for key in version_keys:
        version = versions.get(key)
        if version is None:
            return None
        recorded.append((key, version))
    return tuple(recorded), [(key, version, False) for key, version in recorded]


def absent(version_keys: Sequence[str], values: Sequence[bytes | None]) -> list[int]:
    """Positions in ``version_keys`` whose version ``values`` says is absent."""
    return [position for position, value in enumerate(values) if value is None]


class Unread(NamedTuple):
    """An entry records version keys that were not read with it: read these and decide
    again."""

    keys: list[str]


def versions_match(recorded: Recorded, version_keys: Sequence[str], values: list[Any]) -> Any:
    """Whether an entry's recorded versions are current, given ``values[1:]`` read for
    ``version_keys``: True, False, or the list of recorded version keys that were not read."""
    if len(recorded) == len(version_keys):  # the usual case: the same keys, in order
        position = 1
        for (key, version), wanted in zip(recorded, version_keys, strict=True):
            if key != wanted:
                break
            if values[position] != b"%d" % version:
                return False
            position += 1
        else:
            return True
    versions = parse_versions(version_keys, values[1:])
    missing = [key for key, _ in recorded if key not in versions]
    if missing:
        return missing
    return all(versions[key] == version for key, version in recorded)
