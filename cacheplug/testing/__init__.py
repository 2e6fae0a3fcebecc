"""Helpers shipped for tests of applications and stores built on cacheplug."""

from __future__ import annotations

from cacheplug.testing.clock import FakeClock

__all__ = ["FakeClock"]
