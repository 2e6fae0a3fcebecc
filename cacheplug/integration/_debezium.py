"""Change events from Debezium, read from Redis Streams: for a team that already runs Debezium
(for MySQL, PostgreSQL, ...) with Debezium Server's Redis sink, the same invalidations as the
PostgreSQL consumer gives, from the events the sink writes.

The sink writes each table's change events to a stream named like its topic
(``<topic.prefix>.<schema>.<table>``; a ``RegexRouter`` may gather them into one), one entry
per event: in its default ``compact`` format a single field, the record key's JSON, whose value
is the event's JSON; in ``extended`` format the fields ``key`` and ``value`` (and the headers).
Either converter setting is read: with ``schemas.enable`` on, key and value are wrapped in
``{"schema": ..., "payload": ...}``.

Each event becomes a :class:`~cacheplug.integration.TableChange`: the table is the event's
``source.table`` (bare, as ORMs name tables; not the stream's name), the row its record key's
values in order (``{"id": 42}`` -> ``("42",)``). Creates, updates, deletes and snapshot reads
(``op`` ``c``, ``u``, ``d``, ``r``) name their row; a truncate (``t``), a key that is missing
(a table without a primary key) or holds a value that is neither a number nor a string
invalidate the table. (A ``NUMERIC`` key comes as base64 text by Debezium's default
``decimal.handling.mode=precise``, which cannot be told from a text key: use ``string``.)
Tombstones (the sink writes its ``null.value``, ``default``, for the null value that follows a
delete: any text that is not JSON is one), heartbeats, transaction metadata, logical decoding
messages (``m``) and schema changes name no row and are skipped. An entry that cannot be read
at all invalidates every table: dropping it could leave a stale entry.

The streams are read through a consumer group (``cacheplug`` unless told otherwise), and an
entry is acknowledged only once the invalidations of its batch landed: at-least-once. A
consumer that crashes leaves its entries pending: restarted under the same name (the host's,
by default) it reads them again first; another consumer claims them after ``claim_idle``
seconds. The sink never trims its streams: cap them (``XTRIM``, or the sink's
``memory.limit.mb``) where Debezium runs.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import random
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cacheplug.integration._changes import (
    Invalidate,
    NotLanded,
    TableChange,
    TagsFor,
    change_tags,
    invalidate_landed,
)
from cacheplug.integration._table_tags import ALL_TABLES

if TYPE_CHECKING:
    import redis

logger = logging.getLogger("cacheplug.cdc")

DEFAULT_GROUP: Final = "cacheplug"

_ROW_OPS: Final = frozenset({"c", "u", "d", "r"})
_SKIPPED_OPS: Final = frozenset({"m"})  # a logical decoding message: no row
# Streams of Debezium's own, never change events (offsets are a hash, schema history is not).
_NOT_CHANGES: Final = ("metadata:debezium:*", "__debezium-heartbeat*")
_GLOB: Final = frozenset("*?[")


class Unreadable(ValueError):
    """A stream entry that is not a Debezium change event this consumer can read."""


def entry_changes(fields: Mapping[Any, Any]) -> list[TableChange]:
    """The changes one stream entry of Debezium Server's Redis sink holds (``fields`` as
    redis-py gives them, bytes or text): none for a tombstone, heartbeat, transaction marker,
    message or schema change. Raises :class:`Unreadable` for anything else that is not a
    change event."""
    texts = {_text(name): _text(value) for name, value in fields.items()}
    if "value" in texts and ("key" in texts or len(texts) > 1):  # the "extended" format
        key_text, value_text = texts.get("key"), texts["value"]
    elif len(texts) == 1:  # "compact": the key's JSON is the field's name
        [(key_text, value_text)] = texts.items()
    else:
        raise Unreadable(f"an entry of {len(texts)} fields, neither format of the sink")
    try:
        event = _payload(json.loads(value_text))
    except ValueError as exc:
        if value_text.lstrip().startswith(("{", "[")):
            raise Unreadable(f"not JSON: {exc}") from None
        return []  # a tombstone: the sink's null value ("default"); its delete came before
    if event is None:
        return []  # a null value
    if not isinstance(event, dict):
        raise Unreadable("the value is not a JSON object")
    op = event.get("op")
    if op is None or op in _SKIPPED_OPS:
        return []  # a heartbeat, a transaction's BEGIN/END, a schema change
    source = event.get("source")
    table = source.get("table") if isinstance(source, dict) else None
    if not isinstance(table, str) or not table:
        raise Unreadable(f"a change ({op!r}) without source.table")
    if op == "t":
        return [TableChange(table, None)]
    if op not in _ROW_OPS:
        raise Unreadable(f"an unknown op {op!r}")
    return [TableChange(table, _row_key(key_text))]


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _payload(document: Any) -> Any:
    """The document without the converter's ``{"schema", "payload"}`` wrapper, if it has one."""
    if isinstance(document, dict) and set(document) == {"schema", "payload"}:
        return document["payload"]
    return document


