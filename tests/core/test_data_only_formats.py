"""The data-only MessagePack serializer: exact round trips of everything JSON stored, entries of
the old JSON format still read, and forged or garbled records a miss, never an exception."""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import struct
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from test_serializers import EXACT_VALUES, Custom, data, typed

from cacheplug import MISSING, Cache, ConfigurationError, JsonSerializer, MsgpackSerializer
from cacheplug.encoding import _choice
from cacheplug.encoding._envelope import TRAILER, TRAILER_SIZE, pack
from cacheplug.encoding._msgpack import MSGPACK_ID
from cacheplug.encoding._serializers import JSON_ID, PICKLE_ID

NEVER = float("inf")


def round_trip(value: Any) -> Any:
    serializer = MsgpackSerializer()
    payload = serializer.dumps(value)
    assert isinstance(payload, bytes)
    return serializer.loads(payload)


@pytest.mark.parametrize("value", list(EXACT_VALUES.values()), ids=list(EXACT_VALUES))
def test_msgpack_round_trips_what_json_round_trips(value: Any) -> None:
    assert typed(round_trip(value)) == typed(value)


@settings(max_examples=200, deadline=None)
@given(data)
def test_msgpack_round_trips_recursive_data(value: Any) -> None:
    assert typed(round_trip(value)) == typed(value)


@pytest.mark.parametrize(
    "value",
    [
        2**64,  # one past msgpack's own ints
        -(2**63) - 1,
        10**5000,  # beyond str()'s digit limit
        "lone \ud800 surrogate",
        {"\udfff": "\ud800"},
        datetime.timedelta.min,
        decimal.Decimal("NaN"),
    ],
    ids=lambda value: type(value).__name__,
)
def test_msgpack_round_trips_the_edges(value: Any) -> None:
    result = round_trip(value)
    assert typed(result) == typed(value) or (result.is_nan() and value.is_nan())


class Color(enum.IntEnum):
    RED = 1


class Text(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        Custom(1, []),
        object(),
        complex(1, 2),
        range(3),
        [1, {"deep": object()}],
        Color.RED,  # an int subclass: refused, not read back as a plain int
        Text("x"),
        collections.OrderedDict(a=1),
    ],
    ids=repr,
)
def test_msgpack_refuses_other_values_and_points_at_signed_pickle(value: Any) -> None:
    with pytest.raises(TypeError, match=r"secret=") as info:
        MsgpackSerializer().dumps(value)
    assert "pickle" in str(info.value)


def test_bytearray_is_stored_as_bytes() -> None:
    # msgpack packs byte buffers itself, without asking: documented on MsgpackSerializer.
    assert round_trip(bytearray(b"ab")) == b"ab"


# -- the cache ------------------------------------------------------------------------------


def _serializer_id(record: bytes) -> int:
    fields = TRAILER.unpack_from(record, len(record) - TRAILER_SIZE)
    serializer_id: int = fields[5]
    return serializer_id


def test_a_redis_cache_without_secret_stores_msgpack(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with Cache(redis_url, namespace="fmt") as cache:
        value = {"when": datetime.date(2024, 1, 1), (1, 2): {b"x"}, "n": 2**70}
        assert cache.set("k", value) is True
        record = redis_client.get(cache.store_key("k"))
        assert isinstance(record, bytes)
        assert _serializer_id(record) == MSGPACK_ID
        assert typed(cache.get("k")) == typed(value)
        assert typed(cache.get_many(["k"])["k"]) == typed(value)


# A record the JSON serializer wrote (cacheplug before MessagePack), kept as bytes so that a
# change to JsonSerializer cannot change it: serializer id 2, no tags, never stale.
OLD_JSON_RECORD = (
    b'{"__cp__":"dict","v":[["id",42],["when",{"__cp__":"datetime","v":"2024-05-01T12:30:00+00:0'
    b'0"}],["price",{"__cp__":"decimal","v":"249.90"}],["dims",{"__cp__":"tuple","v":[32.0,28.5]'
    b'}],["tags",{"__cp__":"set","v":["a"]}],["raw",{"__cp__":"bytes","v":"AP8="}],[7,"int key"'
    b'],["big",1267650600228229401496703205376]]}'
    b"\x00\x00\x00@\xfcT\xd9A\x00\x00\x00\x00\x00\x00\xf0\x7f\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x02\x00\x01"
)
OLD_JSON_VALUE = {
    "id": 42,
    "when": datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC),
    "price": decimal.Decimal("249.90"),
    "dims": (32.0, 28.5),
    "tags": {"a"},
    "raw": b"\x00\xff",
    7: "int key",
    "big": 2**100,
}


