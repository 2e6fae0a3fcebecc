"""What comes over the wire from PostgreSQL: a logical replication stream
(:class:`ReplicationStream`), and the text the built-in ``test_decoding`` plugin writes for
each change (see ``contrib/test_decoding/test_decoding.c``): ``table public.item: UPDATE:
old-key: id[integer]:1 new-tuple: id[integer]:2 name[text]:'it''s'``; identifiers as
``quote_identifier()`` spells them, values as ``print_literal()`` does (strings quoted, quotes
doubled), ``null``, ``unchanged-toast-datum``.
"""

from __future__ import annotations

import select
import struct
import time
from typing import Final, NoReturn

Row = dict[str, str | None]
"""A tuple's columns: each value as text, None for NULL or a value not in the WAL."""


def decode(data: str) -> tuple[str, list[tuple[str, str]], Row, Row] | None:
    """One line of test_decoding's output: the action, the (schema, table) names, the old key
    (or old row) and the new row, each column's value as text (None: NULL or not in the WAL).
    None for what is not a table change (BEGIN, COMMIT, messages)."""
    if not data.startswith("table "):
        return None
    tables = []
    pos = 6
    while True:
        schema, pos = _identifier(data, pos)
        table, pos = _identifier(data, pos + 1)  # past the "."
        tables.append((schema, table))
        if not data.startswith(", ", pos):
            break
        pos += 2
    end = data.index(":", pos + 2)
    action = data[pos + 2 : end]
    old: Row = {}
    new: Row = {}
    section = old if action == "DELETE" else new
    pos = end + 1
    while pos < len(data):
        pos += 1  # the space before each item
        if data.startswith("old-key:", pos):
            section, pos = old, pos + 8
        elif data.startswith("new-tuple:", pos):
            section, pos = new, pos + 10
        elif data.startswith("(", pos):  # (no-tuple-data), (no-flags)
            pos = data.index(")", pos) + 1
        elif action == "TRUNCATE":  # restart_seqs, cascade
            pos = len(data)
        else:
            column, pos = _identifier(data, pos)
            pos = data.index("]:", pos) + 2
            section[column], pos = _value(data, pos)
    return action, tables, old, new


def _identifier(data: str, pos: int) -> tuple[str, int]:
    """An identifier as quote_identifier() wrote it, and the position after it."""
    if data[pos] != '"':
        end = pos
        while end < len(data) and (data[end].isalnum() or data[end] in "_$"):
            end += 1
        return data[pos:end], end
    return _quoted_text(data, pos, '"')


def _value(data: str, pos: int) -> tuple[str | None, int]:
    if data.startswith("'", pos):
        return _quoted_text(data, pos, "'")
    end = data.find(" ", pos)
    end = len(data) if end < 0 else end
    text = data[pos:end]
    return (None if text in ("null", "unchanged-toast-datum") else text), end


def _quoted_text(data: str, pos: int, quote: str) -> tuple[str, int]:
    parts = []
    pos += 1
    while True:
        end = data.index(quote, pos)
        parts.append(data[pos:end])
        if data.startswith(quote, end + 1):  # a doubled quote
            parts.append(quote)
            pos = end + 2
        else:
            return "".join(parts), end + 1


def lsn(text: str) -> int:
    """``'16/B374D848'`` as a number."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def key_of(columns: tuple[str, ...], row: dict[str, str | None]) -> tuple[str, ...] | None:
    if not columns:
        return None
    values = [row.get(column) for column in columns]
    if any(value is None for value in values):  # not in the WAL, NULL or an unchanged TOAST
        return None
    return tuple(value for value in values if value is not None)


class ReplicationStream:
    """A logical replication connection (``START_REPLICATION``) read through libpq's COPY BOTH
    protocol with psycopg's low-level ``pq`` module: psycopg 3 has no replication API.

    :meth:`read` gives ``("w", lsn, payload)`` for a change (``lsn``: where it was written; a
    COMMIT's is the end of its record), ``("k", wal_end, reply)`` for a keepalive, or None;
    :meth:`confirm` tells the server what may be forgotten. Failures raise psycopg's
    ``OperationalError``.
    """

    def __init__(self, dsn: str, slot: str, options: str) -> None:
        from psycopg import OperationalError, pq
        from psycopg.conninfo import make_conninfo

        conninfo = make_conninfo(dsn, replication="database", application_name="cacheplug-cdc")
        self._pq = pq.PGconn.connect(conninfo.encode())
        self._error = OperationalError
        if self._pq.status != pq.ConnStatus.OK:
            self._fail("connection failed")
        started = self._pq.exec_(f'START_REPLICATION SLOT "{slot}" LOGICAL 0/0 {options}'.encode())
        if started.status != pq.ExecStatus.COPY_BOTH:
            self._fail("START_REPLICATION failed")

    def _fail(self, what: str) -> NoReturn:
        message = self._pq.error_message.decode(errors="replace").strip()
        self.close()
        raise self._error(f"{what}: {message}")

    def read(self, timeout: float) -> tuple[str, int, bytes] | None:
        """The next message, waiting up to ``timeout`` seconds for one."""
        deadline = time.monotonic() + timeout
        while True:
            size, data = self._pq.get_copy_data(1)
            if size > 0:
                message = bytes(data)
                if message[:1] == b"w":  # XLogData: start, end, send time, the plugin's output
                    return "w", struct.unpack_from(">Q", message, 1)[0], message[25:]
                if message[:1] == b"k":  # keepalive: end of WAL sent, send time, reply wanted
                    wal_end, _, reply = struct.unpack_from(">QQB", message, 1)
                    return "k", wal_end, b"\1" if reply else b""
                continue
            if size < 0:
                self._fail("the replication stream ended")
            left = deadline - time.monotonic()
            if left <= 0 and not select.select([self._pq.socket], [], [], 0)[0]:
                return None
            if left > 0 and not select.select([self._pq.socket], [], [], left)[0]:
                return None
            self._pq.consume_input()

    def confirm(self, lsn: int, reply: bool = False) -> None:
        """Standby status: everything before ``lsn`` is done (``reply``: ask for a keepalive)."""
        now = int((time.time() - _PG_EPOCH) * 1_000_000)
        status = b"r" + struct.pack(">QQQQB", lsn, lsn, lsn, now, 1 if reply else 0)
        if self._pq.put_copy_data(status) != 1 or self._pq.flush() != 0:
            self._fail("sending the standby status failed")

    def close(self) -> None:
        self._pq.finish()


_PG_EPOCH: Final = 946_684_800  # 2000-01-01 in Unix time
