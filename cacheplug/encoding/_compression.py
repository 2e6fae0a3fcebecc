"""Compressors of payloads: ``none``, ``zlib``, ``zstd`` (the ``zstd`` extra), each with the
id the envelope's flags carry, and decompression that never produces more than a bound.

The bound matters because an unsigned cache reads records anyone who can write to the store
may have forged: a few kilobytes of zlib or zstd can stand for gigabytes.
"""

from __future__ import annotations

import importlib.util
import zlib
from typing import Any, Final, Literal, Protocol, TypeAlias

from cacheplug.exceptions import ConfigurationError

CompressionName: TypeAlias = Literal["none", "zlib", "zstd"]
COMPRESSION_NAMES: Final[tuple[CompressionName, ...]] = ("none", "zlib", "zstd")
DEFAULT_MIN_BYTES: Final = 1024
"""``compress_min_bytes`` when a compression is chosen without it: smaller payloads gain
little and cost the compressor's fixed overhead on every write and read."""

# Compression ids, as the envelope's flags carry them (bits 0-1; see ``_envelope``).
ZLIB_ID: Final = 1
ZSTD_ID: Final = 2


class Compressor(Protocol):
    """Compresses payloads; ``id`` is written into the envelope."""

    id: int

    def compress(self, data: bytes) -> bytes:
        """``data`` compressed."""
        ...

    def decompress(self, data: bytes | memoryview, limit: int) -> bytes | None:
        """``data`` decompressed, or ``None`` if it is malformed, truncated, followed by
        anything, or would decompress to more than ``limit`` bytes (never producing more
        than about ``limit`` bytes to find out)."""
        ...


class ZlibCompressor:
    """zlib at level 6 (its default: most of level 9's ratio at a fraction of its time)."""

    id = ZLIB_ID
    __slots__ = ()

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, 6)

    def decompress(self, data: bytes | memoryview, limit: int) -> bytes | None:
        inflater = zlib.decompressobj()
        try:
            # One byte over the limit, so that a payload of exactly ``limit`` bytes leaves room
            # to reach the end of its stream (eof) and is told apart from a longer one.
            payload = inflater.decompress(data, limit + 1)
        except zlib.error:
            return None
        if len(payload) > limit or inflater.unconsumed_tail or inflater.unused_data:
            return None
        # Not at the end of the stream with all input consumed: truncated.
        return payload if inflater.eof else None


class ZstdCompressor:
    """Zstandard at level 3 (its default), from the ``zstandard`` package (``zstd`` extra).

    Frames record their content size (zstandard's default), and decompression relies on it:
    a frame whose size is unknown or over the limit is refused before anything is
    decompressed, and one whose data does not fill exactly the size it claims fails (the
    output buffer is that size). ``ZstdDecompressor.decompress``'s ``max_output_size`` is no
    bound: it is ignored when the frame states its size.
    """

    id = ZSTD_ID
    __slots__ = ("_compressor", "_decompressor", "_error", "_frame_size")

    def __init__(self) -> None:
        import zstandard  # the zstd extra's: imported only when this compressor is chosen

        self._compressor = zstandard.ZstdCompressor(level=3, write_content_size=True)
        self._decompressor = zstandard.ZstdDecompressor()
        self._error = zstandard.ZstdError
        self._frame_size = zstandard.frame_content_size

    def compress(self, data: bytes) -> bytes:
        compressed: bytes = self._compressor.compress(data)
        return compressed

    def decompress(self, data: bytes | memoryview, limit: int) -> bytes | None:
        try:
            # -1 when the frame does not say (CONTENTSIZE_UNKNOWN), which never fits.
            size: int = self._frame_size(data)
            if not 0 <= size <= limit:
                return None
            payload: bytes = self._decompressor.decompress(data, allow_extra_data=False)
        except self._error:
            return None
        return payload if len(payload) == size else None


def zstd_available() -> bool:
    """Whether ``zstandard`` can be imported (``pip install 'cacheplug[zstd]'``)."""
    return importlib.util.find_spec("zstandard") is not None


def check_compression(name: Any) -> CompressionName:
    """``name`` if it is a compression this process can use; raises
    :class:`~cacheplug.ConfigurationError` saying what to do otherwise."""
    if name not in COMPRESSION_NAMES:
        choices = ", ".join(repr(choice) for choice in COMPRESSION_NAMES)
        raise ConfigurationError(f"compression must be one of {choices}, not {name!r}")
    if name == "zstd" and not zstd_available():
        raise ConfigurationError(
            "compression='zstd' needs the zstandard package: pip install 'cacheplug[zstd]'"
        )
    checked: CompressionName = name
    return checked


def compressor(name: CompressionName) -> Compressor | None:
    """The compressor called ``name`` (checked by :func:`check_compression`); ``None`` for
    ``none``."""
    if name == "zlib":
        return ZlibCompressor()
    if name == "zstd":
        return ZstdCompressor()
    return None


def decompressors(chosen: Compressor | None) -> dict[int, Compressor]:
    """The compressors whose payloads a cache writing with ``chosen`` reads, by id.

    None when it does not compress: a cache that never compresses never decompresses what a
    forger marked compressed. Otherwise every one this process can use, so that caches
    sharing a store can move from one compression to another without emptying it.
    """
    if chosen is None:
        return {}
    found: dict[int, Compressor] = {ZLIB_ID: ZlibCompressor()}
    if zstd_available():
        found[ZSTD_ID] = ZstdCompressor()
    found[chosen.id] = chosen
    return found
