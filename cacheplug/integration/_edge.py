"""The edge tier: the headers that let an edge cache (a CDN, Varnish) hold a shared page, and
the short keys both those headers and a purge name.

Why keys and not tags: a page's tags name tables, rows, paths and views, and may be long or
hold characters a header list cannot (a space splits a ``Surrogate-Key`` list). An edge key is
a short hash of one *version key*: the store key of a tag's (or the namespace's) version that
the page's entry is checked against (:meth:`cacheplug.Cache.version_keys`). When that version
moves, :meth:`cacheplug.Cache.on_landed` reports the same version key, so the page's header
and the purge after the invalidation name the same edge key without either side knowing the
other's tags; the namespace is in every version key, so two applications behind one edge
never purge each other's pages; and the header carries nothing of the data to the client.

A page is given to the edge only when it may be shared at all (the adapters call this for a
page the shared-page rules let them store) and when its keys fit in :data:`MAX_KEYS_BYTES`
(under the 8 KB Varnish allows a header by default, and Fastly's and Cloudflare's 16 KB):
a page whose keys do not fit is not marked for the edge, rather than marked with some of
them, which a purge could then miss.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cacheplug._redact import redact
from cacheplug.exceptions import ConfigurationError
from cacheplug.integration._page_records import Page

HEADER_STYLES: Final = {
    "surrogate-key": ("Surrogate-Key", " "),  # Fastly (and Varnish's VCL in example_project)
    "cache-tag": ("Cache-Tag", ","),  # Cloudflare
    "xkey": ("xkey", " "),  # Varnish's vmod_xkey
}
"""The header styles: ``style -> (header name, separator of its keys)``."""

PURGE_MODES: Final = ("xkey", "ban", "http")
"""How purges reach ``PURGE_URL``: ``xkey`` (Varnish with vmod_xkey: ``PURGE`` with an
``xkey-purge`` header), ``ban`` (any Varnish: ``BAN`` with that header), or ``http`` (a
``PURGE`` with the keys in the ``HEADER`` style's own header, for an endpoint of one's
own)."""

MAX_KEYS_BYTES: Final = 7000
"""The longest keys header a page is given to the edge with."""

EDGE_KEYS: Final = (
    "HEADER",
    "S_MAXAGE",
    "STALE_WHILE_REVALIDATE",
    "SURROGATE_CONTROL",
    "PURGE_URL",
    "PURGE",
)
EDGE_HINT: Final = (
    "Use a dict (keys in any case): HEADER 'surrogate-key' (the default), 'cache-tag' or "
    "'xkey'; S_MAXAGE seconds the edge keeps a page (default 3600); STALE_WHILE_REVALIDATE "
    "seconds it may serve one expired while it fetches it again (default 60); "
    "SURROGATE_CONTROL True to send Surrogate-Control too (default False); PURGE_URL the "
    "Varnish (or purge endpoint) URL purges go to (default None: no purges); PURGE 'xkey' "
    "(the default), 'ban' or 'http'. Or None: no edge headers."
)
_KEY_ALPHABET: Final = re.compile(r"[a-z2-7]+")


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """The ``EDGE`` setting, checked."""

    header: str = "surrogate-key"
    s_maxage: int = 3600
    stale_while_revalidate: int = 60
    surrogate_control: bool = False
    purge_url: str | None = None
    purge: str = "xkey"


def edge_settings(value: Any) -> EdgeSettings | None:
    """The ``EDGE`` setting ``value``: ``None`` (off), or a dict of :data:`EDGE_KEYS` (in any
    case, each optional). Raises :class:`~cacheplug.ConfigurationError` naming every
    problem."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigurationError(f"must be a dict (or None), not {type(value).__name__}")
    given = {str(key).upper(): (key, item) for key, item in value.items()}
    problems = [
        f"has an unknown key {key!r}" for upper, (key, _) in given.items() if upper not in EDGE_KEYS
    ]
    defaults = EdgeSettings()
    header = given.get("HEADER", (None, defaults.header))[1]
    if header not in HEADER_STYLES:
        problems.append(
            f"HEADER must be one of {', '.join(map(repr, HEADER_STYLES))}, not {header!r}"
        )
    seconds = {}
    for name, default in (
        ("S_MAXAGE", defaults.s_maxage),
        ("STALE_WHILE_REVALIDATE", defaults.stale_while_revalidate),
    ):
        found = given.get(name, (None, default))[1]
        if isinstance(found, bool) or not isinstance(found, int) or found < 0:
            problems.append(f"{name} must be whole seconds >= 0, not {found!r}")
        seconds[name] = found
    surrogate = given.get("SURROGATE_CONTROL", (None, defaults.surrogate_control))[1]
    if not isinstance(surrogate, bool):
        problems.append(f"SURROGATE_CONTROL must be True or False, not {surrogate!r}")
    purge_url = given.get("PURGE_URL", (None, None))[1]
    if purge_url is not None and (
        not isinstance(purge_url, str) or not purge_url.startswith(("http://", "https://"))
    ):
        problems.append(
            "PURGE_URL must be an http:// or https:// URL (or None), not "
            f"{redact(str(purge_url))!r}"
        )
    purge = given.get("PURGE", (None, defaults.purge))[1]
    if purge not in PURGE_MODES:
        problems.append(f"PURGE must be one of {', '.join(map(repr, PURGE_MODES))}, not {purge!r}")
    if problems:
        raise ConfigurationError("; ".join(problems))
    return EdgeSettings(
        str(header),
        int(seconds["S_MAXAGE"]),
        int(seconds["STALE_WHILE_REVALIDATE"]),
        bool(surrogate),
        purge_url,
        str(purge),
    )


