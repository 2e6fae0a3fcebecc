"""Stores named by a dotted path in the adapters' ``STORE`` tests (``tests/django`` is on
``sys.path``, so both adapters' tests can name them)."""

from __future__ import annotations

from cacheplug import MemoryStore

made: list[MemoryStore] = []


class TinyStore(MemoryStore):
    """A store class with no required argument: ``"custom_stores:TinyStore"``."""

    def __init__(self) -> None:
        super().__init__(max_entries=5)
        made.append(self)


def tiny_store() -> MemoryStore:
    """A factory: ``"custom_stores:tiny_store"``."""
    return TinyStore()


not_a_factory = 42
