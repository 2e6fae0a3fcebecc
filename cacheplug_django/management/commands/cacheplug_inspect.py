"""``manage.py cacheplug_inspect KEY [--json]``: what is stored under a key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cacheplug.integration import OperationError, inspect_report


class Command(BaseCommand):
    help = "Show a cache entry: state (fresh/stale/outdated), age, ttl left, tags, size."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="the cache key, as the application uses it")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        from cacheplug_django import cache

        try:
            self.stdout.write(inspect_report(cache.core, options["key"], as_json=options["json"]))
        except OperationError as exc:
            raise CommandError(str(exc)) from exc
