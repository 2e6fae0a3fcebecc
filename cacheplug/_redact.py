"""The one redaction function: every store ``repr``, log line, error message and command
output that can hold a store URL goes through :func:`redact` before anyone sees it.

It works on text, not on a parsed URL, because what must be redacted is often not a valid
URL (a typo in a setting, a password with an unencoded ``@`` or ``/``) and is sometimes a
URL quoted inside a longer message. Over-redacting (hiding a host that followed an ``@``
in a query value) is accepted; letting one character of a secret through is not.
"""

from __future__ import annotations

import re
from typing import Final

MASK: Final = "***"

# A query parameter is secret when its name says so: ``password``, ``sentinel_password``,
# ``ssl_password``, ``token``, ``auth``, ``secret``, ``credential...``.
# The value runs to the next ``&`` that starts another ``name=value`` pair: a password with
# an unencoded ``#``, ``;`` or ``&`` is hidden in full.
_SECRET_PARAMETER: Final = re.compile(
    r"(?P<name>(?:^|(?<=[?&;]))[^=&?#;]*(?:pass|secret|token|auth|credential)[^=&?#;]*=)"
    r"(?P<value>[^&]*(?:&[^&=]*(?=&|$))*)",
    re.IGNORECASE,
)
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_SPACE: Final = re.compile(r"(\s+)")


def redact(text: str) -> str:
    """``text`` with the secrets of every URL in it replaced by ``***``.

    ``text`` may be a URL (``redis://user:secret@host:6379/0``), a ``repr`` or a message
    quoting one or several URLs, or a malformed URL. What is hidden:

    - the password of the userinfo (``user:***@host``), or the whole userinfo when it has no
      ``:`` (``redis://secret@host`` is how many people write a password): everything up to
      the last ``@`` of a URL counts as userinfo, so a password holding ``@``, ``/`` or ``?``
      unencoded is hidden in full, and in a Sentinel or Cluster URL naming several hosts
      (``redis+sentinel://:secret@h1:26379,h2:26379/mymaster``) too;
    - the value of every query parameter whose name holds ``pass``, ``secret``, ``token``,
      ``auth`` or ``credential`` (``?password=``, ``?sentinel_password=``,
      ``?ssl_password=``).

    Anything else (scheme, host, port, database, other options) is kept, so the message
    still says which server it is about.
    """
    if "@" not in text and "=" not in text:
        return text  # the common case (no credentials anywhere): nothing to scan
    if _SCHEME.match(text):
        # A URL on its own (what the stores pass): one piece, even if a password holds a
        # space that was not percent-encoded.
        return _redact_word(text)
    return "".join(
        _redact_word(word) if word and not word.isspace() else word for word in _SPACE.split(text)
    )


def _redact_word(word: str) -> str:
    """One whitespace-free piece of text: a URL, a quoted URL, or anything else."""
    found = _SCHEME.search(word)
    # What comes before the scheme (a quote, a bracket) is kept apart from the userinfo,
    # unless it holds an ``@`` itself: then the whole word is treated as one malformed URL.
    start = found.end() if found is not None and "@" not in word[: found.start()] else 0
    head, rest = word[:start], word[start:]
    at = rest.rfind("@")
    if at >= 0:
        # Without a scheme (``user:secret@host``, or a typo like ``redis:/:secret@host``) the
        # piece kept is still the one before the first ``:``, which holds none of the secret.
        user, has_password, _ = rest[:at].partition(":")
        rest = (f"{user}:{MASK}" if has_password else MASK) + rest[at:]
    return head + _SECRET_PARAMETER.sub(rf"\g<name>{MASK}", rest)
