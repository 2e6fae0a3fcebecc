"""Template fragments, for both adapters' ``{% cacheplug %}`` tags: the key, and the guard that
stores a fragment only if rendering it read nothing of the client (``_client_reads``).

A fragment is keyed by its name and the values it varies on, in the reserved key space (see
``_keys``): no application key can read or replace it. A fragment that read the client's
state is shown to that client only: the request that rendered it shows its own text; a
request that waited for it renders its own. A fragment whose text holds the client's CSRF
token is not shared either, even when the token was made before the fragment rendered.

Both tags take the same options (:data:`FRAGMENT_OPTIONS`), checked here the same way
(:func:`fragment_options`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from cacheplug._types import DEFAULT
from cacheplug.encoding._keys import ReservedKey
from cacheplug.exceptions import ConfigurationError
from cacheplug.integration._capture import AUTO
from cacheplug.integration._client_reads import ClientReads, unshared_reason

FRAGMENT_OPTIONS: Final = ("depends_on", "tags", "stale_ttl")
"""The keyword options of every adapter's ``{% cacheplug %}`` tag."""


class _Reader(Protocol):
    def get_or_load(
        self, key: str, loader: Callable[[], Any], ttl: Any = ..., **kw: Any
    ) -> Any: ...


def fragment_key(name: object, vary_on: Iterable[object]) -> ReservedKey:
    """The key of the fragment ``name`` for these vary-on values."""
    vary = "|".join(str(value) for value in vary_on)
    digest = hashlib.blake2b(vary.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return ReservedKey(f"fragment:{name}:{digest}")


@dataclass(frozen=True, slots=True)
class FragmentOptions:
    """A fragment tag's options, checked: what ``fetch_fragment`` passes to ``get_or_load``."""

    ttl: Any
    stale_ttl: Any
    tags: tuple[str, ...]
    depends_on: tuple[Any, ...]
    """As given (model names or classes): each adapter resolves its models; ``("auto",)``:
    what the fragment reads (:func:`depends_on_of`)."""


def _listed(value: Any) -> tuple[Any, ...]:
    if value == AUTO:
        return (AUTO,)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, Iterable):
        return tuple(value)
    return (value,)


def depends_on_of(options: FragmentOptions, resolve: Callable[[Any], Any]) -> Any:
    """What a fragment passes as ``depends_on``: ``"auto"``, or its models, each through the
    adapter's ``resolve``."""
    if options.depends_on == (AUTO,):
        return AUTO
    return [resolve(model) for model in options.depends_on]


def fragment_options(
    ttl: Any, *, stale_ttl: Any = DEFAULT, tags: Any = (), depends_on: Any = ()
) -> FragmentOptions:
    """A ``{% cacheplug %}`` tag's options as resolved when it renders: ``ttl`` a number of
    seconds (or a string of one) or ``None`` (the cache's default); ``stale_ttl`` likewise;
    ``tags`` and ``depends_on`` lists or comma-separated strings. Raises
    :class:`~cacheplug.ConfigurationError`."""
    checked: list[Any] = []
    for name, value, least in (("ttl", ttl, "> 0"), ("stale_ttl", stale_ttl, ">= 0")):
        if value is None or value is DEFAULT:
            checked.append(DEFAULT)
            continue
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            number = None
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or not (number > 0 if name == "ttl" else number >= 0)
        ):
            raise ConfigurationError(
                f"{{% cacheplug %}} {name} must be a number of seconds {least} or None, "
                f"not {value!r}"
            )
        checked.append(number)
    return FragmentOptions(
        ttl=checked[0],
        stale_ttl=checked[1],
        tags=tuple(str(tag) for tag in _listed(tags)),
        depends_on=_listed(depends_on),
    )


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
    *,
    csrf_token: Callable[[], str | None] = lambda: None,
    signed_in: bool = False,
    **options: Any,
) -> str:
    """The fragment's text: from the cache, or ``render()``'s, stored only if what it read
    (``render`` gives the text and the reads) allows. ``csrf_token``: the client's token if
    one was made already (without making one); a text holding it is not stored.
    ``signed_in``: the current user was worked out before the fragment and is logged in;
    then whether the fragment reads it cannot be seen, and a stored text (made for somebody
    else, an anonymous client say) is not theirs: they get their own, which is not stored.
    ``options`` go to ``get_or_load``."""
    if signed_in:
        return render()[0]
    rendering = object()  # identifies this call's own rendering

    def load() -> str:
        text, reads = render()
        token = csrf_token()
        if token and token in text:
            reads = reads | ClientReads(csrf_token=True)
        if unshared_reason(reads) is not None:
            raise _Unshared(text, rendering)
        return text

    try:
        return str(cache.get_or_load(key, load, ttl, **options))
    except _Unshared as unshared:
        # Ours to show if we rendered it; another request's (a waiter's) is not.
        return unshared.text if unshared.owner is rendering else render()[0]
