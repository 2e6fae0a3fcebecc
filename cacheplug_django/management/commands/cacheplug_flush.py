"""``manage.py cacheplug_flush (--tag T | --model app.Model | --key K | --namespace NAME |
--all) [--yes] [--json]``: invalidate part or all of this project's cache.

It only ever touches this cache's own entries (by key, tag, or namespace version), never the
rest of a shared Redis: there is no ``FLUSHDB`` here. Verbosity: ``-v 0`` prints only errors
(and the ``--json`` document, when asked for), ``-v 2`` also the tags a model stands for.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cacheplug.integration import OperationError, flush


class Command(BaseCommand):
    help = "Invalidate cache entries by tag, model, key, nested namespace, or all of them."

    def add_arguments(self, parser: CommandParser) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument(
            "--tag", nargs="+", type=_named("tag"), metavar="T", help="invalidate these tags"
        )
        what.add_argument(
            "--model",
            nargs="+",
            type=_named("model"),
            metavar="app.Model",
            help="everything depending on these models",
        )
        what.add_argument(
            "--key", nargs="+", type=_named("key"), metavar="K", help="remove these keys"
        )
        what.add_argument(
            "--namespace",
            type=_named("namespace"),
            metavar="NAME",
            help="every entry of a nested namespace",
        )
        what.add_argument("--all", action="store_true", help="every entry of this cache")
        parser.add_argument("--yes", action="store_true", help="do not ask before --all")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        from cacheplug_django import cache
        from cacheplug_django.tags import flush_tags

        tags, described_as = options["tag"] or [], None
        if options["model"]:
            try:
                tags = flush_tags(*options["model"])
            except (LookupError, TypeError) as exc:
                raise CommandError(f"{exc}; nothing was flushed") from exc
            described_as = f"everything depending on {', '.join(options['model'])}"
        try:
            done = flush(
                cache.core,
                tags=tags,
                described_as=described_as,
                keys=options["key"] or (),
                namespace=options["namespace"],
                everything=options["all"],
                confirm=None if options["yes"] else _ask,
                as_json=options["json"],
                verbose=options["verbosity"] > 1,
            )
        except OperationError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(done)  # what was asked for, at any verbosity
        elif options["verbosity"] > 0:  # -v 0: quiet; a failure still raises
            self.stdout.write(done, self.style.SUCCESS)


def _named(what: str) -> Callable[[str], str]:
    """An argument type refusing an empty name (``--tag ''`` would flush nothing, silently)."""

    def parse(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(
                f"an empty {what} names nothing: give the {what} to flush. Nothing was flushed."
            )
        return value

    return parse


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        raise OperationError(
            "--all asks first; pass --yes when not at a terminal. Nothing was flushed."
        )
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
