"""Template fragments, for both adapters' ``{% cacheplug %}`` tags: the key, and the guard that
stores a fragment only if rendering it read nothing of the client (``_client_reads``).

A fragment is keyed by its name and the values it varies on, in the reserved key space (see
``_keys``): no application key can read or replace it. A fragment that read the client's
state is shown to that client only: the request that rendered it shows its own text; a
request that waited for it renders its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from cacheplug._keys import ReservedKey
from cacheplug.integration._client_reads import ClientReads, unshared_reason


class _Reader(Protocol):
    def get_or_load(
        self, key: str, loader: Callable[[], Any], ttl: Any = ..., **kw: Any
    ) -> Any: ...


def fragment_key(name: object, vary_on: Iterable[object]) -> ReservedKey:
    """The key of the fragment ``name`` for these vary-on values."""
    vary = "|".join(str(value) for value in vary_on)
    digest = hashlib.blake2b(vary.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return ReservedKey(f"fragment:{name}:{digest}")


class _Unshared(Exception):
    def __init__(self, text: str, owner: object) -> None:
        super().__init__("the fragment read the client's state")
        self.text = text
        self.owner = owner


def fetch_fragment(
    cache: _Reader,
    key: ReservedKey,
    render: Callable[[], tuple[str, ClientReads]],
    ttl: Any,
    **options: Any,
) -> str:
    """The fragment's text: from the cache, or ``render()``'s, stored only if what it read
    (``render`` gives the text and the reads) allows. ``options`` go to ``get_or_load``."""
    rendering = object()  # identifies this call's own rendering

    def load() -> str:
        text, reads = render()
        if unshared_reason(reads) is not None:
            raise _Unshared(text, rendering)
        return text

    try:
        return str(cache.get_or_load(key, load, ttl, **options))
    except _Unshared as unshared:
        # Ours to show if we rendered it; another request's (a waiter's) is not.
        return unshared.text if unshared.owner is rendering else render()[0]
