"""Finding the code blocks of README.md and docs/*.md, and the environments they run in
(for ``test_doc_snippets.py``).

The conventions a page follows (``docs/index.md`` says the same for authors):

- Every fenced block names its language. ``python``, ``bash``, ``django`` and ``jinja``
  blocks are run; ``text`` (program output, diagrams) and ``mermaid`` (diagrams) are not
  code and are only counted. A block without a language, or in another one, fails the test.
- ``<!-- snippet: setup=NAME -->`` on the line before a block chooses the environment it runs
  in (``SETUPS``); without it a ``python`` block runs in ``core``.
- A ``python`` block runs in a fresh namespace made of its setup's preamble: the names a
  page may use without defining them (``cache``, ``key``, ``loader``, ``SECRET_KEY``, ...).
  Top-level ``await`` is allowed. ``redis://127.0.0.1:6379`` (and, in the ``cluster``
  setup, ``redis+cluster://127.0.0.1:7000``) are replaced by the test servers' addresses.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project's own pages at the root, then the documentation site's.
ROOT_PAGES = ["README.md", "CHANGELOG.md", "CONTRIBUTING.md", "SECURITY.md"]
PAGES = [*(ROOT / name for name in ROOT_PAGES), *sorted((ROOT / "docs").glob("*.md"))]

RUN_LANGUAGES = frozenset({"python", "bash", "django", "jinja"})
NOT_CODE = {
    "text": "program output, benchmark tables and ASCII diagrams: nothing to run",
    "mermaid": "diagrams: checked to start with a known diagram type",
}
SETUPS = {
    "python": {
        "core": "a signed Cache on the test redis-server, and placeholder names",
        "cluster": "as core, on a real Redis Cluster (3 masters, 3 replicas)",
        "django": "the Django test project (tests/django: the shop app) with a database",
        "django-settings": "a settings module: each setting is applied and checked",
        "flask": "Flask, Flask-SQLAlchemy's db and a Product model",
    },
    "bash": {
        "shell": "syntax checked with bash -n; cacheplug commands are run (see the test)",
    },
    "django": {"django": "rendered by Django's template engine in the test project"},
    "jinja": {"flask": "rendered by the Jinja environment of a Flask app with CachePlug"},
}
DEFAULT_SETUP = {"python": "core", "bash": "shell", "django": "django", "jinja": "flask"}

_FENCE = re.compile(r"^(\s*)```(.*)$")
_MARKER = re.compile(r"^<!--\s*snippet:(.*)-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: str
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def setup(self) -> str:
        return self.options.get("setup", DEFAULT_SETUP.get(self.language, ""))

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with their ``snippet:`` options."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, language = opening.group(1), opening.group(2).strip()
        body: list[str] = []
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            body.append(lines[end][len(indent) :] if lines[end].startswith(indent) else lines[end])
            end += 1
        if end == len(lines):
            raise ValueError(f"{path.name}:{index + 1}: a code block that is never closed")
        found.append(
            Block(
                page=str(path.relative_to(ROOT)),
                line=index + 1,
                language=language,
                code=textwrap.dedent("\n".join(body)) + "\n",
                options=_options(lines, index),
            )
        )
        index = end + 1
    return found


def _options(lines: list[str], fence: int) -> dict[str, str]:
    previous = fence - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    if previous < 0:
        return {}
    marker = _MARKER.match(lines[previous].strip())
    if marker is None:
        return {}
    options = {}
    for item in marker.group(1).split():
        name, _, value = item.partition("=")
        options[name] = value
    return options


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page)]
