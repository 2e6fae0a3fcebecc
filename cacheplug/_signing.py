"""HMAC signatures on stored entries, with rotation.

A signed record is ``0xC5 | key id (2 bytes) | HMAC-SHA256 (32 bytes) | body``. The MAC
covers the store key as well as the body, so an entry copied to another key is rejected too.
Keys are derived from the configured secrets (never used raw: the same ``SECRET_KEY`` also
signs the framework's cookies), and the key id picks the secret, so rotating is: put the new
secret first, keep the old one in ``fallbacks`` until entries written with it have expired.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

from cacheplug._exceptions import ConfigurationError

SIGNED_MARKER: Final = 0xC5
_MAC_BYTES: Final = 32
_KEY_ID_BYTES: Final = 2
BODY_OFFSET: Final = 1 + _KEY_ID_BYTES + _MAC_BYTES
_DERIVATION_SALT: Final = b"cacheplug.signing.v1:"


def _to_bytes(secret: str | bytes) -> bytes:
    if isinstance(secret, str):
        return secret.encode("utf-8")
    if isinstance(secret, bytes):
        return secret
    raise ConfigurationError(f"a secret must be str or bytes, not {type(secret).__name__}")


class Signer:
    """Signs with the first secret; verifies with it or any fallback."""

    __slots__ = ("_key", "_key_id", "_marker", "_verifiers")

    def __init__(self, secret: str | bytes, fallbacks: Sequence[str | bytes] = ()) -> None:
        keys = [self._derive(_to_bytes(s)) for s in (secret, *fallbacks)]
        if not _to_bytes(secret):
            raise ConfigurationError("the signing secret is empty")
        self._key = keys[0]
        self._key_id = self._id_of(keys[0])
        self._marker = bytes((SIGNED_MARKER,)) + self._key_id
        self._verifiers = {self._id_of(k): k for k in reversed(keys)}

    @staticmethod
    def _derive(secret: bytes) -> bytes:
        return hashlib.sha256(_DERIVATION_SALT + secret).digest()

    @staticmethod
    def _id_of(key: bytes) -> bytes:
        return hashlib.blake2b(key, digest_size=_KEY_ID_BYTES).digest()

    def sign(self, store_key: bytes, body: bytes) -> bytes:
        """The signed record for ``body`` stored under ``store_key``."""
        mac = hmac.digest(self._key, store_key + body, "sha256")
        return self._marker + mac + body

    def verify(self, store_key: bytes, record: bytes) -> bool:
        """True when ``record`` was signed by one of our secrets for ``store_key``."""
        if len(record) < BODY_OFFSET or record[0] != SIGNED_MARKER:
            return False
        key = self._verifiers.get(record[1 : 1 + _KEY_ID_BYTES])
        if key is None:
            return False
        expected = hmac.digest(key, store_key + record[BODY_OFFSET:], "sha256")
        return hmac.compare_digest(expected, record[1 + _KEY_ID_BYTES : BODY_OFFSET])
