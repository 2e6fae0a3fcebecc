"""``manage.py cacheplug_stats [--json]``: the cache's counters, summed over every process
that published them (see ``Cache.publish_stats``), its hottest keys, and its store."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cacheplug.integration import OperationError, stats_report


class Command(BaseCommand):
    help = "Show the cache's hit ratio, loads, stampedes averted, errors, hot keys and store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.utils.module_loading import autodiscover_modules

        from cacheplug_django import cache

        autodiscover_modules("write_behind")  # the queues, for their lengths and dead letters
        try:
            self.stdout.write(stats_report(cache.core, as_json=options["json"]))
        except OperationError as exc:
            raise CommandError(str(exc)) from exc