def _row_key(key_text: str | None) -> tuple[str, ...] | None:
    """The row's key values as text, in the key's column order; None: the rows are unknown
    (no key: a table without a primary key, whose key is the sink's null key)."""
    if key_text is None or not key_text.lstrip().startswith("{"):
        return None
    try:
        key = _payload(json.loads(key_text))
    except ValueError:
        return None
    if not isinstance(key, dict) or not key:
        return None
    values: list[str] = []
    for value in key.values():
        if isinstance(value, bool):
            values.append("true" if value else "false")
        elif isinstance(value, int | str):
            values.append(str(value))
        else:  # a NUMERIC's bytes, a struct: not the value the ORM spells
            return None
    return tuple(values)


@dataclass(frozen=True, slots=True)
class StreamLag:
    """How far the group is behind on one stream: entries in the stream, ``pending``
    (delivered, not acknowledged), ``lag`` (not delivered yet; None where Redis cannot say)."""

    stream: str
    length: int
    pending: int
    lag: int | None


class DebeziumStreamFeed:
    """Reads Debezium change events from the Redis Streams ``streams`` (names, or patterns
    with ``*``, looked for every ``rescan_every`` seconds: a ``SCAN`` of the whole keyspace,
    so on a Redis holding many keys name the streams instead) through consumer group ``group``,
    and invalidates what each change wrote (``tags_for(table, key)``; default
    :func:`change_tags`). The same shape as :class:`PostgresChangeFeed`: :meth:`run` until
    :meth:`stop`, reconnecting with exponential backoff; :meth:`poll` is one step."""

    def __init__(
        self,
        client: redis.Redis,
        invalidate: Invalidate,
        *,
        streams: Sequence[str],
        group: str = DEFAULT_GROUP,
        consumer: str | None = None,
        tags_for: TagsFor = change_tags,
        batch_size: int = 500,
        wait: float = 0.2,
        claim_idle: float = 30.0,
        rescan_every: float = 5.0,
        backoff: float = 0.1,
        max_backoff: float = 10.0,
    ) -> None:
        self.client = client
        self.invalidate = invalidate
        self.patterns = tuple(streams)
        self.group = group
        self.consumer = consumer or socket.gethostname() or "cacheplug"
        self.tags_for = tags_for
        self.batch_size = batch_size
        self.wait = wait
        self.claim_idle = claim_idle
        self.rescan_every = rescan_every
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.changes_seen = 0  # changes invalidated, for stats
        self.unreadable = 0  # entries that could not be read (every table invalidated)
        self._stopping = False
        self._streams: list[str] = []
        self._rescan_due = 0.0
        self._claim_due = 0.0
        self._own_pending = True  # after a start or a failure: what this name left unacked

    # -- running ---------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until :meth:`stop`. A Redis that cannot be reached and invalidations that
        did not land are retried with exponential backoff (and jitter); nothing is lost."""
        import redis

        delay = self.backoff
        while not self._stopping:
            try:
                self.poll(self.wait)
                delay = self.backoff
            except (redis.RedisError, NotLanded) as exc:
                logger.warning("cacheplug CDC: %s; retrying in %.1f s", exc, delay)
                self._own_pending = True  # read what was delivered and not acknowledged
                self._pause(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.max_backoff)

    def stop(self) -> None:
        """Ask :meth:`run` to return once its current step is done. Only a flag: safe in a
        signal handler."""
        self._stopping = True

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))

    def poll(self, timeout: float = 0.0) -> int:
        """One step: this consumer's own unacknowledged entries first (after a start or a
        failure), entries other consumers left idle for ``claim_idle`` seconds, then new ones
        (waiting up to ``timeout`` seconds); invalidate their tags and, once that landed,
        acknowledge them. Returns the number of entries handled."""
        streams = self._current_streams()
        if not streams:
            self._pause(timeout)
            return 0
        entries = self._read_own_pending(streams) if self._own_pending else []
        if not entries:
            entries = self._claim_idle(streams)
        if not entries:
            entries = self._read(streams, ">", timeout)
        if not entries:
            return 0
        tags: dict[str, None] = {}
        changes = 0
        for stream, entry_id, fields in entries:
            for tag in self._tags_of(stream, entry_id, fields):
                tags[tag] = None
            changes += 1
        invalidate_landed(self.invalidate, list(tags))
        self._acknowledge(entries)
        self.changes_seen += changes
        return len(entries)

    def _tags_of(self, stream: str, entry_id: str, fields: Mapping[Any, Any] | None) -> list[str]:
        if not fields:
            return []  # trimmed away while pending: nothing left to read
        try:
            changes = entry_changes(fields)
        except Unreadable as exc:
            self.unreadable += 1
            logger.warning(
                "cacheplug CDC: entry %s of stream %r is not a Debezium change event this "
                "consumer can read (%s): every table is invalidated",
                entry_id,
                stream,
                exc,
            )
            return [ALL_TABLES]
        return [tag for change in changes for tag in self.tags_for(change.table, change.key)]

    # -- Redis -----------------------------------------------------------------------------

    def _current_streams(self) -> list[str]:
        now = time.monotonic()
        if now >= self._rescan_due:
            self._rescan_due = now + self.rescan_every
            found = self._find_streams()
            for stream in found:
                if stream not in self._streams:
                    self._join(stream)
            self._streams = found
        return self._streams

    def _find_streams(self) -> list[str]:
        found: dict[str, None] = {}
        for pattern in self.patterns:
            if _GLOB.isdisjoint(pattern):
                found[pattern] = None
                continue
            for name in self.client.scan_iter(match=pattern, count=1000, _type="stream"):
                stream = _text(name)
                if not any(fnmatch.fnmatchcase(stream, other) for other in _NOT_CHANGES):
                    found[stream] = None
        return sorted(found)

    def _join(self, stream: str) -> None:
        """Create the group on ``stream`` from its first entry (a stream Debezium has not
        written yet is made empty: the group then sees its first event)."""
        import redis

        try:
            self.client.xgroup_create(stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _read(self, streams: Sequence[str], start: str, timeout: float) -> list[_Entry]:
        import redis

        block = None if start != ">" or timeout <= 0 else max(1, int(timeout * 1000))
        try:
            replies = self.client.xreadgroup(
                self.group,
                self.consumer,
                dict.fromkeys(streams, start),
                count=self.batch_size,
                block=block,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # A stream deleted (and made again) since: join them all again at the next step.
            self._streams, self._rescan_due = [], 0.0
            return []
        return [
            (_text(stream), _text(entry_id), fields)
            for stream, found in _stream_replies(replies)
            for entry_id, fields in found
        ]

    def _read_own_pending(self, streams: Sequence[str]) -> list[_Entry]:
        entries = self._read(streams, "0", 0.0)
        if not entries:
            self._own_pending = False
        return entries

    def _claim_idle(self, streams: Sequence[str]) -> list[_Entry]:
        now = time.monotonic()
        if now < self._claim_due:
            return []
        self._claim_due = now + self.claim_idle / 2
        entries: list[_Entry] = []
        for stream in streams:
            reply = self.client.xautoclaim(
                stream,
                self.group,
                self.consumer,
                min_idle_time=int(self.claim_idle * 1000),
                start_id="0-0",
                count=self.batch_size,
            )
            claimed = reply[1] if isinstance(reply, list | tuple) and len(reply) > 1 else []
            entries += [(stream, _text(entry_id), fields) for entry_id, fields in claimed]
        return entries

    def _acknowledge(self, entries: Iterable[_Entry]) -> None:
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id, _ in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        pipe = self.client.pipeline(transaction=False)
        for stream, ids in by_stream.items():
            pipe.xack(stream, self.group, *ids)
        pipe.execute()

    def lag(self) -> list[StreamLag]:
        """How far the group is behind on each stream."""
        import redis

        lags: list[StreamLag] = []
        for stream in self._find_streams():
            try:
                groups = self.client.xinfo_groups(stream)
                length = int(self.client.xlen(stream))
            except redis.ResponseError:  # no such stream yet
                lags.append(StreamLag(stream, 0, 0, None))
                continue
            ours = next((g for g in groups if _text(g.get("name")) == self.group), None)
            if ours is None:
                lags.append(StreamLag(stream, length, 0, length))
                continue
            lag = ours.get("lag")
            lags.append(
                StreamLag(
                    stream, length, int(ours.get("pending") or 0), None if lag is None else int(lag)
                )
            )
        return lags

    def close(self) -> None:
        """Release the client's connections (:meth:`poll` opens others when needed)."""
        self.client.close()


_Entry = tuple[str, str, Any]


def _stream_replies(replies: Any) -> list[tuple[Any, list[tuple[Any, Any]]]]:
    """XREADGROUP's reply as (stream, entries), whichever protocol the client speaks."""
    if not replies:
        return []
    if isinstance(replies, dict):  # RESP3
        return [(stream, list(found)) for stream, found in replies.items()]
    return [(stream, list(found)) for stream, found in replies]
