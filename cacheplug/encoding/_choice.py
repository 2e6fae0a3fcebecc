"""Which serializer a cache uses, and which stored formats it reads.

Apart from the serializers themselves because it knows all of them (the MessagePack one
included) and the store's and signer's part in the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeAlias

from cacheplug.encoding._msgpack import MSGPACK_ID, MsgpackSerializer, msgpack_available
from cacheplug.encoding._serializers import (
    JSON_ID,
    JsonSerializer,
    PickleSerializer,
    Serializer,
)
from cacheplug.encoding._signing import Signer
from cacheplug.exceptions import ConfigurationError
from cacheplug.stores.base import Store

SerializerName: TypeAlias = Literal["auto", "pickle", "msgpack", "json", "unsafe-pickle"]


def choose_serializer(
    choice: SerializerName | Serializer, store: Store, signer: Signer | None
) -> Serializer:
    """The serializer for ``choice``, refusing unsigned pickle from a shared store.

    ``auto``: pickle when entries are signed or the store is in-process; otherwise data-only
    MessagePack, or JSON where ``msgpack`` is not installed.
    """
    if not isinstance(choice, str):
        return choice
    if choice == "auto":
        if signer is not None or not store.shared:
            return PickleSerializer()
        return MsgpackSerializer() if msgpack_available() else JsonSerializer()
    if choice == "msgpack":
        if not msgpack_available():
            raise ConfigurationError(
                "serializer='msgpack' needs the msgpack package: pip install 'cacheplug[redis]'"
            )
        return MsgpackSerializer()
    if choice == "json":
        return JsonSerializer()
    if choice == "pickle":
        if signer is None and store.shared:
            raise ConfigurationError(
                "serializer='pickle' on a shared store needs a signing secret: pass "
                "secret=... so that only entries this application wrote are ever unpickled "
                "(serializer='unsafe-pickle' skips that protection)"
            )
        return PickleSerializer()
    if choice == "unsafe-pickle":
        return PickleSerializer()
    raise ConfigurationError(
        f"unknown serializer {choice!r}: use 'auto', 'pickle', 'msgpack', 'json', "
        "'unsafe-pickle' or a Serializer object"
    )


def readers(serializer: Serializer) -> dict[int, Callable[[Any], Any]]:
    """The payload decoders by serializer id that a cache writing with ``serializer`` reads.

    Its own, and for data-only MessagePack also data-only JSON, the format it replaced (as
    safe, and what processes not yet upgraded still write). Never pickle unless configured.
    """
    found: dict[int, Callable[[Any], Any]] = {serializer.id: serializer.loads}
    if serializer.id == MSGPACK_ID and isinstance(serializer, MsgpackSerializer):
        found[JSON_ID] = JsonSerializer().loads
    return found
