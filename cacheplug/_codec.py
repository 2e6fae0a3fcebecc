"""From value to stored record and back: serialize, compress, envelope, sign; then verify,
unwrap, decompress, deserialize.

The order is deliberate: the signature is checked before anything else is parsed, and the
payload is deserialized only after the signature and the envelope's codec id agree with this
cache's configuration.
"""

from __future__ import annotations

import zlib
from typing import Any, Final, NamedTuple

from cacheplug import _envelope
from cacheplug._serializers import Serializer
from cacheplug._signing import BODY_OFFSET, SIGNED_MARKER, Signer
from cacheplug.stores.memory import parse_counter

_COUNTER_FIRST_BYTES: Final = frozenset(b"-0123456789")


class Entry(NamedTuple):
    """A decoded entry: the value and the envelope fields the policies need."""

    value: Any
    created_at: float
    fresh_until: float
    compute_time: float
    tags: tuple[tuple[str, int], ...]


class EntryCodec:
    """Encodes and decodes entries for one cache configuration."""

    __slots__ = ("_compress_min", "_serializer", "_serializer_id", "_signer", "max_value_bytes")

    def __init__(
        self,
        serializer: Serializer,
        signer: Signer | None,
        *,
        compress_min_bytes: int | None,
        max_value_bytes: int,
    ) -> None:
        self._serializer = serializer
        self._serializer_id = serializer.id
        self._signer = signer
        self._compress_min = compress_min_bytes
        self.max_value_bytes = max_value_bytes

    def encode(
        self,
        store_key: str,
        value: Any,
        *,
        created_at: float,
        fresh_until: float,
        compute_time: float = 0.0,
        tags: tuple[tuple[str, int], ...] = (),
    ) -> bytes | None:
        """The record to store, or ``None`` when it would exceed ``max_value_bytes``.

        Raises ``TypeError`` when the serializer cannot encode ``value``.
        """
        payload = self._serializer.dumps(value)
        flags = 0
        if self._compress_min is not None and len(payload) >= self._compress_min:
            compressed = zlib.compress(payload, 6)
            if len(compressed) < len(payload):
                payload, flags = compressed, _envelope.FLAG_COMPRESSED
        record = _envelope.pack(
            payload,
            serializer_id=self._serializer_id,
            flags=flags,
            created_at=created_at,
            fresh_until=fresh_until,
            compute_time=compute_time,
            tags=tags,
        )
        if self._signer is not None:
            record = self._signer.sign(store_key.encode("ascii"), record)
        if len(record) > self.max_value_bytes:
            return None
        return record

    def decode(self, store_key: str, record: bytes) -> Entry | None:
        """The entry in ``record``, or ``None`` if it must be discarded (bad signature,
        unknown format, foreign codec, undecodable payload)."""
        if not record:
            return None
        first = record[0]
        if first in _COUNTER_FIRST_BYTES:
            counter = parse_counter(record)
            return None if counter is None else Entry(counter, 0.0, _envelope.NEVER, 0.0, ())
        offset = 0
        if self._signer is not None:
            if first != SIGNED_MARKER or not self._signer.verify(store_key.encode("ascii"), record):
                return None
            offset = BODY_OFFSET
        header = _envelope.unpack_header(record, offset)
        if header is None or header.serializer_id != self._serializer_id:
            return None
        payload = record[header.payload_offset :]
        try:
            if header.flags & _envelope.FLAG_COMPRESSED:
                payload = zlib.decompress(payload)
            value = self._serializer.loads(payload)
        except Exception:
            return None
        return Entry(value, header.created_at, header.fresh_until, header.compute_time, header.tags)
