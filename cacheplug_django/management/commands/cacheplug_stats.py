"""``manage.py cacheplug_stats [--json]``: the cache's counters, summed over every process
that published them (see ``Cache.publish_stats``), its hottest keys, and its store; with
``CACHEPLUG["CDC"]`` set, the lag of the replication slot too (and a warning when it retains
too much WAL)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cacheplug.integration import ChangeFeed, OperationError, stats_report


class Command(BaseCommand):
    help = "Show the cache's hit ratio, loads, stampedes averted, errors, hot keys and store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.utils.module_loading import autodiscover_modules

        from cacheplug_django import cache

        autodiscover_modules("write_behind")  # the queues, for their lengths and dead letters
        try:
            self.stdout.write(
                stats_report(cache.core, as_json=options["json"], change_feed=self._feed())
            )
        except OperationError as exc:
            raise CommandError(str(exc)) from exc

    def _feed(self) -> ChangeFeed | None:
        """The change feed whose slot's lag is shown (None: CDC is off, or cannot run)."""
        from cacheplug_django import cache
        from cacheplug_django.cdc import feed_of
        from cacheplug_django.conf import read_settings

        cdc = read_settings().cdc
        if cdc is None:
            return None
        try:
            return feed_of(cache.core, cdc)[0]
        except OperationError as exc:
            self.stderr.write(f"cdc: {exc}")
            return None
