"""A read/write race on a real database and a real Redis, judged by an oracle.

Rows live in a SQLite database in WAL mode. Writer threads bump a row's version in a
transaction, commit, then invalidate the row's cache entry. Reader threads read the row
through the cache; on a miss their loader reads the row and then pauses, which holds the
race window open: a write can commit and invalidate while the load still carries the old
version.

The readers are spread over several ``Cache`` objects on the same Redis database, as web
workers would be, and the writers use caches of their own (plus one shared with readers),
so invalidations must reach loads in other "processes" through the store, not only through
the in-process single-flight table.

The oracle records, per row, each committed version with the monotonic time at which its
invalidation *returned*, and, per read, the monotonic time before the cache call and the
version it returned. A read is stale when it started after the invalidation of version
``v`` returned and still returned a version older than ``v``.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import uuid
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from cacheplug import MISSING, Cache

SECRET = "race-test-secret"
TTL = 60


class Strategy(Enum):
    LEASES = "leases"
    """``get_or_load``; writers ``delete`` after commit."""
    TAGS = "tags"
    """``get_or_load(..., tags=[row tag])``; writers ``invalidate_tags`` after commit."""
    PLAIN = "plain cache-aside"
    """``get`` then ``loader()`` then ``set`` on a miss; writers delete the bare entry."""


@dataclass(frozen=True)
class RaceConfig:
    rows: int = 3
    reader_caches: int = 2
    readers_per_cache: int = 3
    writers: int = 2
    writes_per_writer: int = 40
    max_reads_per_reader: int = 3000
    load_pause: tuple[float, float] = (0.0, 0.020)
    """Seconds a loader sleeps between reading the row and returning it."""
    write_gap: tuple[float, float] = (0.002, 0.012)
    """Seconds a writer sleeps between two writes."""
    read_gap: tuple[float, float] = (0.0, 0.002)
    """Seconds a reader sleeps between two reads."""
    seed: int | None = None


@dataclass(frozen=True)
class Read:
    row: int
    started: float
    version: int


@dataclass(frozen=True)
class Load:
    row: int
    read_at: float
    """After the SELECT returned."""
    finished: float
    """When the loader returned (after its pause)."""
    version: int


@dataclass(frozen=True)
class Invalidation:
    row: int
    version: int
    returned: float


@dataclass
class Oracle:
    """What was committed and invalidated when, and what every read returned."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    invalidations: list[Invalidation] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)

    def invalidated(self, row: int, version: int) -> None:
        returned = time.monotonic()
        with self.lock:
            self.invalidations.append(Invalidation(row, version, returned))

    def read(self, row: int, started: float, version: int) -> None:
        with self.lock:
            self.reads.append(Read(row, started, version))

    def loaded(self, row: int, read_at: float, version: int) -> None:
        finished = time.monotonic()
        with self.lock:
            self.loads.append(Load(row, read_at, finished, version))

    def _floors(self) -> dict[int, tuple[list[float], list[int]]]:
        """Per row: invalidation return times, sorted, and the newest version invalidated by
        each time (a running maximum, since two writers' invalidations may return out of
        version order)."""
        floors: dict[int, tuple[list[float], list[int]]] = {}
        for inv in sorted(self.invalidations, key=lambda i: i.returned):
            times, newest = floors.setdefault(inv.row, ([], []))
            times.append(inv.returned)
            newest.append(max(inv.version, newest[-1] if newest else inv.version))
        return floors

    @staticmethod
    def _floor(floors: dict[int, tuple[list[float], list[int]]], row: int, at: float) -> int:
        """The newest version of ``row`` whose invalidation had returned before ``at``."""
        times, newest = floors.get(row, ([], []))
        i = bisect_left(times, at)  # invalidations that returned strictly before ``at``
        return newest[i - 1] if i else 0

    def stale_reads(self) -> list[tuple[Read, int]]:
        """Each read that started after the invalidation of a newer version than it returned,
        with that newer version."""
        floors = self._floors()
        stale = []
        for read in self.reads:
            floor = self._floor(floors, read.row, read.started)
            if read.version < floor:
                stale.append((read, floor))
        return stale

    def overtaken_loads(self) -> list[tuple[Load, Invalidation]]:
        """Loads still in their pause when a write of a newer version had committed and been
        invalidated: their result was already old when they returned it (the race window)."""
        found = []
        for load in self.loads:
            for inv in self.invalidations:
                if (
                    inv.row == load.row
                    and inv.version > load.version
                    and load.read_at < inv.returned < load.finished
                ):
                    found.append((load, inv))
                    break
        return found

    def exposed_reads(self) -> int:
        """Reads that started after an invalidation while a load it overtook was still in
        flight: the callers a careless cache would hand (or later serve) the old result."""
        windows = [(load.row, inv.returned, load.finished) for load, inv in self.overtaken_loads()]
        return sum(
            1
            for read in self.reads
            if any(row == read.row and start < read.started < end for row, start, end in windows)
        )


@dataclass(frozen=True)
class RaceResult:
    strategy: Strategy
    writes_planned: int
    reads: int
    loads: int
    invalidations: int
    stale: int
    overtaken_loads: int
    exposed_reads: int
    errors: list[BaseException]
    examples: list[str]


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)


