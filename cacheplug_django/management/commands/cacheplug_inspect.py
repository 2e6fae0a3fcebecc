"""``manage.py cacheplug_inspect KEY [--json]``: what is stored under a key."""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cacheplug import CacheError


class Command(BaseCommand):
    help = "Show a cache entry: state (fresh/stale/outdated), age, ttl left, tags, size."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="the cache key, as the application uses it")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        from cacheplug_django import cache

        key = options["key"]
        try:
            info = cache.core.inspect(key)
        except CacheError as exc:
            raise CommandError(f"the store could not be reached: {exc}") from exc
        if info is None:
            raise CommandError(f"no entry under {key!r}")
        if options["json"]:
            self.stdout.write(json.dumps(info.as_dict(), indent=2))
            return

        def seconds(value: float | None) -> str:
            return "never" if value is None else f"{value:.1f} s"

        written = (
            "?"
            if info.created_at is None
            else datetime.datetime.fromtimestamp(info.created_at, datetime.UTC).isoformat()
        )
        lines = [
            f"key        {info.key}",
            f"stored as  {info.store_key}",
            f"state      {info.state}",
            f"size       {info.size} bytes",
        ]
        if info.state != "discarded":
            lines += [
                f"type       {info.value_type}",
                f"written    {written}  (age {seconds(info.age)})",
                f"fresh for  {seconds(info.fresh_for)}",
                f"ttl left   {seconds(info.ttl_left)}",
                f"tags       {', '.join(info.tags) or '-'}",
            ]
        self.stdout.write("\n".join(lines))
