"""Helpers shipped for tests of applications and stores built on cacheplug."""

from __future__ import annotations

from cacheplug.testing.clock import FakeClock
from cacheplug.testing.redis_server import RedisServer, free_port

__all__ = ["FakeClock", "RedisServer", "free_port"]