def edge_key(version_key: str) -> str:
    """The edge key of one version key: 13 characters of ``[a-z2-7]`` (64 bits of BLAKE2b:
    two of a site's version keys sharing one would make a purge drop a page more, never
    keep one)."""
    digest = hashlib.blake2b(version_key.encode(), digest_size=8).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()


def edge_keys(version_keys: Iterable[str]) -> list[str]:
    """The edge keys of ``version_keys``, in order, each once."""
    return list(dict.fromkeys(edge_key(key) for key in version_keys))


def is_edge_key(text: str) -> bool:
    """True for a string :func:`edge_key` could have made (what purgers accept)."""
    return len(text) == 13 and _KEY_ALPHABET.fullmatch(text) is not None


def edge_headers(
    settings: EdgeSettings, version_keys: Sequence[str], cache_control: str | None = None
) -> list[tuple[str, str]] | None:
    """The headers that give a shareable page to the edge, for a page whose entry is checked
    against ``version_keys``; ``cache_control``: the page's own ``Cache-Control``, if any
    (its directives are kept; an ``s-maxage`` of its own wins). ``None`` when the keys do
    not fit in :data:`MAX_KEYS_BYTES`: the page is then left to the app."""
    name, separator = HEADER_STYLES[settings.header]
    keys = separator.join(edge_keys(version_keys))
    if len(keys) > MAX_KEYS_BYTES:
        return None
    headers = [("Cache-Control", _shared_cache_control(settings, cache_control)), (name, keys)]
    if settings.surrogate_control:
        headers.append(("Surrogate-Control", f"max-age={settings.s_maxage}"))
    return headers


def _shared_cache_control(settings: EdgeSettings, own: str | None) -> str:
    directives = [part.strip() for part in (own or "").split(",") if part.strip()]
    names = {part.split("=", 1)[0].strip().lower() for part in directives}
    if "public" not in names:
        directives.insert(0, "public")
    if "s-maxage" not in names:
        directives.append(f"s-maxage={settings.s_maxage}")
    if "stale-while-revalidate" not in names and settings.stale_while_revalidate:
        directives.append(f"stale-while-revalidate={settings.stale_while_revalidate}")
    return ", ".join(directives)


def page_for_edge(page: Page, settings: EdgeSettings, version_keys: Sequence[str]) -> Page:
    """``page`` with the headers of :func:`edge_headers` (its ``Cache-Control`` replaced by
    the merged one); ``page`` itself when its keys do not fit."""
    own = next((value for name, value in page.headers if name.lower() == "cache-control"), None)
    added = edge_headers(settings, version_keys, own)
    if added is None:
        return page
    replaced = {name.lower() for name, _ in added}
    kept = tuple(header for header in page.headers if header[0].lower() not in replaced)
    return Page(page.status, (*kept, *added), page.body, page.etag, page.complete, page.varies)


EDGE_HEADER_NAMES: Final = frozenset(
    {"cache-control", "surrogate-control", *(name.lower() for name, _ in HEADER_STYLES.values())}
)
"""The headers :func:`edge_headers` sets (a 304 repeats them too)."""


def edge_part(page: Page) -> tuple[tuple[str, str], ...]:
    """The edge's headers of a page :func:`page_for_edge` made (none for another page): what
    the response a request rendered itself is sent with, in place of its own."""
    headers = page.headers
    names = {name.lower() for name, _ in headers}
    if not names & {name.lower() for name, _ in HEADER_STYLES.values()}:
        return ()
    return tuple(header for header in headers if header[0].lower() in EDGE_HEADER_NAMES)
