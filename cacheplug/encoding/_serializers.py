"""Serializers: how a value becomes the payload of an envelope.

Each serializer has a one-byte id written into the envelope, so a cache never decodes a
payload with a codec it did not configure: an entry claiming to be pickle is never unpickled by
a cache set up for JSON. Whether pickle is *safe* is decided by the cache (signed entries, or a
store no other process can write), not here.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import pickle
import uuid
from typing import Any, Final, Protocol

PICKLE_ID: Final = 1
JSON_ID: Final = 2


class Serializer(Protocol):
    """Turns values into bytes and back. ``id`` must be unique among serializers in use."""

    id: int

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``; raise ``TypeError`` for a value this serializer cannot encode."""
        ...

    def loads(self, payload: bytes) -> Any:
        """Decode what ``dumps`` produced."""
        ...


class PickleSerializer:
    """pickle at the highest protocol: any picklable value, exact round trip."""

    id = PICKLE_ID
    __slots__ = ()

    def dumps(self, value: Any) -> bytes:
        try:
            return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError) as exc:
            raise TypeError(f"cannot pickle {type(value).__name__} value: {exc}") from exc

    loads = staticmethod(pickle.loads)


_TAG: Final = "__cp__"
_BIG_INT_BITS: Final = 4000 * 3  # comfortably below the 4300-digit str() limit


class JsonSerializer:
    """Data-only JSON that round-trips exactly and can never execute code.

    Besides JSON's own types it keeps tuples, bytes, sets, dates, times, ``Decimal`` and
    ``UUID`` (as tagged objects), and dicts with non-string keys. Anything else raises a
    ``TypeError`` that says how to switch to signed pickle.
    """

    id = JSON_ID
    __slots__ = ()

    def dumps(self, value: Any) -> bytes:
        # ensure_ascii: lone surrogates (valid in a str) survive as \u escapes.
        return json.dumps(_to_json(value), separators=(",", ":"), allow_nan=True).encode("ascii")

    def loads(self, payload: bytes) -> Any:
        return json.loads(payload, object_hook=_from_json)


def _tagged(tag: str, value: Any) -> dict[str, Any]:
    return {_TAG: tag, "v": value}


def _to_json(value: Any) -> Any:
    kind = type(value)
    if kind is int and value.bit_length() > _BIG_INT_BITS:
        return _tagged("int", hex(value))  # str(int) is capped at 4300 digits; hex is not
    if value is None or kind in (str, int, float, bool):
        return value
    if kind is list:
        return [_to_json(v) for v in value]
    if kind is dict:
        if _TAG not in value and all(type(k) is str for k in value):
            return {k: _to_json(v) for k, v in value.items()}
        return _tagged("dict", [[_to_json(k), _to_json(v)] for k, v in value.items()])
    if kind is tuple:
        return _tagged("tuple", [_to_json(v) for v in value])
    if kind is bytes:
        return _tagged("bytes", base64.b64encode(value).decode("ascii"))
    if kind in (set, frozenset):
        return _tagged(kind.__name__, [_to_json(v) for v in value])
    if kind is datetime.datetime:
        return _tagged("datetime", value.isoformat())
    if kind is datetime.date:
        return _tagged("date", value.isoformat())
    if kind is datetime.time:
        return _tagged("time", value.isoformat())
    if kind is datetime.timedelta:
        return _tagged("timedelta", [value.days, value.seconds, value.microseconds])
    if kind is decimal.Decimal:
        return _tagged("decimal", str(value))
    if kind is uuid.UUID:
        return _tagged("uuid", str(value))
    raise unstorable(kind, "JSON")


def unstorable(kind: type, codec: str) -> TypeError:
    """The error of a data-only serializer (``codec``) given a ``kind`` value it cannot store."""
    return TypeError(
        f"the {codec} serializer cannot store a {kind.__module__}.{kind.__qualname__} value. "
        f"{codec} is used because this cache talks to a shared store without a signing "
        "secret; pass secret=... (the adapters use your SECRET_KEY) to store any picklable "
        "value as signed pickle, or convert the value to plain data first"
    )


_DECODERS: Final[dict[str, Any]] = {
    "dict": lambda v: {k: w for k, w in v},
    "tuple": tuple,
    "bytes": lambda v: base64.b64decode(v),
    "set": set,
    "frozenset": frozenset,
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "timedelta": lambda v: datetime.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "decimal": decimal.Decimal,
    "int": lambda v: int(v, 16),
    "uuid": uuid.UUID,
}


def _from_json(obj: dict[str, Any]) -> Any:
    if len(obj) == 2 and _TAG in obj and "v" in obj:
        decoder = _DECODERS.get(obj[_TAG])
        if decoder is not None:
            return decoder(obj["v"])
    return obj
