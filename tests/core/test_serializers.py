"""Serializers: the data-only JSON codec round-trips exactly; the cache picks a safe codec."""

from __future__ import annotations

import datetime
import decimal
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cacheplug import Cache, ConfigurationError, JsonSerializer, PickleSerializer

UTC = datetime.UTC
PLUS_5_30 = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
MINUS_8 = datetime.timezone(datetime.timedelta(hours=-8))


class Custom:
    """A plain class: picklable, but not data JSON can hold."""

    def __init__(self, pk: int, tags: list[str]) -> None:
        self.pk = pk
        self.tags = tags

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Custom) and (self.pk, self.tags) == (other.pk, other.tags)

    __hash__ = None  # type: ignore[assignment]


def typed(value: Any) -> Any:
    """A hashable picture of ``value`` that includes every type, for exact comparisons
    (``1 == 1.0 == True`` and ``(1,) != [1]`` would otherwise hide lost types)."""
    kind = type(value)
    if kind is float:
        return ("float", "nan" if math.isnan(value) else repr(value))
    if kind is decimal.Decimal:
        return ("Decimal", str(value))
    if kind in (list, tuple):
        return (kind.__name__, tuple(typed(v) for v in value))
    if kind in (set, frozenset):
        return (kind.__name__, frozenset(typed(v) for v in value))
    if kind is dict:
        return ("dict", frozenset((typed(k), typed(v)) for k, v in value.items()))
    if kind in (datetime.datetime, datetime.time):
        return (kind.__name__, value.isoformat(), value.utcoffset())
    return (kind.__name__, value)


def round_trip(value: Any) -> Any:
    serializer = JsonSerializer()
    payload = serializer.dumps(value)
    assert isinstance(payload, bytes)
    return serializer.loads(payload)


def assert_exact(value: Any) -> None:
    result = round_trip(value)
    assert typed(result) == typed(value), (value, result)


# -- exact round trips -----------------------------------------------------------------------

EXACT_VALUES: dict[str, Any] = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "negative": -17,
    "big int": 2**200,
    "negative big int": -(3**150),
    "float": 0.1,
    "negative zero": -0.0,
    "tiny float": 5e-324,
    "huge float": 1.7976931348623157e308,
    "inf": math.inf,
    "-inf": -math.inf,
    "str": "hello",
    "empty str": "",
    "unicode str": "naïve ☃ \U0001f600 \x00\u2028",
    "nested": {"a": [1, {"b": [2.5, None, {"c": "d"}]}], "e": {}},
    "list of mixed": [1, 1.0, True, "1", None, b"1"],
    "tuple": (1, "a", None),
    "empty tuple": (),
    "nested tuple": ((1, (2, (3,))), [4, (5,)]),
    "list in tuple": ([1, 2], {"k": (3,)}),
    "int keys": {1: "a", 2: "b", -3: "c"},
    "mixed keys": {1: "int", "1": "str", 1.5: "float", None: "none", False: "bool"},
    "tuple keys": {(1, 2): "a", ("x", (3, 4)): "b", (): "empty"},
    "frozenset key": {frozenset({1, 2}): "a"},
    "tag key alone": {"__cp__": 1},
    "tag-shaped dict": {"__cp__": "tuple", "v": [1, 2]},
    "tag-shaped bytes": {"__cp__": "bytes", "v": "AAAA"},
    "tag key with int keys": {"__cp__": "x", 1: 2},
    "nested tag-shaped": [{"__cp__": "set", "v": []}, ({"__cp__": "dict", "v": [[1, 2]]},)],
    "bytes": b"\x00\x01\xff binary",
    "empty bytes": b"",
    "set": {1, "a", (2, 3)},
    "empty set": set(),
    "frozenset": frozenset({"x", frozenset({1})}),
    "empty frozenset": frozenset(),
    "naive datetime": datetime.datetime(2024, 2, 29, 23, 59, 58, 123456),
    "utc datetime": datetime.datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
    "offset datetime": datetime.datetime(1999, 12, 31, 23, 59, tzinfo=PLUS_5_30),
    "negative offset datetime": datetime.datetime(2030, 6, 1, 0, 0, 0, 1, tzinfo=MINUS_8),
    "date": datetime.date(2024, 2, 29),
    "min date": datetime.date.min,
    "time": datetime.time(13, 14, 15, 161718),
    "aware time": datetime.time(1, 2, 3, tzinfo=PLUS_5_30),
    "timedelta": datetime.timedelta(days=-3, seconds=7, microseconds=9),
    "max timedelta": datetime.timedelta.max,
    "decimal": decimal.Decimal("3.14159265358979323846264338327950288"),
    "decimal exponent": decimal.Decimal("-1.20E+7"),
    "decimal negative zero": decimal.Decimal("-0.00"),
    "decimal infinity": decimal.Decimal("-Infinity"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "everything nested": {
        "when": [datetime.date(2020, 1, 1), (datetime.timedelta(1),)],
        (1, b"k"): {frozenset({uuid.UUID(int=0)}): decimal.Decimal("1.5")},
    },
}


