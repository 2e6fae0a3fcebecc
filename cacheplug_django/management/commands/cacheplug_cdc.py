"""``manage.py cacheplug_cdc [--slot NAME] [--drop-slot] [--once] [--source debezium-redis
--stream NAME]``: change data capture.

It reads the logical replication slot of the PostgreSQL database ``CACHEPLUG["CDC"]`` names
(created if missing) and invalidates what every committed change wrote, whoever wrote it
(psql, another service, a trigger, a stored procedure), with the tags the ORM hooks use. It
runs until SIGTERM or Ctrl-C and then exits 0; ``--once`` consumes what the slot holds and
exits; ``--drop-slot`` removes the slot (an abandoned slot keeps WAL on the server's disk).
With ``SOURCE`` ``debezium-redis`` (or ``--source debezium-redis --stream NAME``) it reads
Debezium's change events from Redis Streams instead.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cacheplug import ConfigurationError
from cacheplug.integration import CDC_SOURCES, OperationError, run_change_feed


class Command(BaseCommand):
    help = (
        "Invalidate what every committed PostgreSQL change wrote (change data capture), or what "
        "Debezium's change events from Redis Streams say."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slot", metavar="NAME", help="the replication slot (default: SLOT)")
        parser.add_argument("--drop-slot", action="store_true", help="drop the slot and exit")
        parser.add_argument(
            "--once", action="store_true", help="consume what the slot holds now, then exit"
        )
        parser.add_argument(
            "--source",
            choices=CDC_SOURCES,
            help="where the changes come from (default: SOURCE)",
        )
        parser.add_argument(
            "--stream",
            action="append",
            default=[],
            metavar="NAME",
            help="a Redis Stream of Debezium's events, or a pattern with * (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from cacheplug_django import cache
        from cacheplug_django.cdc import feed_for

        try:
            feed, database = feed_for(
                cache.core,
                slot=options["slot"],
                drop_slot=options["drop_slot"],
                source=options["source"],
                streams=tuple(options["stream"]),
            )
            run_change_feed(
                feed,
                database=database,
                drop_slot=options["drop_slot"],
                once=options["once"],
                out=self.stdout.write if options["verbosity"] > 0 else _discard,
            )
        except (OperationError, ConfigurationError) as exc:
            raise CommandError(str(exc)) from exc


def _discard(line: str) -> None:
    pass  # -v 0: quiet
