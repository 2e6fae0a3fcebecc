"""``CacheOptions``: the keyword options of ``Cache``, as one typed dict.

Apart from ``_config`` (which validates them) because it names the L1 tier's options, and
``_local`` uses ``_config``'s validators: one module holding both made an import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from cacheplug._clock import Clock
from cacheplug._engine.local import LocalTier
from cacheplug._engine.plans import XFetch
from cacheplug._engine.resilience import CircuitBreaker
from cacheplug.encoding._choice import SerializerName
from cacheplug.encoding._compression import CompressionName
from cacheplug.encoding._serializers import Serializer


class CacheOptions(TypedDict, total=False):
    """The keyword options of :class:`~cacheplug.Cache` (for ``Cache.from_url``)."""

    namespace: str
    default_ttl: float | None
    stale_ttl: float
    early: XFetch | None
    refresh_ahead: float | None
    lock_timeout: float
    wait_timeout: float | None
    background_workers: int
    secret: str | bytes | None
    secret_fallbacks: Sequence[str | bytes]
    serializer: SerializerName | Serializer
    compression: CompressionName | None
    compress_min_bytes: int | None
    max_value_bytes: int
    strict: bool
    negative_ttl: float | None
    max_pending_invalidations: int
    breaker: CircuitBreaker | None
    clock: Clock | None
    l1: LocalTier | None
    hot_key_replicas: int
    hot_key_qps: float
