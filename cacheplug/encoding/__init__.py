"""How entries become bytes and back: keys, tags and their versions, the envelope, the
serializers, signing and the codec that puts them together.

Below the engine and beside the stores: nothing here imports the engine, the features or the
``Cache``. The serializers are public (also re-exported by :mod:`cacheplug`).
"""

from __future__ import annotations

from cacheplug.encoding._msgpack import MsgpackSerializer
from cacheplug.encoding._serializers import JsonSerializer, PickleSerializer, Serializer

__all__ = ["JsonSerializer", "MsgpackSerializer", "PickleSerializer", "Serializer"]
