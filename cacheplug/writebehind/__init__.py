"""Write-behind: writes queued in the store and drained into a sink in batches (the queue
API itself is declared with the stores, in :mod:`cacheplug.stores.queues`).

The public names but ``WriteBehindOptions`` (the typed options of ``Cache.write_behind``) are
re-exported by :mod:`cacheplug`.
"""

from __future__ import annotations

from cacheplug.writebehind._queue import (
    QueuedWrite,
    WriteBehind,
    WriteBehindOptions,
    write_order,
)

__all__ = ["QueuedWrite", "WriteBehind", "WriteBehindOptions", "write_order"]
