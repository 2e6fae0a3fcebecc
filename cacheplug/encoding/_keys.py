"""Turning user keys into store keys.

A store key is ``<namespace>:<key format version>:<purpose>:{<user key>}``. The parts make
keys of different namespaces and purposes (data, lease, tag, lock, namespace version)
impossible to confuse, and the braces are a Redis Cluster hash tag: an entry and its lease
always share a slot. (A namespace's *version* is not part of its keys: it is a counter,
checked on every read like a tag; see ``_tags``.)

User keys that are longer than ``MAX_USER_KEY_BYTES``, contain anything but printable ASCII
without spaces, or would give an empty hash tag are hashed with BLAKE2b; a sanitized prefix is
kept so that the key still reads well in ``redis-cli``. Hashed keys carry a ``#`` after the
purpose, so a user key can never collide with another key's hashed form. Every produced key is
printable ASCII without whitespace and at most 250 bytes: valid for Redis and memcached alike.

Entries the library keeps for itself (shared pages, template fragments) live in a *reserved*
key space that no application key can name: their keys are :class:`ReservedKey` objects, which
are always stored in the hashed form with a digest of another domain (BLAKE2b personalised
with ``_RESERVED_PERSON``). A string passed to ``get``/``set``/``delete`` is an application
key whatever it holds ("page:...", "fragment:...", the readable prefix of a reserved store
key): its store key carries the digest of its own domain, so it can neither read nor replace a
reserved entry. A ``ReservedKey`` is also unequal to the ``str`` of the same characters, so
nothing keyed by user key in process (memos, hot-key counts) mixes the two either.
"""

from __future__ import annotations

import enum
import hashlib
import re
from typing import Final

from cacheplug._memo import BoundedMemo
from cacheplug.exceptions import ConfigurationError

MAX_USER_KEY_BYTES: Final = 200
MAX_NAMESPACE_CHARS: Final = 31
MAX_NAMESPACE_VERSION: Final = 10**12 - 1
_READABLE_PREFIX_CHARS: Final = 64
_DIGEST_BYTES: Final = 20
_RESERVED_PERSON: Final = b"cacheplug:rsvd"

_NAMESPACE_RE: Final = re.compile(rf"[A-Za-z0-9_.\-]{{1,{MAX_NAMESPACE_CHARS}}}\Z")
_NESTED_NAME_RE: Final = re.compile(r"[A-Za-z0-9_\-]+\Z")
_NESTED_PATH_RE: Final = re.compile(rf"[A-Za-z0-9_.\-/]{{1,{MAX_NAMESPACE_CHARS}}}\Z")
_UNREADABLE_RE: Final = re.compile(r"[^\x21-\x7a\x7c\x7e]")  # not printable ASCII, or { }


class Purpose(enum.Enum):
    """What a store key holds; the value is the marker written into the key."""

    DATA = "d"
    LEASE = "l"
    TAG = "t"
    LOCK = "k"
    NAMESPACE = "n"
    KEY_VERSION = "v"  # bumped when a replicated key is invalidated (see stores/_cluster_copies)
    STATS = "s"  # counters shared by the processes of a cache (see ``_shared_stats``)
    WRITES = "w"  # a key's write-through counter (see ``_writes``)
    QUEUE = "q"  # a write-behind queue (see ``_write_behind``)


