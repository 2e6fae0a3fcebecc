"""Stores of "a third party", named by dotted path in tests/core/test_store_registry.py."""

from __future__ import annotations

from cacheplug import MemoryStore


class RecordingStore(MemoryStore):
    """A memory store that remembers the URL it was built from."""

    url: str | None = None

    @classmethod
    def from_url(cls, url: str) -> RecordingStore:
        store = cls()
        store.url = url
        return store


def make_store() -> RecordingStore:
    """A zero-argument factory."""
    store = RecordingStore()
    store.url = "made"
    return store


def from_url_factory(url: str) -> RecordingStore:
    """A factory taking the URL, registered instead of a class."""
    store = RecordingStore()
    store.url = f"factory:{url}"
    return store


def not_a_store() -> object:
    return object()


def no_store_from_url(url: str) -> object:
    return url


NOT_CALLABLE = 3
