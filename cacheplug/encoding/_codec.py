"""From value to stored record and back: serialize, compress, envelope, sign; then verify,
unwrap, decompress, deserialize.

The order is deliberate: the signature is checked before anything else is parsed, and the
payload is deserialized only after the signature and the envelope's codec id agree with this
cache's configuration.

Decoding is bounded, because an unsigned cache reads records anyone who can write to the store
may have forged: a record is refused unopened when it is larger than ``max_value_bytes`` or
carries a flag this cache never sets (compression when compression is off, an unknown
compression), and a compressed payload is decompressed at most to about ``max_value_bytes``
bytes before anything parses it (``_compression``). So one read costs at most about
``max_value_bytes`` of memory and parsing, however small the record that triggered it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from cacheplug._memo import BoundedMemo
from cacheplug.encoding import _envelope
from cacheplug.encoding._choice import readers
from cacheplug.encoding._compression import Compressor, ZlibCompressor, decompressors
from cacheplug.encoding._serializers import PICKLE_ID, Serializer
from cacheplug.encoding._signing import SIGNATURE_SIZE, Signer
from cacheplug.stores.base import parse_counter

_COUNTER_LAST_BYTES: Final = frozenset(b"0123456789")
_TRAILER: Final = _envelope.TRAILER
_TRAILER_SIZE: Final = _envelope.TRAILER_SIZE
_FORMAT_VERSION: Final = _envelope.FORMAT_VERSION


class Entry(NamedTuple):
    """A decoded entry: the value and the envelope fields the policies need."""

    value: Any
    created_at: float
    fresh_until: float
    compute_time: float
    tags: tuple[tuple[str, int], ...]


# Builds an Entry without NamedTuple's keyword-handling __new__ (on every hit).
_new_entry = tuple.__new__


@dataclass(slots=True)
class _Known:
    """A record this process verified (if signed) and parsed, and its envelope's fields.

    Built once per record, read on every hit (``get_many`` reads three fields per key): slots,
    whose reads are faster than a NamedTuple's."""

    record: bytes
    created_at: float
    fresh_until: float
    compute_time: float
    tags: tuple[tuple[str, int], ...]
    loads: Callable[[Any], Any]
    """Decodes the whole record: pickle ignores what follows the pickle; other serializers
    get a view of the payload alone."""
    only_version: tuple[str, bytes] | None = None
    """The one version key the record records and its version as a store holds it
    (``b"%d"``); ``None`` when it records none or several."""

    def __post_init__(self) -> None:
        tags = self.tags
        if len(tags) == 1:
            self.only_version = (tags[0][0], b"%d" % tags[0][1])


class _KnownRecords(BoundedMemo[str, _Known]):
    """Records this process verified (if signed) and parsed, by store key.

    A hot entry read again is byte-for-byte the record verified last time, and comparing bytes
    is far cheaper than hashing and parsing them again. Only a record identical to one that
    passed every check is answered from here, so this can spare work but never admit a bad record.
    Bounded by entry count and bytes; cleared wholesale when full (it refills as keys are read).
    """

    __slots__ = ("bytes",)

    MAX_BYTES: Final = 8 * 1024 * 1024
    MAX_RECORD_BYTES: Final = 64 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def clear(self) -> None:
        super().clear()
        self.bytes = 0

    def remember_record(self, store_key: str, known: _Known) -> None:
        """Remember ``known`` unless its record is larger than ``MAX_RECORD_BYTES``."""
        record = known.record
        size = len(record)
        if size > self.MAX_RECORD_BYTES:
            return
        if self.bytes + size > self.MAX_BYTES:
            self.clear()
        self.remember(store_key, known)
        self.bytes += size


