"""Real stores with a counter on the side, for tests that check how often the store is read."""

from __future__ import annotations

from cacheplug import RedisStore


class CountingRedisStore(RedisStore):
    """A real RedisStore that counts the GETs it sends."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.gets = 0

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        return super().get(key)
