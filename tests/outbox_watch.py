"""What the outbox crash tests' reading process does, in both adapters: read a value for a
while and keep every value it saw, in order (a repeat is kept once)."""

from __future__ import annotations

import time
from collections.abc import Callable


def watch(
    read: Callable[[], int], seconds: float, after_each: Callable[[], None] = lambda: None
) -> list[int]:
    """The values ``read()`` returned for ``seconds``, every 50 ms, each change once;
    ``after_each`` runs after every read (a Flask app ends its session there)."""
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = read()
        if not seen or seen[-1] != value:
            seen.append(value)
        after_each()
        time.sleep(0.05)
    return seen


def report(read: Callable[[], int], after_each: Callable[[], None] = lambda: None) -> None:
    """Print what was seen within 5 s (the new value must be last), then in 3 s more (it
    must be all): a line each."""
    print(" ".join(map(str, watch(read, 5, after_each))), flush=True)
    print(" ".join(map(str, watch(read, 3, after_each))), flush=True)
