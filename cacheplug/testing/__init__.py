"""Helpers shipped for tests of applications and stores built on cacheplug.

Importable from here: ``FakeClock``, ``PostgresServer`` (a throwaway PostgreSQL ready for
logical decoding), ``RedisServer``, ``free_port``. Modules that need the
``redis`` package are imported by name: ``cacheplug.testing.conformance`` (the store suite),
``cacheplug.testing.round_trips`` (count a RedisStore's round trips),
``cacheplug.testing.sentinel`` (a master, a replica and three Sentinels) and
``cacheplug.testing.cluster`` (a 3-master, 3-replica Redis Cluster).
"""

from __future__ import annotations

from cacheplug.testing.clock import FakeClock
from cacheplug.testing.postgres import PostgresServer
from cacheplug.testing.redis_server import RedisServer, free_port

__all__ = ["FakeClock", "PostgresServer", "RedisServer", "free_port"]
