"""What both Redis stores do alike (:class:`ScriptedStore`): the operations that are one Lua
script each, the fill announcements, the write-behind queue and the ``repr``.

Apart from ``_scripts`` (which the listener and the stream queue import) because it holds
those too.
"""

from __future__ import annotations

import abc
from typing import Any

from cacheplug._redact import redact
from cacheplug.stores.base import Store
from cacheplug.stores.queues import QueueLimits
from cacheplug.stores.redis._fills import RedisFillListener
from cacheplug.stores.redis._scripts import (
    ScriptCall,
    acquire_call,
    compare_and_swap_call,
    extend_call,
    incr_call,
    release_call,
)
from cacheplug.stores.redis._streams import RedisStreamQueue


class ScriptedStore(Store):
    """What both Redis stores do alike: the operations that are one script each, which a
    subclass sends its own way (:meth:`_script`)."""

    channel: str
    """Where fills, released leases and invalidations are announced."""

    @abc.abstractmethod
    def _script(self, call: ScriptCall) -> Any:
        """Run ``call``; its failure raised as a cacheplug error."""

    def incr(self, key: str, delta: int, ttl_ms: int | None) -> int:
        return int(self._script(incr_call(key, delta, ttl_ms)))

    def compare_and_swap(self, key: str, expected: bytes, new: bytes) -> bool:
        return bool(self._script(compare_and_swap_call(key, expected, new)))

    def acquire_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> int:
        return int(self._script(acquire_call(lease_key, token, ttl_ms)))

    def release_lease(self, key: str, lease_key: str, token: bytes) -> bool:
        return bool(self._script(release_call(key, lease_key, token, self.channel)))

    def extend_lease(self, lease_key: str, token: bytes, ttl_ms: int) -> bool:
        return bool(self._script(extend_call(lease_key, token, ttl_ms)))

    # -- alike in both, apart from the scripts ---------------------------------------------

    url: str
    _fills: RedisFillListener

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.url)!r})"

    @abc.abstractmethod
    def clients(self) -> tuple[Any, Any]:
        """Both sync clients: the retrying one and the one that never retries."""

    def write_queue(self, key: str, limits: QueueLimits) -> RedisStreamQueue:
        """A write-behind queue in a Redis stream under ``key`` (see ``_streams``)."""
        return RedisStreamQueue(*self.clients(), key, limits)

    @property
    def fills(self) -> RedisFillListener:
        return self._fills