class ReservedKey(str):
    """The key of an entry the library keeps for itself (a page, a fragment): stored where no
    application key can reach (see the module docstring). Build it only in library code."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is ReservedKey and str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    # str's own hash (C speed: a page key is looked up several times a hit). Equal hashes
    # with the same characters as a str key only meet in a dict's probe, where __eq__ above
    # (a subclass's, so Python asks it first) keeps them apart.
    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return f"ReservedKey({str.__repr__(self)})"


def check_key(key: object) -> str:
    """Return ``key`` if it is a string, else raise a ``TypeError`` that says what to do."""
    if isinstance(key, str):
        return key
    raise TypeError(
        f"cache keys must be str, not {type(key).__name__} ({key!r:.60}); "
        "format the key yourself, e.g. f'user:{user_id}'"
    )


def is_plain(key: str) -> bool:
    """True when ``key`` can be used as it is (no hashing needed)."""
    return (
        0 < len(key) <= MAX_USER_KEY_BYTES
        and key.isascii()
        and key.isprintable()
        and " " not in key
        and key[0] != "}"
    )


def hashed_form(key: str) -> str:
    """The ``readable-prefix~digest`` form of a key that cannot be used as it is (of a
    :class:`ReservedKey`: with the digest of the reserved domain, whatever it holds)."""
    readable = _UNREADABLE_RE.sub("_", key[:_READABLE_PREFIX_CHARS])
    person = _RESERVED_PERSON if type(key) is ReservedKey else b""
    digest = hashlib.blake2b(
        key.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_BYTES, person=person
    ).hexdigest()
    return f"{readable}~{digest}"


class KeyBuilder:
    """Builds the store keys of one namespace at one namespace version (immutable)."""

    __slots__ = (
        "_data_keys",
        "_hashed_prefixes",
        "_plain_prefixes",
        "data_keys",
        "namespace",
        "version",
    )

    def __init__(self, namespace: str, version: int = 0, *, nested: bool = False) -> None:
        pattern = _NESTED_PATH_RE if nested else _NAMESPACE_RE
        if not isinstance(namespace, str) or not pattern.match(namespace):
            raise ConfigurationError(
                f"namespace {namespace!r} is not valid: use 1 to {MAX_NAMESPACE_CHARS} "
                "characters from A-Z a-z 0-9 _ . -"
            )
        if not 0 <= version <= MAX_NAMESPACE_VERSION:
            raise ConfigurationError(f"namespace version {version} is out of range")
        self.namespace = namespace
        self.version = version
        self._plain_prefixes = {p: f"{namespace}:{version}:{p.value}:{{" for p in Purpose}
        self._hashed_prefixes = {p: f"{namespace}:{version}:{p.value}#:{{" for p in Purpose}
        # Hot keys repeat: remembering recent data keys saves the checks and the hashing.
        self._data_keys: BoundedMemo[str, str] = BoundedMemo()
        self.data_keys: dict[str, str] = self._data_keys
        """The store keys :meth:`data` built lately, by user key (read-only; a key not in it
        may still be valid: ask :meth:`data`)."""

    def build(self, purpose: Purpose, key: str) -> str:
        """The store key for ``key`` with the given purpose."""
        check_key(key)
        if is_plain(key) and type(key) is not ReservedKey:
            return self._plain_prefixes[purpose] + key + "}"
        return self._hashed_prefixes[purpose] + hashed_form(key) + "}"

    def data(self, key: str) -> str:
        """The store key of a cached value (the hot path, kept short)."""
        try:
            return self._data_keys[key]  # a ReservedKey never equals a str key: no mix-up
        except (KeyError, TypeError):
            pass
        built = self.build(Purpose.DATA, key)
        if type(key) is str or type(key) is ReservedKey:
            self._data_keys.remember(key, built)
        return built

    def lease_of(self, data_key: str) -> str:
        """The lease key of a data key built here: same user key (so the same hash slot),
        another purpose."""
        return self._sibling(data_key, Purpose.LEASE)

    def key_version_of(self, data_key: str) -> str:
        """The key version of a data key built here (what replicas of the entry record)."""
        return self._sibling(data_key, Purpose.KEY_VERSION)

    def writes_of(self, data_key: str) -> str:
        """The write-through counter of a data key built here (same hash slot)."""
        return self._sibling(data_key, Purpose.WRITES)

    def _sibling(self, data_key: str, purpose: Purpose) -> str:
        marker = self._plain_prefixes[Purpose.DATA][:-2]  # "<namespace>:<version>:d"
        if not data_key.startswith(marker):
            raise ValueError(f"{data_key!r} is not a data key of namespace {self.namespace!r}")
        return marker[:-1] + purpose.value + data_key[len(marker) :]

    def child(self, name: str) -> KeyBuilder:
        """The builder of the namespace ``name`` nested in this one (``<this>/<name>``: no
        namespace a cache is given can look like that, since those cannot contain ``/``)."""
        if not isinstance(name, str) or not _NESTED_NAME_RE.match(name):
            raise ConfigurationError(
                f"namespace name {name!r} is not valid: use characters from A-Z a-z 0-9 _ -"
            )
        return KeyBuilder(f"{self.namespace}/{name}", self.version, nested=True)

    def data_many(self, keys: list[str]) -> list[str]:
        """:meth:`data` for each of ``keys``."""
        memo = self._data_keys
        data = self.data
        try:
            return [memo.get(key) or data(key) for key in keys]
        except TypeError:  # an unhashable key: data() gives the helpful error
            return [data(key) for key in keys]
