"""``manage.py cacheplug_flush (--tag T | --model app.Model | --key K | --namespace NAME |
--all) [--yes]``: invalidate part or all of this project's cache.

It only ever touches this cache's own entries (by key, tag, or namespace version), never the
rest of a shared Redis: there is no ``FLUSHDB`` here.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cacheplug import CacheError


class Command(BaseCommand):
    help = "Invalidate cache entries by tag, model, key, nested namespace, or all of them."

    def add_arguments(self, parser: CommandParser) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--tag", nargs="+", metavar="T", help="invalidate these tags")
        what.add_argument(
            "--model", nargs="+", metavar="app.Model", help="everything depending on these models"
        )
        what.add_argument("--key", nargs="+", metavar="K", help="remove these keys")
        what.add_argument("--namespace", metavar="NAME", help="every entry of a nested namespace")
        what.add_argument("--all", action="store_true", help="every entry of this cache")
        parser.add_argument("--yes", action="store_true", help="do not ask before --all")

    def handle(self, *args: Any, **options: Any) -> None:
        from cacheplug_django import cache, model_tags

        core = cache.core
        name = core.namespace_name
        if options["tag"]:
            core.invalidate_tags(*options["tag"])
            done = f"invalidated tag(s): {', '.join(options['tag'])}"
        elif options["model"]:
            try:
                tags = model_tags(*options["model"])
            except (LookupError, TypeError) as exc:
                raise CommandError(f"{exc}; nothing was flushed") from exc
            core.invalidate_tags(*tags)
            done = f"invalidated everything depending on {', '.join(options['model'])}"
        elif options["key"]:
            lines = []
            for key in options["key"]:
                removed = core.delete(key)
                lines.append(f"removed {key!r}" if removed else f"no entry under {key!r}")
            done = "\n".join(lines)
        elif options["namespace"]:
            try:
                nested = core.namespace(options["namespace"])
            except CacheError as exc:
                raise CommandError(f"{exc}; nothing was flushed") from exc
            nested.bump()
            done = f"flushed namespace {nested.namespace_name!r}"
        else:
            if not options["yes"]:
                self._confirm(name)
            core.bump()
            done = f"flushed every entry of namespace {name!r} (other data on the store untouched)"
        pending = core.pending_invalidations()
        if pending:
            core.close(flush_timeout=5.0)
            if core.pending_invalidations():
                raise CommandError(
                    f"the store could not be reached: {len(pending)} invalidation(s) not applied"
                )
        self.stdout.write(done)

    def _confirm(self, name: str) -> None:
        if not sys.stdin.isatty():
            raise CommandError(
                "--all asks first; pass --yes when not at a terminal. Nothing was flushed."
            )
        answer = input(f"Flush every entry of cache namespace {name!r}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise CommandError("nothing was flushed")
