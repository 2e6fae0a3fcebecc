"""``manage.py cacheplug_writebehind [--only NAME ...] [--once]``: a write-behind worker.

It drains the queues made with ``cache.write_behind(...)`` (define them in an app's
``write_behind.py``, found automatically) until interrupted, or, with ``--once``, until they
are empty. ``-v 0`` prints nothing but what is retried (on stderr).
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import autodiscover_modules

from cacheplug.integration import OperationError, drain_queues


class Command(BaseCommand):
    help = "Drain the write-behind queues into their sinks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only", nargs="+", metavar="NAME", help="drain only these queues")
        parser.add_argument("--once", action="store_true", help="stop when the queues are empty")

    def handle(self, *args: Any, **options: Any) -> None:
        from cacheplug_django import cache

        autodiscover_modules("write_behind")
        stop = threading.Event()
        quiet = options["verbosity"] == 0

        def out(line: str) -> None:
            if not quiet:
                self.stdout.write(line, self.style.SUCCESS)

        try:
            drain_queues(
                cache.core.write_behind_queues(),
                only=options["only"],
                once=options["once"],
                stop=stop,
                out=out,
                warn=lambda line: self.stderr.write(line, self.style.WARNING),
            )
        except OperationError as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            stop.set()
