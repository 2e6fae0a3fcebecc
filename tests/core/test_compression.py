"""``compression``: none, zlib or zstd, chosen in settings; the compression id in the envelope
lets caches read each other's entries (or discard them cleanly); decompression is bounded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
import zstandard

from cacheplug import MISSING, Cache, ConfigurationError
from cacheplug.encoding import _compression
from cacheplug.encoding._compression import ZlibCompressor, ZstdCompressor
from cacheplug.encoding._envelope import TRAILER, TRAILER_SIZE, pack
from cacheplug.encoding._msgpack import MSGPACK_ID
from cacheplug.integration import SETTING_DEFAULTS, cache_options, validate_settings

PAGE = ("<tr><td>espresso machine</td><td>249.90 EUR</td></tr>\n" * 700).encode()  # ~37 KB
LIMIT = 64 * 1024


def flags_of(record: bytes) -> int:
    flags: int = TRAILER.unpack_from(record, len(record) - TRAILER_SIZE)[4]
    return flags


@pytest.mark.parametrize(("compression", "flags"), [("none", 0), ("zlib", 1), ("zstd", 2)])
def test_each_compression_writes_its_id_and_reads_back(
    compression: Any, flags: int, redis_url: str, redis_client: redis.Redis
) -> None:
    with Cache(redis_url, namespace="cz", compression=compression) as cache:
        cache.set("page", PAGE)
        cache.set("small", b"tiny")  # under compress_min_bytes' default, 1024: stored as is
        record = redis_client.get(cache.store_key("page"))
        assert isinstance(record, bytes)
        assert flags_of(record) == flags
        assert (len(record) < len(PAGE) // 4) is (compression != "none")
        small = redis_client.get(cache.store_key("small"))
        assert isinstance(small, bytes)
        assert flags_of(small) == 0
        assert cache.get("page") == PAGE
        assert cache.get_many(["page", "small"]) == {"page": PAGE, "small": b"tiny"}


def test_compress_min_bytes_alone_still_means_zlib(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with Cache(redis_url, namespace="cz", compress_min_bytes=10) as cache:
        cache.set("page", PAGE)
        record = redis_client.get(cache.store_key("page"))
        assert isinstance(record, bytes)
        assert flags_of(record) == 1


@pytest.mark.parametrize(("writer", "reader"), [("zlib", "zstd"), ("zstd", "zlib")])
def test_a_cache_that_compresses_reads_the_other_compression(
    writer: Any, reader: Any, redis_url: str
) -> None:
    with (
        Cache(redis_url, namespace="cz", compression=writer) as one,
        Cache(redis_url, namespace="cz", compression=reader) as other,
    ):
        one.set("page", PAGE)
        assert other.get("page") == PAGE
        assert other.stats().discarded == 0


@pytest.mark.parametrize("writer", ["zlib", "zstd"])
def test_a_cache_that_does_not_compress_discards_compressed_entries(
    writer: Any, redis_url: str
) -> None:
    with (
        Cache(redis_url, namespace="cz", compression=writer) as one,
        Cache(redis_url, namespace="cz", compression="none") as other,
    ):
        one.set("page", PAGE)
        assert other.get("page", MISSING) is MISSING
        assert other.stats().discarded == 1


def test_zstd_entries_are_a_miss_where_zstandard_is_missing(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Cache(redis_url, namespace="cz", compression="zstd") as one:
        one.set("page", PAGE)
        monkeypatch.setattr(_compression, "zstd_available", lambda: False)
        with Cache(redis_url, namespace="cz", compression="zlib") as other:
            assert other.get("page", MISSING) is MISSING
            assert other.stats().discarded == 1


def test_an_unknown_compression_id_is_a_miss(redis_url: str, redis_client: redis.Redis) -> None:
    with Cache(redis_url, namespace="cz", compression="zstd") as cache:
        payload = ZstdCompressor().compress(b"\xa3abc" * 100)
        for flags in (3, 4, 0x82):
            record = pack(
                payload,
                serializer_id=MSGPACK_ID,
                flags=flags,
                created_at=0.0,
                fresh_until=float("inf"),
                compute_time=0.0,
            )
            redis_client.set(cache.store_key("k"), record)
            assert cache.get("k", MISSING) is MISSING, flags


# -- choosing it ----------------------------------------------------------------------------


def test_an_unknown_compression_is_refused_naming_the_choices(redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"'none', 'zlib', 'zstd', not 'lz4'"):
        Cache(compression="lz4")  # type: ignore[arg-type]


def test_zstd_without_zstandard_is_refused_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_compression, "zstd_available", lambda: False)
    with pytest.raises(ConfigurationError, match=r"pip install 'cacheplug\[zstd\]'"):
        Cache(compression="zstd")


def test_the_setting_defaults_to_none_and_becomes_the_cache_option() -> None:
    assert SETTING_DEFAULTS["COMPRESSION"] == "none"
    options = cache_options({}, secret_key=None, secret_key_fallbacks=None)
    assert options["compression"] == "none"
    chosen = cache_options({"COMPRESSION": "zstd"}, secret_key=None, secret_key_fallbacks=None)
    assert chosen["compression"] == "zstd"
    with Cache(**chosen) as cache:
        assert isinstance(cache._engine._codec._compressor, ZstdCompressor)


def spell(name: str) -> str:
    return f"CACHEPLUG_{name}"


@pytest.mark.parametrize("value", ["lz4", "ZSTD", None, 1, True])
def test_a_bad_setting_is_e019_with_a_hint(value: Any) -> None:
    (problem,) = validate_settings({"COMPRESSION": value}, spell=spell)
    assert (problem.code, problem.setting) == ("E019", "CACHEPLUG_COMPRESSION")
    assert "'zstd'" in problem.hint
    assert repr(value) in problem.message


def test_the_zstd_setting_without_zstandard_is_e019(monkeypatch: pytest.MonkeyPatch) -> None:
    assert validate_settings({"COMPRESSION": "zstd"}, spell=spell) == []
    monkeypatch.setattr(_compression, "zstd_available", lambda: False)
    (problem,) = validate_settings({"COMPRESSION": "zstd"}, spell=spell)
    assert problem.code == "E019"
    assert "pip install 'cacheplug[zstd]'" in problem.message


# -- bounded decompression ------------------------------------------------------------------

Decompress = Callable[[bytes, int], "bytes | None"]


def zstd_frame(data: bytes, *, content_size: bool = True) -> bytes:
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=content_size)
    frame: bytes = compressor.compress(data)
    return frame


def test_zstd_refuses_a_bomb_before_decompressing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = zstd_frame(bytes(256 * 1024 * 1024))  # 256 MB of zeros in a few kB
    assert len(bomb) < 64 * 1024
    called: list[int] = []
    real = zstandard.ZstdDecompressor.decompress

    def spy(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        called.append(len(data))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(zstandard.ZstdDecompressor, "decompress", spy)
    assert ZstdCompressor().decompress(bomb, LIMIT) is None
    assert called == []  # refused on its declared size, nothing decompressed


@pytest.mark.parametrize(
    "case",
    ["no content size", "truncated", "trailing bytes", "garbage", "empty", "a second frame"],
)
def test_zstd_refuses_malformed_frames(case: str) -> None:
    frame = zstd_frame(PAGE)
    data = {
        "no content size": zstd_frame(PAGE, content_size=False),
        "truncated": frame[:-4],
        "trailing bytes": frame + b"\x00",
        "garbage": b"\x28\xb5\x2f\xfd" + b"\xff" * 40,
        "empty": b"",
        "a second frame": frame + zstd_frame(b"more"),
    }[case]
    assert ZstdCompressor().decompress(data, LIMIT) is None


def test_zstd_refuses_a_frame_that_understates_its_size() -> None:
    # The header says 300 bytes, the blocks hold 4096: the output buffer is the header's size.
    frame = bytearray(zstd_frame(b"ab" * 2048))
    descriptor = frame[4]
    assert descriptor >> 6 == 1  # a 2-byte size field
    assert descriptor & 0x20  # single segment: no window descriptor before it
    frame[5:7] = (300 - 256).to_bytes(2, "little")  # that size field stores size - 256
    assert zstandard.frame_content_size(bytes(frame)) == 300
    assert ZstdCompressor().decompress(bytes(frame), LIMIT) is None


@pytest.mark.parametrize("compressor", [ZlibCompressor(), ZstdCompressor()], ids=["zlib", "zstd"])
def test_decompression_stops_at_the_limit(compressor: Any) -> None:
    exact = bytes(range(256)) * (LIMIT // 256)
    assert len(exact) == LIMIT
    assert compressor.decompress(compressor.compress(exact), LIMIT) == exact
    assert compressor.decompress(compressor.compress(exact + b"!"), LIMIT) is None


@pytest.mark.parametrize("compression", ["zlib", "zstd"])
def test_a_cache_discards_a_forged_bomb(
    compression: Any, redis_url: str, redis_client: redis.Redis
) -> None:
    compressor = ZlibCompressor() if compression == "zlib" else ZstdCompressor()
    payload = compressor.compress(b"\xc4" + bytes(16 * 1024 * 1024))
    record = pack(
        payload,
        serializer_id=MSGPACK_ID,
        flags=compressor.id,
        created_at=0.0,
        fresh_until=float("inf"),
        compute_time=0.0,
    )
    with Cache(redis_url, namespace="cz", compression=compression, max_value_bytes=LIMIT) as cache:
        redis_client.set(cache.store_key("k"), record)
        assert cache.get("k", MISSING) is MISSING
        assert cache.stats().discarded == 1
