"""Real stores with a counter on the side, for tests that check how often the store is read."""

from __future__ import annotations

from collections.abc import Sequence

from cacheplug import RedisStore


class CountingRedisStore(RedisStore):
    """A real RedisStore that counts the reads (GET, or MGET of an entry with its versions)
    it sends."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.gets = 0

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        return super().get(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.gets += 1
        return super().get_many(keys)
