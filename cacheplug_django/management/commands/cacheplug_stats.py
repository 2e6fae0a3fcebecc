"""``manage.py cacheplug_stats [--json]``: the cache's counters, summed over every process
that published them (see ``Cache.publish_stats``), its hottest keys, and its store."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cacheplug import CacheError


class Command(BaseCommand):
    help = "Show the cache's hit ratio, loads, stampedes averted, errors, hot keys and store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        from cacheplug_django import cache

        core = cache.core
        try:
            totals, hot = core.shared_stats()
        except CacheError as exc:
            raise CommandError(f"the store could not be reached: {exc}") from exc
        store = {
            "store": repr(core.store),
            "namespace": core.namespace_name,
            "shared": core.store.shared,
            "circuit_breaker_open": core.breaker.tripped,
        }
        if options["json"]:
            stats = totals.as_dict()
            self.stdout.write(json.dumps({**store, "stats": stats, "hot_keys": hot}, indent=2))
            return
        lines = [
            f"store       {store['store']}  (namespace {store['namespace']!r})",
            f"hit ratio   {totals.hit_ratio:.1%}  ({totals.hits} hits, {totals.misses} misses, "
            f"{totals.stale_hits} stale)",
            f"loads       {totals.loads}  (stampedes averted: {totals.coalesced})",
            f"L1 hits     {totals.l1_hits}   replica hits {totals.replica_hits}",
            f"errors      {totals.errors}   discarded {totals.discarded}   "
            f"oversize {totals.oversize}",
            f"invalidated {totals.invalidations}  (queued while the store was down: "
            f"{totals.queued_invalidations})",
        ]
        if not core.store.shared:
            lines.append("(the in-process store: only this command's own process is counted)")
        lines.append("hot keys" + ("" if hot else "   none published yet"))
        lines += [f"  {qps:10.1f}/s  {key}" for key, qps in hot]
        self.stdout.write("\n".join(lines))
