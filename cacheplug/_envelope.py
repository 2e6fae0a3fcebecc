"""The record stored for every cached value.

Layout (little-endian), format version 1::

    u8  format version          a reader treats any other version as a miss
    u8  serializer id           which codec produced the payload
    u8  flags                   bit 0: payload is zlib-compressed
    u8  reserved (0)
    f64 created_at              wall-clock seconds when the value was written
    f64 fresh_until             wall-clock seconds; +inf when the entry never goes stale
    f32 compute_time            seconds the loader took (for early recomputation)
    u16 tag count               then, per tag: u8 length, the tag (UTF-8), u64 tag version
    ... payload                 the serialized value

The envelope holds no policy: stampede, tag and freshness decisions read these fields.
Integer counters are stored as bare ASCII digits instead (so the store can increment them
atomically); their first byte is a digit or ``-``, never a format version.
"""

from __future__ import annotations

import math
import struct
from typing import Final, NamedTuple

FORMAT_VERSION: Final = 1
FLAG_COMPRESSED: Final = 0x01

_HEADER: Final = struct.Struct("<BBBxddfH")
HEADER_SIZE: Final = _HEADER.size
_TAG_VERSION: Final = struct.Struct("<Q")
_MAX_TAG_BYTES: Final = 255
NEVER: Final = math.inf


class Header(NamedTuple):
    """The fixed fields of an envelope, plus where its payload starts."""

    serializer_id: int
    flags: int
    created_at: float
    fresh_until: float
    compute_time: float
    tags: tuple[tuple[str, int], ...]
    payload_offset: int


def pack(
    payload: bytes,
    *,
    serializer_id: int,
    flags: int,
    created_at: float,
    fresh_until: float,
    compute_time: float,
    tags: tuple[tuple[str, int], ...] = (),
) -> bytes:
    """Build an envelope around an already serialized payload."""
    header = _HEADER.pack(
        FORMAT_VERSION, serializer_id, flags, created_at, fresh_until, compute_time, len(tags)
    )
    if not tags:
        return header + payload
    parts = [header]
    for tag, version in tags:
        raw = tag.encode("utf-8")
        if len(raw) > _MAX_TAG_BYTES:
            raise ValueError(f"tag {tag[:40]!r}... is longer than {_MAX_TAG_BYTES} bytes")
        parts += (bytes((len(raw),)), raw, _TAG_VERSION.pack(version))
    parts.append(payload)
    return b"".join(parts)


def unpack_header(data: bytes | memoryview, offset: int = 0) -> Header | None:
    """Read the header at ``offset``; ``None`` for another format version or a short record."""
    if len(data) - offset < HEADER_SIZE or data[offset] != FORMAT_VERSION:
        return None
    _, serializer_id, flags, created_at, fresh_until, compute_time, n_tags = (
        _HEADER.unpack_from(data, offset)
    )
    position = offset + HEADER_SIZE
    tags: tuple[tuple[str, int], ...] = ()
    if n_tags:
        found = []
        try:
            for _ in range(n_tags):
                length = data[position]
                tag = bytes(data[position + 1 : position + 1 + length]).decode("utf-8")
                position += 1 + length
                (version,) = _TAG_VERSION.unpack_from(data, position)
                position += _TAG_VERSION.size
                found.append((tag, version))
        except (IndexError, UnicodeDecodeError, struct.error):
            return None
        tags = tuple(found)
    return Header(serializer_id, flags, created_at, fresh_until, compute_time, tags, position)
