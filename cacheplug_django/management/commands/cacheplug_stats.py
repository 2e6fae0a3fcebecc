"""``manage.py cacheplug_stats [--json] [--watch N]``: the cache's counters, summed over every
process that published them (see ``Cache.publish_stats``), its hottest keys, and its store;
with ``CACHEPLUG["CDC"]`` set, the lag of the replication slot too (and a warning when it
retains too much WAL). ``--watch N`` shows them again every N seconds until Ctrl-C.

The report is what the command is for: it is printed at every verbosity; ``-v 2`` adds every
counter, ``-v 0`` drops the notice that the replication slot cannot be shown.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cacheplug.integration import (
    ChangeFeed,
    OperationError,
    stats_report,
    watch,
    watch_interval,
)


class Command(BaseCommand):
    help = "Show the cache's hit ratio, loads, stampedes averted, errors, hot keys and store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--watch",
            type=_seconds,
            metavar="N",
            help="refresh every N seconds until Ctrl-C (with --json: one document a line)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from django.utils.module_loading import autodiscover_modules

        from cacheplug_django import cache

        autodiscover_modules("write_behind")  # the queues, for their lengths and dead letters
        feed = self._feed(options["verbosity"])

        def report() -> str:
            return stats_report(
                cache.core,
                as_json=options["json"],
                change_feed=feed,
                verbose=options["verbosity"] > 1,
                one_line=options["watch"] is not None,
            )

        if options["watch"] is not None:
            watch(
                report,
                every=options["watch"],
                out=self.stdout.write,
                err=lambda line: self.stderr.write(line, self.style.WARNING),
                terminal=self.stdout.isatty(),
                as_json=options["json"],
            )
            return
        try:
            self.stdout.write(report())
        except OperationError as exc:
            raise CommandError(str(exc)) from exc

    def _feed(self, verbosity: int) -> ChangeFeed | None:
        """The change feed whose slot's lag is shown (None: CDC is off, or cannot run)."""
        from cacheplug_django import cache
        from cacheplug_django.cdc import configured_feed

        def warn(line: str) -> None:
            if verbosity > 0:
                self.stderr.write(line, self.style.WARNING)

        return configured_feed(cache.core, warn)


def _seconds(text: str) -> float:
    try:
        return watch_interval(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