class EntryCodec:
    """Encodes and decodes entries for one cache configuration."""

    __slots__ = (
        "_compress_min",
        "_compressor",
        "_decompressors",
        "_known",
        "_readers",
        "_serializer",
        "_serializer_id",
        "_signer",
        "known",
        "max_value_bytes",
    )

    def __init__(
        self,
        serializer: Serializer,
        signer: Signer | None,
        *,
        compressor: Compressor | None = None,
        compress_min_bytes: int | None,
        max_value_bytes: int,
    ) -> None:
        self._serializer = serializer
        self._serializer_id = serializer.id
        self._readers = readers(serializer)
        self._signer = signer
        self._known = _KnownRecords()
        self.known: dict[str, _Known] = self._known
        """Records verified and parsed before, by store key (read-only: the embedded store's
        hit path compares a record with the one verified and reads its envelope fields)."""
        # compress_min_bytes alone means zlib, as before compression could be chosen.
        if compress_min_bytes is None:
            compressor = None
        elif compressor is None:
            compressor = ZlibCompressor()
        self._compressor = compressor
        self._compress_min = compress_min_bytes
        # The compressions this cache reads, by the id its flags carry: none when it never
        # compresses, so it never decompresses what a forger marked compressed.
        self._decompressors = decompressors(self._compressor)
        self.max_value_bytes = max_value_bytes

    @property
    def signed(self) -> bool:
        """True when entries carry a signature."""
        return self._signer is not None

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
        """The record to store, or ``None`` when it would exceed ``max_value_bytes``: the
        record itself, or the serialized value before compression (readers inflate no more
        than that, so a larger one could be written but never read).

        Raises ``TypeError`` when the serializer cannot encode ``value``.
        """
        payload = self._serializer.dumps(value)
        if len(payload) > self.max_value_bytes:
            return None
        flags = 0
        compressor, compress_min = self._compressor, self._compress_min
        if compressor is not None and compress_min is not None and len(payload) >= compress_min:
            compressed = compressor.compress(payload)
            if len(compressed) < len(payload):
                payload, flags = compressed, compressor.id
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
            record = self._signer.sign(store_key, record)
        if len(record) > self.max_value_bytes:
            return None
        return record

    def decode(self, store_key: str, record: bytes) -> Entry | None:
        """The entry in ``record``, or ``None`` if it must be discarded (bad signature,
        unknown format, foreign codec, a flag this cache does not set, larger than
        ``max_value_bytes`` as stored or inflated, undecodable payload)."""
        known = self._known.get(store_key)
        if known is not None and known.record == record:
            try:
                value = known.loads(record)
            except Exception:
                return None
            return _new_entry(
                Entry, (value, known.created_at, known.fresh_until, known.compute_time, known.tags)
            )
        if not record or len(record) > self.max_value_bytes:
            # encode() never writes a larger record: someone else did. Refused before it is
            # hashed or parsed, so its size cannot buy more work than a genuine record's.
            return None
        if self._signer is None and record[-1] in _COUNTER_LAST_BYTES:
            # Bare digits are a counter; a signed cache keeps counters signed, so it never
            # accepts bare digits (anyone able to write to the store could forge them).
            counter = parse_counter(record)
            if counter is None:
                return None
            return Entry(
                value=counter,
                created_at=0.0,
                fresh_until=_envelope.NEVER,
                compute_time=0.0,
                tags=(),
            )
        end = len(record)
        if self._signer is not None:
            if not self._signer.verify(store_key, record):
                return None
            end -= SIGNATURE_SIZE
        start = end - _TRAILER_SIZE
        if start < 0 or record[end - 1] != _FORMAT_VERSION:
            return None
        created_at, fresh_until, compute_time, tags_length, flags, serializer_id, _, _ = (
            _TRAILER.unpack_from(record, start)
        )
        payload_end = start - tags_length
        loads = self._readers.get(serializer_id)
        if loads is None or payload_end < 0:
            return None
        decompressor = None
        if flags:
            # Only compression ids: a cache that does not compress, an id it does not know, or
            # any other bit makes the record a miss, unopened.
            decompressor = self._decompressors.get(flags)
            if decompressor is None:
                return None
        tags: tuple[tuple[str, int], ...] = ()
        if tags_length:
            tags = _envelope.unpack_tags(record, payload_end, start)
            if not tags:
                return None
        try:
            if decompressor is not None:
                payload = decompressor.decompress(
                    memoryview(record)[:payload_end], self.max_value_bytes
                )
                if payload is None:
                    return None
                value = loads(payload)
            elif serializer_id == PICKLE_ID:
                value = loads(record)  # pickle ignores what follows the pickle: no copy
            else:
                loads = _sliced(loads, payload_end)
                value = loads(record)
        except Exception:  # RecursionError (deeply nested JSON) included: a discard, not a crash
            return None
        if decompressor is None:
            known = _Known(record, created_at, fresh_until, compute_time, tags, loads)
            self._known.remember_record(store_key, known)
        return _new_entry(Entry, (value, created_at, fresh_until, compute_time, tags))

    def decode_many(
        self,
        keys: list[str],
        store_keys: list[str],
        records: list[bytes | None],
        now: float,
        versions: dict[str, int | None],
    ) -> tuple[dict[str, Any], list[str], int, list[tuple[str, str, Entry]]]:
        """:meth:`decode` for a batch: ``({key: value} of the fresh entries whose recorded
        versions are all current, store keys of the discarded ones, bytes read, fresh entries
        recording versions not in ``versions`` as (key, store key, entry))``.

        Records verified before by this process take a fast path written out inline (this
        loop runs once per key of a ``get_many``); everything else goes through
        :meth:`decode`.
        """
        known_records = self._known
        decode = self.decode
        found: dict[str, Any] = {}
        discarded: list[str] = []
        undecided: list[tuple[str, str, Entry]] = []
        size = 0
        # Most entries record exactly the versions read (the namespace's): one tuple compare.
        usual = tuple(versions.items())
        for key, store_key, record in zip(keys, store_keys, records, strict=True):
            if record is None:
                continue
            size += len(record)
            known = known_records.get(store_key)
            if known is not None and known.record == record:
                if known.fresh_until < now:
                    continue
                tags = known.tags
                if tags == usual or all(versions.get(tag, -1) == v for tag, v in tags):
                    try:
                        found[key] = known.loads(record)
                    except Exception:
                        discarded.append(store_key)
                    continue
                entry = decode(store_key, record)
            else:
                entry = decode(store_key, record)
            if entry is None:
                discarded.append(store_key)
            elif entry.fresh_until >= now:
                tags = entry.tags
                if tags == usual or all(versions.get(tag, -1) == v for tag, v in tags):
                    found[key] = entry.value
                elif any(tag not in versions for tag, _ in tags):
                    undecided.append((key, store_key, entry))
        return found, discarded, size, undecided


def _sliced(loads: Callable[[Any], Any], end: int) -> Callable[[bytes], Any]:
    """``loads`` of the first ``end`` bytes of a record: the payload (a serializer's
    ``loads`` takes bytes, and slicing a small payload costs less than a memoryview)."""
    return lambda record: loads(record[:end])
