"""A write-behind worker process for test_write_behind: drains the "counts" queue (increments
summed per key by ``merge=operator.add``) into an SQLite database with an idempotent sink;
with --die-mid-batch it SIGKILLs itself after the sink committed part of its first batch
(before the acknowledgement)."""

from __future__ import annotations

import argparse
import operator
import os
import signal
import sqlite3

from cacheplug import Cache, QueuedWrite

SECRET = "write-behind-secret"


def sink_into(path: str, die_mid_batch: bool) -> object:
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    batches = [0]

    def sink(entries: list[QueuedWrite]) -> None:
        batches[0] += 1
        for start in range(0, len(entries), 50):
            connection.execute("BEGIN")
            for entry in entries[start : start + 50]:
                applied = connection.execute(
                    "INSERT OR IGNORE INTO applied (id) VALUES (?)", (entry.id,)
                ).rowcount
                if applied:  # idempotent: a redelivered entry changes nothing
                    connection.execute(
                        "INSERT INTO totals (key, total) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET total = total + excluded.total",
                        (entry.key, entry.value),
                    )
            connection.execute("COMMIT")
            if die_mid_batch and batches[0] == 1 and start >= 100:
                os.kill(os.getpid(), signal.SIGKILL)

    return sink


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("redis_url")
    parser.add_argument("database")
    parser.add_argument("--die-mid-batch", action="store_true")
    parser.add_argument("--claim-idle", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    cache = Cache(args.redis_url, namespace="wb", secret=SECRET)
    queue = cache.write_behind(
        "counts",
        sink_into(args.database, args.die_mid_batch),
        merge=operator.add,
        batch_size=args.batch_size,
        claim_idle=args.claim_idle,
    )
    consumer = f"worker-{os.getpid()}"
    while queue.length():
        queue.drain(consumer, block=0.1)
    cache.close()


if __name__ == "__main__":
    main()
