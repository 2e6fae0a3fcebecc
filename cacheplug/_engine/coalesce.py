"""Request coalescing: concurrent reads of the same store keys in one process share round trips.

A read that arrives while another read of the same keys is in flight does not send its own:
it waits for that one to finish, then goes out *together with every read that arrived
meanwhile*, as one request whose answer they all take. It never takes the answer of a read
sent before it arrived: that one may have been answered before an invalidation this caller
was told about, so sharing it would be a stale read. A hot key read by N threads at once
thus costs about two round trips per round-trip time instead of N.

The uncontended path is two short lock sections; no event objects are made unless a reader
has to wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class _Batch:
    """Readers waiting to be read together: the first whose turn comes reads for all."""

    __slots__ = ("claimed", "done", "error", "result", "turn")

    def __init__(self) -> None:
        self.turn = threading.Event()
        self.done = threading.Event()
        self.claimed = False
        self.result: list[Any] = []
        self.error: BaseException | None = None


class ReadBatches:
    """Coalesces reads by the tuple of store keys they fetch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # keys -> [the batch waiting for the read in flight to finish, or None]
        self._waiting: dict[tuple[str, ...], list[_Batch | None]] = {}
        self.shared = 0
        """Reads answered by a request another reader sent."""

    def read(self, keys: tuple[str, ...], fetch: Callable[[], list[Any]]) -> list[Any]:
        """``fetch()``'s values for ``keys``, or those of a read sent after this call began."""
        with self._lock:
            slot = self._waiting.get(keys)
            if slot is None:
                slot = self._waiting[keys] = [None]
                batch = None
            else:
                batch = slot[0]
                if batch is None:
                    batch = slot[0] = _Batch()
        if batch is not None:
            batch.turn.wait()
            with self._lock:
                reader = not batch.claimed
                batch.claimed = True
            if not reader:
                batch.done.wait()
                self.shared += 1
                if batch.error is not None:
                    raise batch.error
                return list(batch.result)  # a copy: callers extend what they get
        return self._send(keys, slot, batch, fetch)

    def _send(
        self,
        keys: tuple[str, ...],
        slot: list[_Batch | None],
        batch: _Batch | None,
        fetch: Callable[[], list[Any]],
    ) -> list[Any]:
        try:
            result = fetch()
            if batch is not None:
                batch.result = result
            return list(result) if batch is not None else result
        except BaseException as exc:
            if batch is not None:
                batch.error = exc
            raise
        finally:
            with self._lock:
                following = slot[0]
                if following is None:
                    del self._waiting[keys]
                else:
                    slot[0] = None  # its read is the one in flight now
            if batch is not None:
                batch.done.set()
            if following is not None:
                following.turn.set()
