"""Write-behind: writes queued in the store and drained into a sink in batches (the queue
API itself is declared with the stores, in :mod:`cacheplug.stores.queues`).

The public names are re-exported by :mod:`cacheplug`.
"""

from __future__ import annotations

from cacheplug.writebehind._queue import QueuedWrite, WriteBehind, write_order

__all__ = ["QueuedWrite", "WriteBehind", "write_order"]
