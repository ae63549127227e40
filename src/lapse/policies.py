"""Expiry and eviction policies, and the protocols to write your own.

`TTL`, `Idle`, `LRU`, `SIEVE`, `S3FIFO` and `WTinyLFU` are also importable from `lapse`.
"""

from __future__ import annotations

from ._eviction import S3FIFO, SIEVE, WTinyLFU
from ._evictors import FrequencySketch, S3FIFOEvictor, SieveEvictor, WTinyLFUEvictor
from ._policies import (
    LRU,
    TTL,
    EvictionPolicy,
    Evictor,
    ExpiryPolicy,
    Idle,
    KeyOrder,
    LRUEvictor,
)


__all__ = [
    "EvictionPolicy",
    "Evictor",
    "ExpiryPolicy",
    "Idle",
    "KeyOrder",
    "LRU",
    "LRUEvictor",
    "S3FIFO",
    "S3FIFOEvictor",
    "SIEVE",
    "SieveEvictor",
    "TTL",
    "FrequencySketch",
    "WTinyLFU",
    "WTinyLFUEvictor",
]