def test_an_entry_the_json_serializer_wrote_is_read_exactly(
    redis_url: str, redis_client: redis.Redis
) -> None:
    assert _serializer_id(OLD_JSON_RECORD) == JSON_ID
    with Cache(redis_url, namespace="fmt") as cache:
        assert isinstance(cache._engine._codec._serializer, MsgpackSerializer)
        redis_client.set(cache.store_key("old"), OLD_JSON_RECORD)
        assert typed(cache.get("old")) == typed(OLD_JSON_VALUE)
        assert typed(cache.get("old")) == typed(OLD_JSON_VALUE)  # the remembered record
        assert typed(cache.get_many(["old"])["old"]) == typed(OLD_JSON_VALUE)
        assert cache.stats().discarded == 0


def test_a_json_cache_discards_msgpack_entries(redis_url: str) -> None:
    # Rolling back to serializer="json" (or a process without msgpack): a miss, not an error.
    with (
        Cache(redis_url, namespace="fmt") as new,
        Cache(redis_url, namespace="fmt", serializer="json") as old,
    ):
        new.set("k", (1, 2))
        assert old.get("k", MISSING) is MISSING
        assert old.stats().discarded == 1
        assert old.get_or_load("k", lambda: (3, 4)) == (3, 4)
        assert new.get("k") == (3, 4)  # and the new one reads what the old one wrote


def test_without_msgpack_auto_falls_back_to_json_and_msgpack_is_refused(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_choice, "msgpack_available", lambda: False)
    with Cache(redis_url, namespace="fmt") as cache:
        assert isinstance(cache._engine._codec._serializer, JsonSerializer)
    with pytest.raises(ConfigurationError, match=r"pip install 'cacheplug\[redis\]'"):
        Cache(redis_url, namespace="fmt", serializer="msgpack")


# -- forged and garbled records -------------------------------------------------------------


def envelope(payload: bytes, serializer_id: int = MSGPACK_ID) -> bytes:
    return pack(
        payload,
        serializer_id=serializer_id,
        flags=0,
        created_at=0.0,
        fresh_until=NEVER,
        compute_time=0.0,
    )


FORGED_PAYLOADS: dict[str, bytes] = {
    "empty": b"",
    "truncated map": b"\x83\xa1a",
    "array claiming 2**32 - 1 items": b"\xdd\xff\xff\xff\xff\x01",
    "str claiming 4 GB": b"\xdb\xff\xff\xff\xff" + b"x" * 16,
    "nested 100 000 deep": b"\x91" * 100_000 + b"\xc0",
    "unknown extension": b"\xd4\x63\x00",
    "marker holding data": b"\x92\xd4\x01\x00\x01",
    "bad datetime": b"\xc7\x03\x04abc",
    "bad uuid": b"\xc7\x03\x09abc",
    "bad timedelta": b"\xc7\x03\x07abc",
    "bad decimal": b"\xc7\x03\x08\xff\xfe\xfd",
    "trailing bytes": b"\x01\x02",
    "reserved byte": b"\xc1",
    "unhashable key": b"\x81\x91\x01\x02",
    "invalid utf-8": b"\xa2\xff\xfe",
}


@pytest.mark.parametrize("name", list(FORGED_PAYLOADS))
def test_a_forged_payload_is_a_miss(name: str, redis_url: str, redis_client: redis.Redis) -> None:
    with Cache(redis_url, namespace="fmt") as cache:
        redis_client.set(cache.store_key("k"), envelope(FORGED_PAYLOADS[name]))
        assert cache.get("k", MISSING) is MISSING
        assert cache.get_many(["k"]) == {}
        assert cache.stats().discarded == 2
        assert cache.get_or_load("k", lambda: "loaded") == "loaded"


def test_a_msgpack_cache_never_reads_pickle(redis_url: str, redis_client: redis.Redis) -> None:
    with Cache(redis_url, namespace="fmt") as cache:
        redis_client.set(cache.store_key("k"), envelope(b"\x80\x05K\x01.", PICKLE_ID))
        assert cache.get("k", MISSING) is MISSING


def test_every_garbled_byte_is_a_miss_or_a_value_never_an_exception(
    redis_url: str, redis_client: redis.Redis
) -> None:
    value = {"when": datetime.datetime(2024, 1, 1), "set": {1, 2}, "t": (b"x", 2**80), 1.5: None}
    with Cache(redis_url, namespace="fmt", strict=True) as cache:
        cache.set("k", value)
        skey = cache.store_key("k")
        genuine = redis_client.get(skey)
        assert isinstance(genuine, bytes)
        trailer = len(genuine) - TRAILER_SIZE
        payload_end = trailer - struct.unpack_from("<I", genuine, trailer + 20)[0]
        missed = 0
        for position in range(payload_end):
            for mask in (0x01, 0x80, 0xFF):
                garbled = bytearray(genuine)
                garbled[position] ^= mask
                redis_client.set(skey, bytes(garbled))
                if cache.get("k", MISSING) is MISSING:  # strict: an exception would raise
                    missed += 1
            for cut in (1, position):
                redis_client.set(skey, genuine[: payload_end - cut] + genuine[payload_end:])
                cache.get("k", MISSING)
        assert missed  # some of them are misses, none raised
