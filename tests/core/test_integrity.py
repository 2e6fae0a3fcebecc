"""Signed entries: what another writer puts into Redis is never unpickled unless we signed it.

The acceptance criterion of the signing work: a forged pickle payload written straight into
Redis under a cache key is discarded, and the payload's code never runs.
"""

from __future__ import annotations

import asyncio
import pickle
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from cacheplug import Cache, MemoryStore
from cacheplug.encoding._envelope import FLAG_COMPRESSED, pack
from cacheplug.encoding._serializers import JSON_ID, PICKLE_ID
from cacheplug.encoding._signing import SIGNATURE_SIZE, Signer
from cacheplug.testing import FakeClock, RedisServer

SECRET = "integrity-test-secret"
NOW = 1_700_000_000.0
MISSING: Any = object()


class Exploit:
    """Unpickling this runs ``exec``: it appends to ``marker``, creating the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        code = f"open({str(self.marker)!r}, 'a').write('the forged payload ran\\n')"
        return (exec, (code,))


def forged_pickle(marker: Path) -> bytes:
    return pickle.dumps(Exploit(marker), protocol=pickle.HIGHEST_PROTOCOL)


def envelope(payload: bytes, serializer_id: int = PICKLE_ID, flags: int = 0) -> bytes:
    return pack(
        payload,
        serializer_id=serializer_id,
        flags=flags,
        created_at=NOW,
        fresh_until=NOW + 10**9,  # fresh for decades: staleness cannot explain a miss
        compute_time=0.0,
    )


def _our_key_id_suffix(store_key: str) -> bytes:
    """The key id and marker our secret puts on a signature (not a secret in itself)."""
    return Signer(SECRET).sign(store_key, b"")[-3:]


# Each shape: (store key, forged payload) -> the bytes written into Redis.
SHAPES: dict[str, Callable[[str, bytes], bytes]] = {
    "raw pickle": lambda skey, payload: payload,
    "unsigned envelope": lambda skey, payload: envelope(payload),
    "wrong secret": lambda skey, payload: Signer("other").sign(skey, envelope(payload)),
    "our key id, forged mac": lambda skey, payload: (
        envelope(payload) + bytes(16) + _our_key_id_suffix(skey)
    ),
    "our secret, signed for another key": lambda skey, payload: Signer(SECRET).sign(
        skey.replace("{k}", "{elsewhere}"), envelope(payload)
    ),
    "signature appended twice": lambda skey, payload: Signer("other").sign(
        skey, Signer("other").sign(skey, envelope(payload))
    ),
    "compressed, wrong secret": lambda skey, payload: Signer("other").sign(
        skey, envelope(zlib.compress(payload), flags=FLAG_COMPRESSED)
    ),
}


@pytest.fixture
def signed(redis_url: str) -> Iterator[Cache]:
    cache = Cache(redis_url, namespace="test", secret=SECRET)
    yield cache
    cache.close()


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "forged-payload-ran"


# -- the payloads really are dangerous -------------------------------------------------------


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_forged_record_runs_its_code_under_plain_pickle(shape: str, tmp_path: Path) -> None:
    proof = tmp_path / f"proof-{shape.replace(' ', '-').replace(',', '')}"
    record = SHAPES[shape]("test:0:d:{k}", forged_pickle(proof))
    if shape.startswith("compressed"):
        record = zlib.decompressobj().decompress(record)  # trailing bytes are ignored
    assert not proof.exists()
    pickle.loads(record)  # pickle stops at its STOP opcode: the trailer does not protect
    assert proof.exists(), "the payload must execute when unpickled, or the tests prove nothing"


# -- forged records are discarded, never unpickled -------------------------------------------


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_forged_record_is_discarded_and_never_runs(
    shape: str, signed: Cache, redis_url: str, redis_client: redis.Redis, marker: Path
) -> None:
    skey = signed.store_key("k")
    record = SHAPES[shape](skey, forged_pickle(marker))
    redis_client.set(skey, record)

    before = signed.stats().discarded
    assert signed.get("k") is None
    assert signed.get("k", default=MISSING) is MISSING
    assert signed.get_many(["k"]) == {}
    assert signed.stats().discarded == before + 3
    assert not marker.exists()

    assert signed.get_or_load("k", lambda: "loaded") == "loaded"
    assert not marker.exists()
    assert redis_client.get(skey) != record  # the loader's value replaced the forgery
    assert signed.get("k") == "loaded"
    with Cache(redis_url, namespace="test", secret=SECRET) as fresh:  # another process
        assert fresh.get("k") == "loaded"
    assert not marker.exists()


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_forged_record_is_discarded_by_the_async_api(
    shape: str, signed: Cache, redis_client: redis.Redis, marker: Path
) -> None:
    skey = signed.store_key("k")
    redis_client.set(skey, SHAPES[shape](skey, forged_pickle(marker)))

    async def read() -> tuple[Any, dict[str, Any], Any]:
        try:
            return (
                await signed.aget("k", MISSING),
                await signed.aget_many(["k"]),
                await signed.aget_or_load("k", lambda: "loaded"),
            )
        finally:
            await signed.aclose()

    assert asyncio.run(read()) == (MISSING, {}, "loaded")
    assert not marker.exists()


def test_a_forgery_replacing_a_verified_entry_is_discarded(
    signed: Cache, redis_client: redis.Redis, marker: Path
) -> None:
    signed.set("k", ["genuine"])
    assert signed.get("k") == ["genuine"]  # verified, and remembered as verified
    skey = signed.store_key("k")
    genuine = redis_client.get(skey)
    assert isinstance(genuine, bytes)
    forged = forged_pickle(marker)
    # The forgery in front of the genuine record; the forged envelope under the genuine
    # signature.
    for record in (forged + genuine, envelope(forged) + genuine[-SIGNATURE_SIZE:]):
        redis_client.set(skey, record)
        assert signed.get("k", MISSING) is MISSING
    assert not marker.exists()


def test_a_genuine_record_copied_to_another_key_is_discarded(
    signed: Cache, redis_client: redis.Redis
) -> None:
    signed.set("source", {"secret": "for source only"})
    genuine = redis_client.get(signed.store_key("source"))
    assert isinstance(genuine, bytes)
    redis_client.set(signed.store_key("k"), genuine)
    before = signed.stats().discarded
    assert signed.get("k", MISSING) is MISSING
    assert signed.stats().discarded == before + 1
    assert signed.get("source") == {"secret": "for source only"}


def test_a_record_of_another_namespace_is_discarded(
    redis_url: str, redis_client: redis.Redis
) -> None:
    one = Cache(redis_url, namespace="one", secret=SECRET)
    two = Cache(redis_url, namespace="two", secret=SECRET)
    one.set("k", "one's value")
    genuine = redis_client.get(one.store_key("k"))
    assert isinstance(genuine, bytes)
    redis_client.set(two.store_key("k"), genuine)
    assert two.get("k", MISSING) is MISSING
    one.close()
    two.close()


# -- a JSON cache never unpickles ------------------------------------------------------------


JSON_SHAPES: dict[str, Callable[[bytes], bytes]] = {
    "raw pickle": lambda payload: payload,
    "claims pickle": lambda payload: envelope(payload, PICKLE_ID),
    "claims compressed pickle": lambda payload: envelope(
        zlib.compress(payload), PICKLE_ID, FLAG_COMPRESSED
    ),
    "claims json": lambda payload: envelope(payload, JSON_ID),
    "claims compressed json": lambda payload: envelope(
        zlib.compress(payload), JSON_ID, FLAG_COMPRESSED
    ),
}


@pytest.mark.parametrize("shape", list(JSON_SHAPES))
def test_a_cache_without_secret_never_unpickles(
    shape: str, redis_url: str, redis_client: redis.Redis, marker: Path
) -> None:
    cache = Cache(redis_url, namespace="test")
    cache.set("probe", (1, 2))
    assert cache.get("probe") == (1, 2)
    probe = redis_client.get(cache.store_key("probe"))
    assert isinstance(probe, bytes)
    assert probe.startswith(b"\x93\xc7\x00\x01")  # data-only MessagePack: [tuple marker, 1, 2]

    skey = cache.store_key("k")
    redis_client.set(skey, JSON_SHAPES[shape](forged_pickle(marker)))
    before = cache.stats().discarded
    assert cache.get("k", MISSING) is MISSING
    assert cache.get_many(["k"]) == {}
    assert cache.stats().discarded == before + 2
    assert cache.get_or_load("k", lambda: {"fresh": True}) == {"fresh": True}
    assert cache.get("k") == {"fresh": True}
    assert not marker.exists()
    cache.close()


# -- tampering -------------------------------------------------------------------------------

VALUE = {"user": 42, "roles": ["admin", "editor"], "when": (2024, 1, 1)}


def test_flipping_any_byte_of_a_signed_record_discards_it(
    signed: Cache, redis_client: redis.Redis
) -> None:
    signed.set("k", VALUE)
    skey = signed.store_key("k")
    genuine = redis_client.get(skey)
    assert isinstance(genuine, bytes)
    assert signed.get("k") == VALUE
    before = signed.stats().discarded
    reads = 0
    for position in range(len(genuine)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(genuine)
            tampered[position] ^= mask
            redis_client.set(skey, bytes(tampered))
            assert signed.get("k", MISSING) is MISSING, (position, mask)
            reads += 1
    assert signed.stats().discarded == before + reads
    redis_client.set(skey, genuine)
    assert signed.get("k") == VALUE


@pytest.fixture(scope="module")
def module_redis(redis_server: RedisServer) -> Iterator[tuple[Cache, redis.Redis]]:
    url = redis_server.url.rsplit("/", 1)[0] + "/1"  # a database of its own
    client = redis.Redis.from_url(url)
    client.flushdb()
    cache = Cache(url, namespace="tamper", secret=SECRET)
    yield cache, client
    cache.close()
    client.flushdb()
    client.close()


@settings(max_examples=200, deadline=None)
@given(
    value=st.sampled_from([VALUE, "text", 7, None, [1.5] * 50, b"\x00" * 30]),
    position=st.integers(min_value=0),
    replacement=st.integers(min_value=0, max_value=255),
)
def test_replacing_any_byte_of_a_signed_record_discards_it(
    module_redis: tuple[Cache, redis.Redis], value: Any, position: int, replacement: int
) -> None:
    cache, client = module_redis
    cache.set("k", value)
    skey = cache.store_key("k")
    genuine = client.get(skey)
    assert isinstance(genuine, bytes)
    position %= len(genuine)
    if genuine[position] == replacement:
        replacement ^= 0xFF
    tampered = bytearray(genuine)
    tampered[position] = replacement
    client.set(skey, bytes(tampered))
    assert cache.get("k", MISSING) is MISSING


# -- key rotation ----------------------------------------------------------------------------


def test_rotation_reads_old_entries_and_writes_with_the_new_secret(redis_url: str) -> None:
    old = Cache(redis_url, namespace="test", secret="old")
    rotated = Cache(redis_url, namespace="test", secret="new", secret_fallbacks=["old"])
    new_only = Cache(redis_url, namespace="test", secret="new")

    old.set("written-by-old", {"v": 1})
    assert rotated.get("written-by-old") == {"v": 1}
    assert new_only.get("written-by-old", MISSING) is MISSING

    rotated.set("written-by-rotated", {"v": 2})
    assert rotated.get("written-by-rotated") == {"v": 2}
    assert new_only.get("written-by-rotated") == {"v": 2}
    before = old.stats().discarded
    assert old.get("written-by-rotated", MISSING) is MISSING
    assert old.stats().discarded == before + 1

    # Overwriting an old entry re-signs it with the new secret.
    rotated.set("written-by-old", {"v": 3})
    assert new_only.get("written-by-old") == {"v": 3}
    assert old.get("written-by-old", MISSING) is MISSING
    for cache in (old, rotated, new_only):
        cache.close()


def test_rotation_accepts_every_listed_fallback(redis_url: str) -> None:
    oldest = Cache(redis_url, secret=b"oldest")
    old = Cache(redis_url, secret="old")
    oldest.set("a", 1.5)
    old.set("b", 2.5)
    rotated = Cache(redis_url, secret="new", secret_fallbacks=["old", b"oldest"])
    assert rotated.get_many(["a", "b"]) == {"a": 1.5, "b": 2.5}
    dropped = Cache(redis_url, secret="new", secret_fallbacks=["old"])
    assert dropped.get_many(["a", "b"]) == {"b": 2.5}
    for cache in (oldest, old, rotated, dropped):
        cache.close()


# -- unknown formats and truncated records ---------------------------------------------------


def _unsigned_memory_cache() -> Cache:
    return Cache(MemoryStore(), namespace="test", clock=FakeClock(NOW))


@pytest.mark.parametrize("version", [0, 2, 3, 0x7F, 0xC5, 0xFF])
def test_unknown_format_versions_are_misses(version: int) -> None:
    cache = _unsigned_memory_cache()
    cache.set("k", ["a", 1])
    skey = cache.store_key("k")
    record = cache.store.get(skey)
    assert record is not None
    assert record[-1] == 1
    cache.store.set(skey, record[:-1] + bytes((version,)), None)
    before = cache.stats().discarded
    assert cache.get("k", MISSING) is MISSING
    assert cache.get_many(["k"]) == {}
    assert cache.stats().discarded == before + 2
    assert cache.get_or_load("k", lambda: "reloaded") == "reloaded"
    assert cache.store.get(skey) != record
    assert cache.get("k") == "reloaded"


@pytest.mark.parametrize("version", [0, 2, 0xFF])
def test_unknown_format_versions_are_misses_even_when_signed(
    version: int, signed: Cache, redis_client: redis.Redis
) -> None:
    signed.set("k", ["a", 1])
    skey = signed.store_key("k")
    record = redis_client.get(skey)
    assert isinstance(record, bytes)
    body = record[:-SIGNATURE_SIZE]
    assert body[-1] == 1
    redis_client.set(skey, Signer(SECRET).sign(skey, body[:-1] + bytes((version,))))
    assert signed.get("k", MISSING) is MISSING
    assert signed.get_or_load("k", lambda: "reloaded") == "reloaded"


TRUNCATION_VALUES: list[Any] = [
    ["a", 1],
    "text",
    123456789,
    -5,
    None,
    b"\x01\x01\x01",
    {"nested": {"deep": [1.0, 2.0]}},
    "x" * 300,
]


@pytest.mark.parametrize("value", TRUNCATION_VALUES, ids=repr)
def test_truncated_signed_records_are_misses(
    value: Any, signed: Cache, redis_client: redis.Redis
) -> None:
    signed.set("k", value)
    skey = signed.store_key("k")
    record = redis_client.get(skey)
    assert isinstance(record, bytes)
    assert signed.get("k", MISSING) == value
    for length in range(len(record)):
        redis_client.set(skey, record[:length])
        assert signed.get("k", MISSING) is MISSING, length
    redis_client.set(skey, record)
    assert signed.get("k", MISSING) == value


@pytest.mark.parametrize("value", TRUNCATION_VALUES, ids=repr)
def test_truncated_unsigned_memory_records_are_misses(value: Any) -> None:
    cache = _unsigned_memory_cache()
    cache.set("k", value, ttl=None)
    skey = cache.store_key("k")
    record = cache.store.get(skey)
    assert record is not None
    assert cache.get("k", MISSING) == value
    for length in range(len(record)):
        cache.store.set(skey, record[:length], None)
        assert cache.get("k", MISSING) is MISSING, length
    cache.store.set(skey, record, None)
    assert cache.get("k", MISSING) == value


@pytest.mark.parametrize("value", [123456789, -42])
def test_truncated_signed_json_integer_records_are_misses(
    value: int, redis_url: str, redis_client: redis.Redis
) -> None:
    # A signed JSON record of an integer starts with its digits: a prefix ending in a digit
    # must not pass for a (smaller) integer counter.
    cache = Cache(redis_url, namespace="test", secret=SECRET, serializer="json")
    cache.set("k", value)
    skey = cache.store_key("k")
    record = redis_client.get(skey)
    assert isinstance(record, bytes)
    assert cache.get("k") == value
    accepted = {}
    for length in range(len(record)):
        redis_client.set(skey, record[:length])
        found = cache.get("k", MISSING)
        if found is not MISSING:
            accepted[length] = found
    assert accepted == {}
    cache.close()


# -- counters --------------------------------------------------------------------------------


def test_an_incremented_counter_reads_back_as_an_int(cache: Cache) -> None:
    assert cache.incr("n") == 1
    assert cache.incr("n", 4) == 5
    value = cache.get("n")
    assert type(value) is int
    assert value == 5
    assert cache.get_many(["n"]) == {"n": 5}
    assert cache.decr("n", 7) == -2
    assert cache.get("n") == -2


def test_a_cached_integer_becomes_a_counter(cache: Cache) -> None:
    cache.set("m", 5)
    assert cache.incr("m") == 6
    assert cache.get("m") == 6
    assert cache.incr("m", 10) == 16
    assert cache.get_or_load("m", lambda: -1) == 16


def test_a_cached_integer_becomes_a_counter_on_a_json_cache(redis_url: str) -> None:
    cache = Cache(redis_url, namespace="test")
    cache.set("m", 5)
    assert cache.incr("m") == 6
    assert cache.get("m") == 6
    cache.close()
