"""Loaders shared by the invalidation tests."""

from __future__ import annotations


class Loader:
    """A loader returning ``<prefix><call number>`` and counting its calls."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"{self.prefix}{self.calls}"
