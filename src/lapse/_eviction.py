"""Eviction policies that miss less than LRU: SIEVE, S3-FIFO and W-TinyLFU.

Each is a frozen configuration with `LRU`'s shape (``Policy(max_size)``,
``Policy(max_weight=..., weigher=...)``, or both) that makes one evictor per store; the
evictors are in `_evictors`.
"""

from __future__ import annotations

import attrs

from ._evictors import S3FIFOEvictor, SieveEvictor, WTinyLFUEvictor
from ._policies import LRU, KeyOrder


@attrs.frozen
class SIEVE(LRU):
    """Bound a store like `LRU`; evict with SIEVE: a FIFO queue whose hand skips (and
    clears) recently read keys. Reads only set a bit, so they are cheaper than LRU's,
    and it misses far less than LRU on skewed (Zipf) traffic.

    Arguments, checks and guarantees are `LRU`'s.
    """

    def evictor(self, order: KeyOrder) -> SieveEvictor:  # type: ignore[override]
        """Return a new `SieveEvictor` with this policy's bounds."""
        return SieveEvictor(self.max_size, self.max_weight, order)


@attrs.frozen
class S3FIFO(LRU):
    """Bound a store like `LRU`; evict with S3-FIFO: a small FIFO queue filters out keys
    read once (most of a cache's traffic), a main FIFO keeps the rest, and a ghost queue
    brings back keys evicted too soon. Resists scans; misses far less than LRU on skewed
    traffic.

    Arguments, checks and guarantees are `LRU`'s.
    """

    def evictor(self, order: KeyOrder) -> S3FIFOEvictor:  # type: ignore[override]
        """Return a new `S3FIFOEvictor` with this policy's bounds."""
        return S3FIFOEvictor(self.max_size, self.max_weight, order)


@attrs.frozen
class WTinyLFU(LRU):
    """Bound a store like `LRU`; evict with W-TinyLFU (Caffeine's policy): a small LRU
    window for new keys, and a main region that admits a key only if a frequency sketch
    says it is more popular than the key it would push out. The best all-rounder: it
    resists scans and one-time floods, and keeps what is read often.

    Arguments, checks and guarantees are `LRU`'s.
    """

    def evictor(self, order: KeyOrder) -> WTinyLFUEvictor:  # type: ignore[override]
        """Return a new `WTinyLFUEvictor` with this policy's bounds."""
        return WTinyLFUEvictor(self.max_size, self.max_weight, order)
