"""lapse: an async key-value store for short-lived data.

Per-key expiry, idle expiry and LRU eviction in memory (`MemoryStore`), behind a small
`Store` protocol that other backends implement.
"""

from __future__ import annotations

from ._cached import AsyncCachedFunction, CachedFunction, cached
from ._clock import Clock
from ._eviction import S3FIFO, SIEVE, WTinyLFU
from ._loader import get_or_set
from ._memory import MemoryStore
from ._policies import LRU, TTL, Idle
from ._store import FullStore, RemovalCause, Stats, Store
from ._sync_store import SyncMemoryStore


__all__ = [
    "AsyncCachedFunction",
    "CachedFunction",
    "Clock",
    "FullStore",
    "Idle",
    "LRU",
    "MemoryStore",
    "RemovalCause",
    "S3FIFO",
    "SIEVE",
    "Stats",
    "Store",
    "SyncMemoryStore",
    "TTL",
    "WTinyLFU",
    "cached",
    "get_or_set",
]


def __getattr__(name: str) -> str:
    if name != "__version__":
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)

    from importlib.metadata import version  # noqa: PLC0415 -- only when asked

    return version("lapse")