@pytest.mark.parametrize("value", list(EXACT_VALUES.values()), ids=list(EXACT_VALUES))
def test_json_round_trips_exactly(value: Any) -> None:
    assert_exact(value)


def test_nan_round_trips() -> None:
    result = round_trip(math.nan)
    assert type(result) is float
    assert math.isnan(result)
    nested = round_trip({"x": [math.nan, (math.nan,)]})
    assert math.isnan(nested["x"][0])
    assert type(nested["x"][1]) is tuple
    assert math.isnan(nested["x"][1][0])


def test_decimal_nan_round_trips() -> None:
    result = round_trip(decimal.Decimal("NaN"))
    assert type(result) is decimal.Decimal
    assert result.is_nan()


def test_tz_aware_datetimes_keep_their_offset() -> None:
    value = datetime.datetime(2024, 3, 10, 8, 30, tzinfo=PLUS_5_30)
    result = round_trip(value)
    assert result == value
    assert result.utcoffset() == datetime.timedelta(hours=5, minutes=30)
    naive = round_trip(datetime.datetime(2024, 3, 10, 8, 30))
    assert naive.tzinfo is None


def test_strings_with_lone_surrogates_round_trip() -> None:
    # Python strings may hold lone surrogates (e.g. from os.fsdecode); pickle keeps them.
    assert_exact("\ud800")
    assert_exact({"name": "bad\udcff"})


def test_a_json_cache_stores_strings_with_lone_surrogates(redis_url: str) -> None:
    cache = Cache(redis_url)
    assert cache.set("k", ["file-\udcff.txt"]) is True
    assert cache.get("k") == ["file-\udcff.txt"]
    cache.close()


def test_ints_beyond_the_str_conversion_limit_round_trip_or_raise_type_error() -> None:
    # The Serializer protocol: raise TypeError for a value the serializer cannot encode.
    value = 10**5000
    try:
        payload = JsonSerializer().dumps(value)
    except TypeError:
        return
    assert JsonSerializer().loads(payload) == value


# -- hypothesis: recursive data --------------------------------------------------------------

hashable_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=20)
    | st.dates()
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.times()
    | st.timedeltas()
    | st.decimals(allow_nan=False)
    | st.uuids()
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.tuples(inner) | st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)


def _fixed_offset(value: Any) -> Any:
    """Replace zone objects by the fixed offset they had: isoformat keeps only the offset."""
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        offset = value.utcoffset()
        assert offset is not None
        return value.replace(tzinfo=datetime.timezone(offset))
    return value


