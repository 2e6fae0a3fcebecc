"""``--watch N`` of the stats commands (``manage.py cacheplug_stats``, ``flask cacheplug
stats``): the report again every N seconds, until Ctrl-C, which ends the watch normally.

On a terminal each refresh replaces the last one (the screen is cleared); anywhere else each
is printed after a header line saying when it was taken, so that a log keeps them all. With
``--json`` each refresh is one JSON document on one line (JSON Lines), without header.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from time import sleep

from cacheplug.integration._operations import OperationError, Write

__all__ = ["watch", "watch_interval"]

CLEAR_SCREEN = "\x1b[H\x1b[2J"
"""Cursor home, then clear the screen (ANSI; every terminal the commands run in)."""


def watch_interval(text: str) -> float:
    """The seconds of ``--watch N``: a number above 0. Raises :class:`ValueError` with the
    message for the user otherwise (each adapter turns it into its usage error)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(
            f"--watch takes the seconds between refreshes, a number above 0 (got {text!r}): "
            "--watch 2 refreshes every 2 seconds"
        )
    return seconds


def watch(
    report: Callable[[], str],
    *,
    every: float,
    out: Write,
    err: Write,
    terminal: bool = False,
    as_json: bool = False,
) -> None:
    """Show ``report()`` every ``every`` seconds until interrupted (``KeyboardInterrupt``:
    Ctrl-C), then return. A refresh that fails with :class:`OperationError` (the store is
    down) is reported on ``err`` and the watch goes on: the next refresh shows it back."""
    try:
        while True:
            taken = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            try:
                text = report()
            except OperationError as exc:
                err(f"{taken}: {exc}")
            else:
                if as_json:
                    out(text)
                else:
                    header = f"every {every:g} s, {taken}; Ctrl-C stops"
                    out(f"{CLEAR_SCREEN}{header}\n{text}" if terminal else f"-- {header}\n{text}\n")
            sleep(every)
    except KeyboardInterrupt:
        return  # how a watch is meant to end: exit 0, no traceback
