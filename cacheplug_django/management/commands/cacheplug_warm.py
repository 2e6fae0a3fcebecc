"""``manage.py cacheplug_warm [--only NAME ...] [--workers N] [--dry-run]``: run the
registered cache warmers (see ``cacheplug_django.warmers``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from cacheplug.integration import OperationError, store_checked, warm
from cacheplug_django._state import cache
from cacheplug_django.warmers import registered


class Command(BaseCommand):
    help = "Fill the cache ahead of traffic by running the registered warmers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these warmers")
        parser.add_argument("--workers", type=int, default=1, help="warmers run at once")
        parser.add_argument("--dry-run", action="store_true", help="list what would run")

    def handle(self, *args: Any, **options: Any) -> None:
        quiet = options["verbosity"] == 0  # -v 0: failures only (on stderr)
        terminal = self.stdout.isatty() and not quiet
        try:
            warm(
                # A warmer whose loads the store did not take has warmed nothing: it fails.
                store_checked(registered(), cache.core),
                only=options["only"],
                workers=options["workers"],
                dry_run=options["dry_run"],
                out=_discard if quiet else self.stdout.write,
                err=self.stderr.write,
                progress=(lambda line: self.stdout.write("\r" + line, ending=""))
                if terminal
                else None,
                each_done=connections.close_all,  # the worker thread's database connections
            )
        except OperationError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            core = cache.built
            if core is not None:
                core.publish_stats()  # the loads warmers made count in cacheplug_stats too


def _discard(line: str) -> None:
    pass
