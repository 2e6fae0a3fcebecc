"""The record stored for every cached value.

The envelope is a *trailer*: fields follow the payload, so a pickle payload can be loaded
straight from the record (``pickle.loads`` ignores bytes after the pickle) without copying.
Layout, format version 1 (little-endian)::

    ... payload                 the serialized value (possibly compressed)
    ... tags                    per tag: u8 length, the tag (UTF-8), u64 tag version
    f64 created_at              wall-clock seconds when the value was written
    f64 fresh_until             wall-clock seconds; +inf when the entry never goes stale
    f32 compute_time            seconds the loader took (for early recomputation)
    u32 tags length             bytes of the tags block
    u8  flags                   bits 0-1: the compression id (0 none, 1 zlib, 2 zstd; see
                                ``_compression``), other bits 0; a reader treats a value
                                its cache does not read (any compression when its own is
                                off, an unknown id, another bit) as a miss
    u8  serializer id           which codec produced the payload
    u8  reserved (0)
    u8  format version          last byte; a reader treats any other version as a miss

A signed record appends its signature after this (see ``_signing``). Integer counters are
stored as bare ASCII digits instead, so the store can increment them atomically; their last
byte is a digit, never a format version or the signature marker.
"""

from __future__ import annotations

import math
import struct
from typing import Final

FORMAT_VERSION: Final = 1
FLAG_COMPRESSED: Final = 0x01
"""The flags of a zlib-compressed payload (compression id 1; format version 1 had no other)."""
NEVER: Final = math.inf

TRAILER: Final = struct.Struct("<ddfIBBBB")
TRAILER_SIZE: Final = TRAILER.size
_TAG_VERSION: Final = struct.Struct("<Q")
_MAX_TAG_BYTES: Final = 255


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
    block = b""
    if tags:
        parts: list[bytes] = []
        for tag, version in tags:
            raw = tag.encode("utf-8")
            if len(raw) > _MAX_TAG_BYTES:
                raise ValueError(f"tag {tag[:40]!r}... is longer than {_MAX_TAG_BYTES} bytes")
            parts += (bytes((len(raw),)), raw, _TAG_VERSION.pack(version))
        block = b"".join(parts)
    trailer = TRAILER.pack(
        created_at,
        fresh_until,
        compute_time,
        len(block),
        flags,
        serializer_id,
        0,
        FORMAT_VERSION,
    )
    return payload + block + trailer


def unpack_tags(record: bytes, position: int, end: int) -> tuple[tuple[str, int], ...]:
    """The tags block ``record[position:end]``; ``()`` if it is malformed."""
    found = []
    try:
        while position < end:
            length = record[position]
            tag = record[position + 1 : position + 1 + length].decode("utf-8")
            position += 1 + length
            (version,) = _TAG_VERSION.unpack_from(record, position)
            position += _TAG_VERSION.size
            found.append((tag, version))
    except (IndexError, UnicodeDecodeError, struct.error):
        return ()
    return tuple(found) if position == end else ()