data = st.recursive(
    hashable_leaves.map(_fixed_offset) | st.sampled_from(["__cp__", "v"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=8) | st.just("__cp__"), inner, max_size=4)
        | st.dictionaries(hashables.map(_fixed_offset), inner, max_size=4)
        | st.sets(hashables.map(_fixed_offset), max_size=4)
        | st.frozensets(hashables.map(_fixed_offset), max_size=4)
        | st.fixed_dictionaries({"__cp__": st.sampled_from(["tuple", "dict", "bytes"]), "v": inner})
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(data)
def test_json_round_trips_recursive_data(value: Any) -> None:
    assert_exact(value)


# -- what JSON refuses -----------------------------------------------------------------------


def _function() -> None:
    pass


@pytest.mark.parametrize(
    "value",
    [
        Custom(1, []),
        object(),
        _function,
        len,
        [1, Custom(2, [])],
        {"nested": {"deep": object()}},
        {Custom: 1},
        complex(1, 2),
        bytearray(b"x"),
        range(3),
    ],
    ids=repr,
)
def test_json_refuses_other_values_and_points_at_signed_pickle(value: Any) -> None:
    with pytest.raises(TypeError, match=r"secret=") as info:
        JsonSerializer().dumps(value)
    assert "pickle" in str(info.value)


# -- the cache's choice of serializer --------------------------------------------------------


def test_a_redis_cache_without_secret_stores_data_only(redis_url: str) -> None:
    cache = Cache(redis_url)
    with pytest.raises(TypeError, match="secret="):
        cache.set("obj", Custom(1, ["a"]))
    assert cache.get("obj") is None
    assert cache.set("tuple", (1, ("two", 3.0))) is True
    result = cache.get("tuple")
    assert typed(result) == typed((1, ("two", 3.0)))
    cache.close()


def test_get_or_load_with_an_unstorable_value_raises_without_secret(redis_url: str) -> None:
    cache = Cache(redis_url)
    with pytest.raises(TypeError, match="secret="):
        cache.get_or_load("obj", lambda: Custom(1, []))
    assert cache.get("obj", default="absent") == "absent"
    cache.close()


def test_a_redis_cache_with_a_secret_stores_any_picklable_value(
    redis_url: str, redis_client: Any
) -> None:
    cache = Cache(redis_url, secret="s3cret")
    value = Custom(7, ["x", "y"])
    assert cache.set("obj", value) is True
    assert cache.get("obj") == value
    # A second cache (a second process) reads it too: it really went through Redis.
    other = Cache(redis_url, secret="s3cret")
    assert other.get("obj") == value
    assert redis_client.get(cache.store_key("obj")) is not None
    cache.close()
    other.close()


def test_pickle_without_secret_on_a_shared_store_is_refused(redis_url: str) -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        Cache(redis_url, serializer="pickle")


def test_pickle_with_secret_on_a_shared_store_is_allowed(redis_url: str) -> None:
    cache = Cache(redis_url, serializer="pickle", secret="s")
    cache.set("obj", Custom(1, []))
    assert cache.get("obj") == Custom(1, [])
    cache.close()


def test_unsafe_pickle_is_allowed_without_secret(redis_url: str) -> None:
    cache = Cache(redis_url, serializer="unsafe-pickle")
    cache.set("obj", Custom(3, ["z"]))
    assert cache.get("obj") == Custom(3, ["z"])
    cache.close()


def test_explicit_json_with_a_secret_still_refuses_objects(redis_url: str) -> None:
    cache = Cache(redis_url, serializer="json", secret="s")
    with pytest.raises(TypeError):
        cache.set("obj", Custom(1, []))
    cache.set("data", {1: (2, b"3")})
    assert typed(cache.get("data")) == typed({1: (2, b"3")})
    cache.close()


def test_unknown_serializer_names_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        Cache(serializer="yaml")  # type: ignore[arg-type]


def test_the_memory_cache_stores_any_picklable_value_without_secret() -> None:
    cache = Cache()
    value = {"obj": Custom(1, ["a"]), "when": datetime.datetime.now(UTC), "c": 1j}
    cache.set("k", value)
    assert cache.get("k") == value


def test_the_memory_cache_returns_copies() -> None:
    cache = Cache()
    original = [1, [2, 3], Custom(4, ["t"])]
    cache.set("list", original)
    original.append("changed after set")
    first = cache.get("list")
    assert first == [1, [2, 3], Custom(4, ["t"])]
    first.append(99)
    first[1].append(99)
    first[2].tags.append("mutated")
    assert cache.get("list") == [1, [2, 3], Custom(4, ["t"])]
    loaded = cache.get_or_load("other", lambda: [1])
    loaded.append(2)
    assert cache.get("other") == [1]


def _generator() -> Iterator[int]:
    yield 1


@pytest.mark.parametrize(
    "make", [lambda: lambda: 1, threading.Lock, _generator], ids=["lambda", "lock", "generator"]
)
def test_unpicklable_values_raise_type_error(make: Callable[[], Any]) -> None:
    value = make()

    def loader() -> Any:
        return value

    for cache in (Cache(), Cache(serializer="unsafe-pickle")):
        with pytest.raises(TypeError):
            cache.set("k", value)
        with pytest.raises(TypeError):
            cache.get_or_load("k", loader)
        assert cache.get("k", default="absent") == "absent"


def test_unpicklable_values_raise_type_error_on_a_signed_redis_cache(redis_url: str) -> None:
    cache = Cache(redis_url, secret="s")
    with pytest.raises(TypeError):
        cache.set("k", threading.Lock())
    with pytest.raises(TypeError):
        cache.get_or_load("k", lambda: lambda: 1)
    assert cache.get("k", default="absent") == "absent"
    cache.close()


def test_pickle_serializer_reports_unpicklable_values_as_type_error() -> None:
    with pytest.raises(TypeError):
        PickleSerializer().dumps(lambda: 1)
    with pytest.raises(TypeError):
        PickleSerializer().dumps(threading.Lock())
