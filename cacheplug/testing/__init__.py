"""Helpers shipped for tests of applications and stores built on cacheplug.

Importable from here: ``CallCounts`` and ``count_calls`` (count a block's hits, misses and
loads), ``FakeClock``, ``PostgresServer`` (a throwaway PostgreSQL ready for
logical decoding), ``RedisServer``, ``VarnishServer`` (a throwaway varnishd in front of a
backend, for the edge tier), ``free_port``. Modules that need the
``redis`` package are imported by name: ``cacheplug.testing.conformance`` (the store suite),
``cacheplug.testing.round_trips`` (count a RedisStore's round trips),
``cacheplug.testing.sentinel`` (a master, a replica and three Sentinels) and
``cacheplug.testing.cluster`` (a 3-master, 3-replica Redis Cluster).
``cacheplug.testing.pytest_plugin`` is the pytest plugin (fixtures ``cacheplug_isolated``,
``cacheplug_disabled``, ``cacheplug_calls``), loaded by pytest itself: see ``docs/testing.md``.
"""

from __future__ import annotations

from cacheplug.testing.calls import CallCounts, count_calls
from cacheplug.testing.clock import FakeClock
from cacheplug.testing.postgres import PostgresServer
from cacheplug.testing.redis_server import RedisServer, free_port
from cacheplug.testing.varnish import VarnishServer

__all__ = [
    "CallCounts",
    "FakeClock",
    "PostgresServer",
    "RedisServer",
    "VarnishServer",
    "count_calls",
    "free_port",
]