def _create_database(path: Path, rows: int) -> None:
    conn = _connect(path)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchall()[0][0]
        assert mode == "wal", mode
        conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO rows VALUES (?, 1)", [(i,) for i in range(rows)])
        conn.execute("COMMIT")
    finally:
        conn.close()


def _key(row: int) -> str:
    return f"row:{row}"


def _read_through(strategy: Strategy, cache: Cache, row: int, loader: Callable[[], Any]) -> Any:
    key = _key(row)
    if strategy is Strategy.LEASES:
        return cache.get_or_load(key, loader, ttl=TTL)
    if strategy is Strategy.TAGS:
        return cache.get_or_load(key, loader, ttl=TTL, tags=[key])
    value = cache.get(key, MISSING)
    if value is MISSING:
        value = loader()
        cache.set(key, value, TTL)
    return value


def _invalidate(strategy: Strategy, cache: Cache, row: int) -> None:
    key = _key(row)
    if strategy is Strategy.LEASES:
        cache.delete(key)
    elif strategy is Strategy.TAGS:
        cache.invalidate_tags(key)
    else:
        cache.store.delete(cache.store_key(key))


def run_race(
    strategy: Strategy, redis_url: str, db_dir: Path, config: RaceConfig | None = None
) -> RaceResult:
    """Run the race once with ``strategy`` and judge every read."""
    config = config or RaceConfig()
    seed = config.seed if config.seed is not None else random.randrange(2**32)
    path = db_dir / f"race-{uuid.uuid4().hex}.sqlite3"
    _create_database(path, config.rows)
    namespace = f"race-{strategy.name.lower()}-{uuid.uuid4().hex[:12]}"

    def new_cache() -> Cache:
        return Cache(redis_url, namespace=namespace, secret=SECRET, lock_timeout=30)

    reader_caches = [new_cache() for _ in range(config.reader_caches)]
    own_writer_caches = [new_cache() for _ in range(max(config.writers - 1, 0))]
    # Writer 0 shares a cache ("process") with readers, the others have their own.
    writer_caches = [reader_caches[0], *own_writer_caches][: config.writers]
    oracle = Oracle()
    errors: list[BaseException] = []
    writers_done = threading.Event()
    start = threading.Barrier(config.reader_caches * config.readers_per_cache + config.writers)

    def reader(cache: Cache, rng: random.Random) -> None:
        conn = _connect(path)
        try:
            start.wait(10)
            for _ in range(config.max_reads_per_reader):
                if writers_done.is_set():
                    break
                row = rng.randrange(config.rows)
                pause = rng.uniform(*config.load_pause)

                def loader(row: int = row, pause: float = pause) -> dict[str, int]:
                    (version,) = conn.execute(
                        "SELECT version FROM rows WHERE id = ?", (row,)
                    ).fetchall()[0]
                    read_at = time.monotonic()
                    time.sleep(pause)  # the race window: the row may change meanwhile
                    oracle.loaded(row, read_at, version)
                    return {"id": row, "version": version}

                started = time.monotonic()
                value = _read_through(strategy, cache, row, loader)
                oracle.read(row, started, value["version"])
                time.sleep(rng.uniform(*config.read_gap))
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    def writer(cache: Cache, rng: random.Random) -> None:
        conn = _connect(path)
        try:
            start.wait(10)
            for _ in range(config.writes_per_writer):
                time.sleep(rng.uniform(*config.write_gap))
                row = rng.randrange(config.rows)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute("UPDATE rows SET version = version + 1 WHERE id = ?", (row,))
                    (version,) = conn.execute(
                        "SELECT version FROM rows WHERE id = ?", (row,)
                    ).fetchall()[0]
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                _invalidate(strategy, cache, row)  # after the commit, as the issue asks
                oracle.invalidated(row, version)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    master = random.Random(seed)
    readers = [
        threading.Thread(target=reader, args=(cache, random.Random(master.random())))
        for cache in reader_caches
        for _ in range(config.readers_per_cache)
    ]
    writers = [
        threading.Thread(target=writer, args=(cache, random.Random(master.random())))
        for cache in writer_caches
    ]
    try:
        for thread in readers + writers:
            thread.start()
        for thread in writers:
            thread.join(60)
        writers_done.set()
        for thread in readers:
            thread.join(60)
        if any(thread.is_alive() for thread in readers + writers):
            errors.append(RuntimeError("a race thread did not finish"))
    finally:
        writers_done.set()
        for cache in reader_caches + own_writer_caches:
            cache.close()

    stale = oracle.stale_reads()
    examples = [
        f"row {read.row}: read started at {read.started:.6f} returned version {read.version}, "
        f"but version {floor} had been invalidated before it started"
        for read, floor in stale[:5]
    ]
    return RaceResult(
        strategy=strategy,
        writes_planned=config.writers * config.writes_per_writer,
        reads=len(oracle.reads),
        loads=len(oracle.loads),
        invalidations=len(oracle.invalidations),
        stale=len(stale),
        overtaken_loads=len(oracle.overtaken_loads()),
        exposed_reads=oracle.exposed_reads(),
        errors=errors,
        examples=[*examples, f"seed={seed}"],
    )
