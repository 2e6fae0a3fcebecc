"""``manage.py cacheplug_warm [--only NAME ...] [--workers N] [--dry-run]``: run the
registered cache warmers (see ``cacheplug_django.warmers``)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from cacheplug_django.warmers import Warmer, registered


class Command(BaseCommand):
    help = "Fill the cache ahead of traffic by running the registered warmers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these warmers")
        parser.add_argument("--workers", type=int, default=1, help="warmers run at once")
        parser.add_argument("--dry-run", action="store_true", help="list what would run")

    def handle(self, *args: Any, **options: Any) -> None:
        warmers = registered()
        only = options["only"]
        if only:
            unknown = sorted(set(only) - set(warmers))
            if unknown:
                known = ", ".join(warmers) or "none registered"
                raise CommandError(f"unknown warmer(s): {', '.join(unknown)} (known: {known})")
            warmers = {name: fn for name, fn in warmers.items() if name in only}
        workers = options["workers"]
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        if options["dry_run"]:
            for name in warmers:
                self.stdout.write(f"would run {name}")
            self.stdout.write(f"{len(warmers)} warmer(s); nothing was run")
            return
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda item: self._run(*item), warmers.items()))
        keys = sum(count for count, _ in results)
        failures = [name for (_, failed), name in zip(results, warmers, strict=True) if failed]
        elapsed = time.monotonic() - started
        summary = (
            f"warmed {keys} key(s) with {len(warmers)} warmer(s) in {elapsed:.1f} s, "
            f"{len(failures)} failed"
        )
        self.stdout.write(summary)
        if failures:
            raise CommandError(f"warmer(s) failed: {', '.join(failures)}")

    def _run(self, name: str, fn: Warmer) -> tuple[int, bool]:
        """Run one warmer: (keys warmed, failed?)."""
        count = 0
        progress = self.stdout.isatty()
        try:
            result = fn()
            if isinstance(result, Integral):
                count = int(result)
            elif isinstance(result, Iterable) and not isinstance(result, str | bytes):
                for _ in result:
                    count += 1
                    if progress and count % 10 == 0:
                        self.stdout.write(f"\r{name}: {count} keys", ending="")
            if progress:
                self.stdout.write("\r", ending="")
            self.stdout.write(f"{name}: {count} key(s)")
            return count, False
        except Exception:
            self.stderr.write(f"{name} failed after {count} key(s):\n{traceback.format_exc()}")
            return count, True
        finally:
            connections.close_all()  # this worker thread's database connections
