"""Bounded decoding (issue #16): a forged record costs a read no more than a genuine one could.

An unsigned cache reads records anyone who can write to the store may have put there. Before
bounded decoding, a 97 KB record flagged "compressed" in a cache that never compressed was
inflated and parsed whole (hundreds of megabytes for one read). Now a record is refused unopened
when it carries a flag the cache does not set or is larger than ``max_value_bytes``, and a
compressed payload is inflated to at most ``max_value_bytes`` (+1) bytes before any parsing.

The decompressor is observed, not timed: ``InflateSpy`` stands in for the ``zlib`` module the
codec uses and records the ``max_length`` of every inflation asked of it and the bytes produced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from cacheplug import Cache, MemoryStore, Store
from cacheplug.encoding import _compression
from cacheplug.encoding._codec import EntryCodec
from cacheplug.encoding._envelope import FLAG_COMPRESSED, pack
from cacheplug.encoding._serializers import JSON_ID, PICKLE_ID, JsonSerializer
from cacheplug.encoding._signing import Signer
from cacheplug.testing import FakeClock

SECRET = "bounded-decoding-secret"
NOW = 1_700_000_000.0
LIMIT = 64 * 1024  # max_value_bytes of the caches under test
SKEY = "bounded:0:d:k"
FORGED = b'"forged-value-never-logged"'
MISSING: Any = object()
LOGGER = "cacheplug"


# -- observing the decompressor ----------------------------------------------------------------


class _SpiedInflater:
    def __init__(self, spy: InflateSpy, inner: Any) -> None:
        self._spy = spy
        self._inner = inner

    def decompress(self, data: Any, max_length: int = 0) -> bytes:
        self._spy.asked.append(max_length or None)  # 0 means "no bound"
        out: bytes = self._inner.decompress(data, max_length)
        self._spy.produced.append(len(out))
        return out

    def flush(self, *args: Any) -> bytes:
        self._spy.asked.append(None)  # flush has no bound: its argument is a buffer size
        out: bytes = self._inner.flush(*args)
        self._spy.produced.append(len(out))
        return out

    def __getattr__(self, name: str) -> Any:  # eof, unused_data, unconsumed_tail, ...
        return getattr(self._inner, name)


class InflateSpy:
    """Stands in for ``zlib`` inside the codec: ``asked`` holds the ``max_length`` of every
    inflation (``None`` for an unbounded one), ``produced`` the bytes each one returned."""

    def __init__(self) -> None:
        self.asked: list[int | None] = []
        self.produced: list[int] = []

    def decompress(self, data: Any, *args: Any) -> bytes:
        self.asked.append(None)
        out = zlib.decompress(data, *args)
        self.produced.append(len(out))
        return out

    def decompressobj(self, *args: Any) -> _SpiedInflater:
        return _SpiedInflater(self, zlib.decompressobj(*args))

    def __getattr__(self, name: str) -> Any:  # compress, error, constants
        return getattr(zlib, name)

    def assert_bounded(self, limit: int) -> None:
        assert None not in self.asked, f"an unbounded inflation was asked for: {self.asked}"
        assert all(asked is not None and asked <= limit + 1 for asked in self.asked), self.asked
        assert all(produced <= limit + 1 for produced in self.produced), self.produced


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> InflateSpy:
    spy = InflateSpy()
    monkeypatch.setattr(_compression, "zlib", spy)
    return spy


class RecordingJson(JsonSerializer):
    """The JSON serializer, noting the size of every payload it is asked to parse."""

    def __init__(self) -> None:
        self.parsed: list[int] = []

    def loads(self, payload: bytes) -> Any:
        self.parsed.append(len(payload))
        return super().loads(payload)


# -- forged records ------------------------------------------------------------------------------


def envelope(payload: bytes, flags: int = 0) -> bytes:
    return pack(
        payload,
        serializer_id=JSON_ID,
        flags=flags,
        created_at=NOW,
        fresh_until=NOW + 10**9,  # fresh for decades: staleness cannot explain a miss
        compute_time=0.0,
    )


def compressed(payload: bytes) -> bytes:
    return envelope(zlib.compress(payload, 9), FLAG_COMPRESSED)


def bomb(inflated_size: int) -> bytes:
    """A compressed record of valid JSON (a string after blanks) ``inflated_size`` bytes long
    once inflated, about a thousandth of that as stored."""
    return compressed(b" " * (inflated_size - len(FORGED)) + FORGED)


def json_of_size(size: int) -> tuple[str, bytes]:
    """A string and its JSON encoding, exactly ``size`` bytes long."""
    value = "a" * (size - 2)
    payload = JsonSerializer().dumps(value)
    assert len(payload) == size
    return value, payload


def codec(*, signed: bool, compress: bool = True, serializer: Any = None) -> EntryCodec:
    return EntryCodec(
        serializer or JsonSerializer(),
        Signer(SECRET) if signed else None,
        compress_min_bytes=1 if compress else None,
        max_value_bytes=LIMIT,
    )


def sign_if(signed: bool, record: bytes) -> bytes:
    """``record`` as a holder of our secret would store it (one configured with a larger
    ``max_value_bytes``, say): signing does not lift the bound."""
    return Signer(SECRET).sign(SKEY, record) if signed else record


@pytest.fixture
def json_cache(redis_url: str) -> Iterator[Cache]:
    """An unsigned cache on Redis, so JSON; compression never enabled; a clock that stands
    still, so every discard of a test falls in one burst of warnings."""
    cache = Cache(
        redis_url,
        namespace="bounded",
        clock=FakeClock(NOW),
        max_value_bytes=LIMIT,
        serializer="json",  # the default is MessagePack: test_data_only_formats.py
    )
    cache.set("probe", (1, 2))
    probe = cache.store.get(cache.store_key("probe"))
    assert probe is not None
    assert probe.startswith(b'{"__cp__":"tuple"')  # this cache really writes JSON
    yield cache
    cache.close()


@pytest.fixture
def compressing_cache(redis_url: str) -> Iterator[Cache]:
    """An unsigned JSON cache on Redis that compresses payloads of 1 KiB and more."""
    cache = Cache(
        redis_url,
        namespace="bounded",
        clock=FakeClock(NOW),
        compress_min_bytes=1024,
        max_value_bytes=LIMIT,
    )
    yield cache
    cache.close()


def discard_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == LOGGER and "discarded" in record.getMessage()
    ]


# -- a cache that never compressed never inflates -------------------------------------------


def test_a_forged_compressed_record_in_a_cache_that_never_compresses_is_discarded_unopened(
    json_cache: Cache,
    redis_url: str,
    redis_client: redis.Redis,
    spy: InflateSpy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    skey = json_cache.store_key("k")
    record = bomb(8 * 1024 * 1024)  # 8 MiB of JSON in about 8 KB
    assert len(record) < LIMIT
    redis_client.set(skey, record)
    before = json_cache.stats().discarded

    assert json_cache.get("k", MISSING) is MISSING
    assert json_cache.get_many(["k"]) == {}
    assert json_cache.get("k", MISSING) is MISSING
    assert json_cache.stats().discarded == before + 3
    assert spy.asked == []

    # Logged once for the burst, naming the key, never showing the value.
    warnings = discard_warnings(caplog)
    assert len(warnings) == 1
    assert skey in warnings[0]
    assert all(b"forged-value" not in record.getMessage().encode() for record in caplog.records)

    async def aread() -> tuple[Any, dict[str, Any], int]:
        async_cache = Cache(redis_url, namespace="bounded", max_value_bytes=LIMIT)
        try:
            found = await async_cache.aget("k", MISSING), await async_cache.aget_many(["k"])
            return (*found, async_cache.stats().discarded)
        finally:
            await async_cache.aclose()

    assert asyncio.run(aread()) == (MISSING, {}, 2)
    assert spy.asked == []

    assert json_cache.get_or_load("k", lambda: "loaded") == "loaded"
    assert json_cache.get("k") == "loaded"


def test_a_compressed_record_signed_with_our_secret_is_discarded_when_compression_is_off(
    redis_url: str, redis_client: redis.Redis, spy: InflateSpy
) -> None:
    # A cache reads only the flags it writes, signed or not: entries written compressed by a
    # process configured otherwise (or before compression was turned off) are misses, reloaded.
    with Cache(redis_url, namespace="bounded", secret=SECRET, serializer="json") as cache:
        skey = cache.store_key("k")
        redis_client.set(skey, Signer(SECRET).sign(skey, compressed(b'["genuine"]')))
        assert cache.get("k", MISSING) is MISSING
        assert cache.stats().discarded == 1
        assert spy.asked == []
        assert cache.get_or_load("k", lambda: ["reloaded"]) == ["reloaded"]


@pytest.mark.parametrize("flags", [0x02, 0x80, FLAG_COMPRESSED | 0x02])
def test_a_record_with_a_flag_no_cache_sets_is_discarded(
    flags: int, compressing_cache: Cache, redis_client: redis.Redis
) -> None:
    payload = b'"flagged"'
    if flags & FLAG_COMPRESSED:
        payload = zlib.compress(payload)
    redis_client.set(compressing_cache.store_key("k"), envelope(payload, flags))
    assert compressing_cache.get("k", MISSING) is MISSING
    assert compressing_cache.stats().discarded == 1


# -- inflation stops at max_value_bytes ------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_inflating_a_forged_record_stops_at_max_value_bytes(signed: bool, spy: InflateSpy) -> None:
    parser = RecordingJson()
    decoder = codec(signed=signed, serializer=parser)
    record = sign_if(signed, bomb(16 * 1024 * 1024))
    entry = decoder.decode(SKEY, record)
    spy.assert_bounded(LIMIT)
    assert spy.asked  # it did try: the bound, not a shortcut, refused it
    assert parser.parsed == []  # refused before any parsing
    assert entry is None


def test_a_forged_record_never_costs_its_inflated_size_in_memory() -> None:
    # The same property without the spy, measured on the real zlib: what one read allocates
    # is a small multiple of max_value_bytes (zlib's window, output buffers; about 3x here),
    # not the 16 MiB the record holds (d663753 peaked at 47 MB). 8x leaves room for whatever
    # another thread allocates meanwhile.
    decoder = codec(signed=False)
    record = bomb(16 * 1024 * 1024)
    tracemalloc.start()
    try:
        entry = decoder.decode(SKEY, record)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * LIMIT
    assert entry is None


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_a_compressed_payload_at_the_bound_round_trips_and_one_byte_over_is_discarded(
    signed: bool, spy: InflateSpy
) -> None:
    parser = RecordingJson()
    decoder = codec(signed=signed, serializer=parser)

    at_bound, _ = json_of_size(LIMIT)
    record = decoder.encode(SKEY, at_bound, created_at=NOW, fresh_until=NOW + 60)
    assert record is not None
    assert len(record) < LIMIT // 10  # stored compressed
    entry = decoder.decode(SKEY, record)
    assert entry is not None
    assert entry.value == at_bound
    assert parser.parsed == [LIMIT]

    # One byte more is not written (it could not be read back) and, forged, not read.
    over, payload = json_of_size(LIMIT + 1)
    assert decoder.encode(SKEY, over, created_at=NOW, fresh_until=NOW + 60) is None
    assert decoder.decode(SKEY, sign_if(signed, compressed(payload))) is None
    assert parser.parsed == [LIMIT]
    spy.assert_bounded(LIMIT)


def test_a_legit_compressed_value_within_the_bound_round_trips(store: Store) -> None:
    secret = SECRET if store.shared else None
    text = "the same sentence again and again. " * ((LIMIT - 100) // 35)
    with Cache(
        store, namespace="bounded", secret=secret, compress_min_bytes=1024, max_value_bytes=LIMIT
    ) as cache:
        assert cache.set("doc", text) is True
        record = store.get(cache.store_key("doc"))
        assert record is not None
        assert len(record) < LIMIT // 10  # stored compressed
        assert cache.get("doc") == text
        assert cache.get_many(["doc"]) == {"doc": text}
        assert cache.stats().discarded == 0


def test_a_forged_compressed_record_just_over_the_bound_is_discarded_and_counted(
    compressing_cache: Cache, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    at_bound, payload = json_of_size(LIMIT)
    _, over = json_of_size(LIMIT + 1)
    # An unsigned cache cannot tell a forgery from its own record: within the bound it reads.
    redis_client.set(compressing_cache.store_key("at"), compressed(payload))
    assert compressing_cache.get("at") == at_bound
    skey = compressing_cache.store_key("over")
    redis_client.set(skey, compressed(over))
    assert compressing_cache.get("over", MISSING) is MISSING
    assert compressing_cache.stats().discarded == 1
    warnings = discard_warnings(caplog)
    assert len(warnings) == 1
    assert skey in warnings[0]
    assert "aaaa" not in warnings[0]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda stream: stream[:-5],  # truncated
        lambda stream: stream + b"tail",  # something after the end of the stream
        lambda stream: b"not a zlib stream at all",
        lambda stream: b"",
    ],
    ids=["truncated", "trailing bytes", "not zlib", "empty"],
)
def test_a_malformed_compressed_payload_is_discarded(
    mangle: Any, compressing_cache: Cache, redis_client: redis.Redis
) -> None:
    stream = zlib.compress(b'["forged"]' + b" " * 2000)
    redis_client.set(compressing_cache.store_key("k"), envelope(mangle(stream), FLAG_COMPRESSED))
    assert compressing_cache.get("k", MISSING) is MISSING
    assert compressing_cache.stats().discarded == 1


# -- uncompressed records --------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_an_uncompressed_record_over_the_bound_is_discarded_unparsed(signed: bool) -> None:
    parser = RecordingJson()
    decoder = codec(signed=signed, compress=False, serializer=parser)
    _, payload = json_of_size(LIMIT)  # the record is larger still: it adds an envelope
    assert decoder.decode(SKEY, sign_if(signed, envelope(payload))) is None
    assert parser.parsed == []


def test_an_oversize_record_in_the_store_is_discarded_and_counted(
    json_cache: Cache, redis_client: redis.Redis
) -> None:
    _, payload = json_of_size(LIMIT)
    redis_client.set(json_cache.store_key("k"), envelope(payload))
    assert json_cache.get("k", MISSING) is MISSING
    assert json_cache.get_many(["k"]) == {}
    assert json_cache.stats().discarded == 2


NESTED = {
    "arrays": b"[" * 50_000 + b"]" * 50_000,
    "objects": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "tagged tuples": b'{"__cp__":"tuple","v":[' * 5_000 + b"1" + b"]}" * 5_000,
}


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compressed"])
@pytest.mark.parametrize("shape", list(NESTED))
def test_deeply_nested_json_is_a_discard_not_a_crash(
    shape: str, compress: bool, redis_url: str, redis_client: redis.Redis
) -> None:
    payload = NESTED[shape]
    assert len(payload) <= LIMIT * 4
    with pytest.raises(RecursionError):
        json.loads(payload)  # the parser really does give up on it
    with Cache(
        redis_url,
        namespace="bounded",
        compress_min_bytes=1 if compress else None,
        max_value_bytes=LIMIT * 4,
    ) as cache:
        redis_client.set(
            cache.store_key("k"), compressed(payload) if compress else envelope(payload)
        )
        assert cache.get("k", MISSING) is MISSING
        assert cache.get_many(["k"]) == {}
        assert cache.stats().discarded == 2
        assert cache.get_or_load("k", lambda: "loaded") == "loaded"


def test_the_memory_store_reads_no_compressed_record_its_cache_did_not_write() -> None:
    # The in-process store is trusted, but the rule is the codec's, the same for every store.
    with Cache(MemoryStore(), namespace="bounded", clock=FakeClock(NOW)) as cache:
        skey = cache.store_key("k")
        cache.set("probe", "x")
        probe = cache.store.get(cache.store_key("probe"))
        assert probe is not None
        assert pickle.loads(probe) == "x"  # this cache writes pickle
        record = pack(
            zlib.compress(pickle.dumps("x")),
            serializer_id=PICKLE_ID,
            flags=FLAG_COMPRESSED,
            created_at=NOW,
            fresh_until=NOW + 10**9,
            compute_time=0.0,
        )
        cache.store.set(skey, record, None)
        assert cache.get("k", MISSING) is MISSING
        assert cache.stats().discarded == 1
