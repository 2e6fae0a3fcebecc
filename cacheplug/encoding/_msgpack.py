"""The data-only serializer of unsigned shared entries: MessagePack with extension types.

It stores what :class:`~cacheplug.JsonSerializer` stores, round-tripped exactly (tuples,
sets, frozensets, bytes, dates, times, timedeltas, ``Decimal``, ``UUID``, ints of any size,
dicts with keys of any of these types), and never executes code. It replaced JSON as the
default because a hit decodes in C without a Python call per object: JSON's ``object_hook``
ran for every dict and cost a Redis hit 14-16 % over ``GET`` + ``pickle.loads``
(``benchmarks/codec.py``).

Scalars msgpack lacks are extension types whose data is a few bytes. Containers msgpack lacks
(tuple, set, frozenset) are msgpack arrays that start with an empty *marker* extension, turned
back into their type by ``list_hook``; they are not extension types holding nested msgpack,
because decoding those copies each nesting level's bytes, so a forged record nested deeply
would cost its size times its depth. Decoding is bounded by msgpack itself: lengths cannot
claim more than the record holds, nesting stops at 1024 levels.

``msgpack`` is imported when a serializer is made, not with this module: it comes with the
``redis`` extra, and only a shared store (where entries may be unsigned) needs it.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import importlib.util
import struct
import uuid
from collections.abc import Callable
from typing import Any, Final

from cacheplug.encoding._serializers import unstorable

MSGPACK_ID: Final = 3

# Extension type codes (0-127 are the application's; msgpack keeps the negative ones).
_TUPLE: Final = 1
_SET: Final = 2
_FROZENSET: Final = 3
_DATETIME: Final = 4
_DATE: Final = 5
_TIME: Final = 6
_TIMEDELTA: Final = 7
_DECIMAL: Final = 8
_UUID: Final = 9
_INT: Final = 10
_TIMEDELTA_FIELDS: Final = struct.Struct("<iii")  # days (|d| < 10**9), seconds, microseconds


class _Marker:
    """Stands first in an array that is really a tuple, a set or a frozenset."""

    __slots__ = ("build",)

    def __init__(self, build: Callable[[list[Any]], Any]) -> None:
        self.build = build


_MARKERS: Final[dict[int, _Marker]] = {
    _TUPLE: _Marker(tuple),
    _SET: _Marker(set),
    _FROZENSET: _Marker(frozenset),
}

_SCALARS: Final[dict[int, Callable[[bytes], Any]]] = {
    _DATETIME: lambda data: datetime.datetime.fromisoformat(data.decode("ascii")),
    _DATE: lambda data: datetime.date.fromisoformat(data.decode("ascii")),
    _TIME: lambda data: datetime.time.fromisoformat(data.decode("ascii")),
    _TIMEDELTA: lambda data: datetime.timedelta(*_TIMEDELTA_FIELDS.unpack(data)),
    _DECIMAL: lambda data: decimal.Decimal(data.decode("ascii")),
    _UUID: lambda data: uuid.UUID(bytes=data),
    _INT: lambda data: int.from_bytes(data, "little", signed=True),
}


def msgpack_available() -> bool:
    """Whether ``msgpack`` can be imported (it comes with the ``redis`` extra)."""
    return importlib.util.find_spec("msgpack") is not None


class MsgpackSerializer:
    """Data-only MessagePack that round-trips exactly and can never execute code.

    Stores the values :class:`JsonSerializer` stores, decoded about four times faster; reads
    entries the JSON serializer wrote too. Anything else raises a ``TypeError`` that says how
    to switch to signed pickle. ``bytearray`` and ``memoryview`` values are stored as (and
    read back as) ``bytes``. Needs ``msgpack`` (``pip install 'cacheplug[redis]'``).
    """

    id = MSGPACK_ID
    __slots__ = ("_dumps", "loads")

    def __init__(self) -> None:
        import msgpack  # the redis extra's: imported only when this serializer is chosen

        ext_type = msgpack.ExtType
        markers = {code: ext_type(code, b"") for code in _MARKERS}

        def default(value: Any) -> Any:
            kind = type(value)
            if kind is tuple:
                return [markers[_TUPLE], *value]
            if kind is set:
                return [markers[_SET], *value]
            if kind is frozenset:
                return [markers[_FROZENSET], *value]
            if kind is int:  # beyond msgpack's 64 bits
                size = value.bit_length() // 8 + 1
                return ext_type(_INT, value.to_bytes(size, "little", signed=True))
            if kind is datetime.datetime:
                return ext_type(_DATETIME, value.isoformat().encode("ascii"))
            if kind is datetime.date:
                return ext_type(_DATE, value.isoformat().encode("ascii"))
            if kind is datetime.time:
                return ext_type(_TIME, value.isoformat().encode("ascii"))
            if kind is datetime.timedelta:
                fields = (value.days, value.seconds, value.microseconds)
                return ext_type(_TIMEDELTA, _TIMEDELTA_FIELDS.pack(*fields))
            if kind is decimal.Decimal:
                return ext_type(_DECIMAL, str(value).encode("ascii"))
            if kind is uuid.UUID:
                return ext_type(_UUID, value.bytes)
            raise unstorable(kind, "MessagePack")

        # strict_types: subclasses (an IntEnum, an OrderedDict) reach ``default`` and are
        # refused rather than stored as their base type and read back as another.
        # surrogatepass: a str may hold lone surrogates, which UTF-8 cannot encode.
        self._dumps = functools.partial(
            msgpack.packb,
            default=default,
            strict_types=True,
            use_bin_type=True,
            unicode_errors="surrogatepass",
        )
        unpackb = msgpack.unpackb

        # A closure rather than a partial: 0.15 us less a hit (a partial merges its keywords
        # into a new dict on every call).
        def loads(payload: bytes | memoryview) -> Any:
            return unpackb(
                payload,
                ext_hook=_ext_hook,
                list_hook=_list_hook,
                strict_map_key=False,  # dict keys of every type, as stored
                unicode_errors="surrogatepass",
            )

        self.loads = loads

    def dumps(self, value: Any) -> bytes:
        try:
            payload: bytes = self._dumps(value)
        except (ValueError, OverflowError) as exc:  # nested too deeply
            raise TypeError(f"cannot store this value as MessagePack: {exc}") from exc
        return payload


def _ext_hook(code: int, data: bytes) -> Any:
    marker = _MARKERS.get(code)
    if marker is not None:
        if data:
            raise ValueError("a marker extension holds data")
        return marker
    scalar = _SCALARS.get(code)
    if scalar is None:
        raise ValueError(f"unknown extension type {code}")
    return scalar(data)


def _list_hook(items: list[Any]) -> Any:
    if items and type(items[0]) is _Marker:
        marker: _Marker = items[0]
        del items[0]
        return marker.build(items)
    return items
