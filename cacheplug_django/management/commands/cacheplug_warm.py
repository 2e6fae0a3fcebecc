"""``manage.py cacheplug_warm [--only NAME ...] [--workers N] [--dry-run] [--json]``: run the
registered cache warmers (see ``cacheplug_django.warmers``).

Verbosity: ``-v 0`` prints only failures (and the ``--json`` document, when asked for),
``-v 1`` a line per warmer and the summary, ``-v 2`` also each warmer's start and time. At
a terminal a status line shows the run's progress.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import connections

from cacheplug.integration import OperationError, WarmProgress, WarmReport, store_checked, warm
from cacheplug_django._state import cache
from cacheplug_django.warmers import registered

ERASE_LINE = "\r\x1b[K"  # back to the line's start, then clear it (ANSI)


class Command(BaseCommand):
    help = "Fill the cache ahead of traffic by running the registered warmers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these warmers")
        parser.add_argument("--workers", type=int, default=1, help="warmers run at once")
        parser.add_argument("--dry-run", action="store_true", help="list what would run")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options["verbosity"]
        quiet = verbosity == 0 and not options["json"]
        status = _StatusLine(self.stdout) if self.stdout.isatty() and verbosity > 0 else None

        def out(line: str) -> None:
            if quiet:
                return
            if status is not None:
                status.clear()
            self.stdout.write(line)

        def done(report: WarmReport) -> None:
            if report.dry_run:
                out(report.summary())
            elif report.failed:
                out(self.style.WARNING(report.summary()))
            else:
                out(self.style.SUCCESS(report.summary()))

        def err(line: str) -> None:
            if status is not None:
                status.clear()
            self.stderr.write(line, self.style.ERROR)

        try:
            warm(
                # A warmer whose loads the store did not take has warmed nothing: it fails.
                store_checked(registered(), cache.core),
                only=options["only"],
                workers=options["workers"],
                dry_run=options["dry_run"],
                as_json=options["json"],
                verbose=verbosity > 1,
                out=out,
                err=err,
                done=done,
                advance=None if status is None or options["json"] else status.show,
                each_done=connections.close_all,  # the worker thread's database connections
            )
        except OperationError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if status is not None:
                status.clear()
            core = cache.built
            if core is not None:
                core.publish_stats()  # the loads warmers made count in cacheplug_stats too


class _StatusLine:
    """The run's progress on one terminal line, redrawn in place; the command's other lines
    clear it first, and the next report draws it again below them."""

    def __init__(self, stdout: OutputWrapper) -> None:
        self._stdout = stdout
        self._shown = False

    def show(self, step: WarmProgress) -> None:
        self._stdout.write(ERASE_LINE + step.line(), ending="")
        self._stdout.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._stdout.write(ERASE_LINE, ending="")
            self._shown = False
