"""Expiry and eviction policies, and the protocols to write your own.

`TTL`, `Idle` and `LRU` are also importable from `lapse` itself.
"""

from __future__ import annotations

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
    "TTL",
]
