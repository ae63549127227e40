"""The evictors of `SIEVE`, `S3FIFO` and `WTinyLFU`: the per-store state of each policy.

Each follows the `Evictor` protocol:

- ``use(key)`` runs on every read, without the store's lock, so it is one C-level step:
  adding the key to a set (SIEVE) or appending it to a bounded read buffer (S3-FIFO,
  W-TinyLFU), which is drained under the lock on the next write or eviction. A read is
  then never slower than with `LRU`, whose ``use`` is one ``move_to_end``.
- ``add``, ``remove`` and ``victim`` run under the lock and are `O(1)` amortized.

The algorithms are written from their papers: SIEVE (Zhang et al., NSDI '24), S3-FIFO
(Yang et al., SOSP '23) and W-TinyLFU (Einziger, Friedman and Manes, ACM ToS 2017, as in
Caffeine). Plain classes with slots: the compiled build compiles this module with mypyc.
"""

from __future__ import annotations

import collections

from collections.abc import Callable, Sequence
from typing import Any

from ._policies import KeyOrder, weights_of


_READ_BUFFER = (
    256  # reads kept between two writes (older ones drop): a write replays at most this many
)


class _Weights:
    """The size and weight bookkeeping that every evictor shares, and its arguments."""

    __slots__ = ("_weight", "_weights", "max_size", "max_weight", "order", "use")

    max_size: int | None
    max_weight: int | None
    order: KeyOrder
    use: Callable[[str], None]
    _weights: dict[str, int]
    _weight: int

    def __init__(self, max_size: int | None, max_weight: int | None, order: KeyOrder) -> None:
        self.max_size = max_size
        self.max_weight = max_weight
        self.order = order
        self._weights = {}
        self._weight = 0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(max_size={self.max_size!r}, "
            f"max_weight={self.max_weight!r}, keys={len(self._weights)})"
        )

    def add(self, key: str, weight: int) -> None:  # pragma: no cover -- overridden
        raise NotImplementedError

    def _weigh_in(self, key: str, weight: int) -> None:
        self._weight += weight - self._weights.get(key, 0)
        self._weights[key] = weight

    def _weigh_out(self, key: str) -> int:
        weight = self._weights.pop(key, 0)
        self._weight -= weight
        return weight

    def _over(self) -> bool:
        return (self.max_size is not None and len(self._weights) > self.max_size) or (
            self.max_weight is not None and self._weight > self.max_weight
        )

    def _units(self, key: str) -> int:
        """How much *key* counts towards the queues' shares: 1, or its weight."""
        return 1 if self.max_weight is None else self._weights.get(key, 0)

    def _capacity(self) -> int:
        return self.max_size if self.max_weight is None else self.max_weight  # type: ignore[return-value]

    @property
    def weight(self) -> int:
        """The total weight of the keys present."""
        return self._weight

    def check(self, items: Sequence[tuple[str, object]]) -> None:
        """Raise `AssertionError` unless the evictor holds exactly the keys of *items*."""
        if set(self._weights) != {key for key, _ in items} or self._weight != sum(
            self._weights.values()
        ):
            msg = f"the {type(self).__name__} state does not match the keys"
            raise AssertionError(msg)

    def rebuild(self, weigh: Callable[[str], int]) -> None:
        """Start again from the store's keys, in their order, after an interrupted change."""
        weights = weights_of(self.order, self._weights, weigh)
        self._reset()
        for key, weight in weights.items():
            self.add(key, weight)

    def _reset(self) -> None:
        self._weights = {}
        self._weight = 0


# -- SIEVE -------------------------------------------------------------------------------

_OLDER, _NEWER, _KEY = 0, 1, 2


class SieveEvictor(_Weights):
    """The state of a `SIEVE` policy in one store: a FIFO queue of keys, newest first, a
    set of visited keys and a hand that moves from the oldest key towards the newest.

    A read marks its key visited (``set.add``, lock-free). To evict, the hand passes over
    visited keys, clearing their mark and leaving them in place, and stops at the first
    key not visited: that key is the victim, and the hand stays there for the next
    eviction. New keys go in at the newest end. Every method is `O(1)` amortized.
    """

    __slots__ = ("_hand", "_newest", "_nodes", "_oldest", "_visited")

    _nodes: dict[str, list[Any]]
    _visited: set[str]
    _newest: list[Any] | None
    _oldest: list[Any] | None
    _hand: list[Any] | None

    def __init__(self, max_size: int | None, max_weight: int | None, order: KeyOrder) -> None:
        super().__init__(max_size, max_weight, order)
        self._nodes = {}
        self._visited = set()
        self._newest = self._oldest = self._hand = None
        self.use = self._visited.add  # mark a key visited: one C call

    def _reset(self) -> None:
        super()._reset()
        self._nodes = {}
        self._visited.clear()
        self._newest = self._oldest = self._hand = None

    def add(self, key: str, weight: int) -> None:
        """A new key goes in at the newest end, not visited; a write of a present key
        marks it visited."""
        self._weigh_in(key, weight)
        if key in self._nodes:
            self._visited.add(key)
            return
        self._visited.discard(key)  # a racing read of a removed key may have left it
        node = [self._newest, None, key]
        if self._newest is not None:
            self._newest[_NEWER] = node
        else:
            self._oldest = node
        self._newest = node
        self._nodes[key] = node

    def remove(self, key: str) -> None:
        """Unlink *key*; the hand, if there, moves to the next newer key."""
        self._weigh_out(key)
        node = self._nodes.pop(key, None)
        if node is None:
            return
        self._visited.discard(key)
        older, newer = node[_OLDER], node[_NEWER]
        if older is None:
            self._oldest = newer
        else:
            older[_NEWER] = newer
        if newer is None:
            self._newest = older
        else:
            newer[_OLDER] = older
        if self._hand is node:
            self._hand = newer

    def victim(self) -> str | None:
        """The first key not visited from the hand on, while over a bound."""
        if not self._over():
            return None
        visited = self._visited
        if len(visited) > 2 * len(self._nodes) + 64:  # reads that raced a removal
            visited.intersection_update(self._nodes)
        hand = self._hand or self._oldest
        while True:
            if hand is None:
                hand = self._oldest
                if hand is None:  # pragma: no cover -- over a bound, so not empty
                    return None
            key = hand[_KEY]
            if key in visited:
                visited.discard(key)
                hand = hand[_NEWER]
            else:
                self._hand = hand
                return key  # type: ignore[no-any-return]


# -- read buffers, shared by S3-FIFO and W-TinyLFU ---------------------------------------


class _Buffered(_Weights):
    """Reads append their key to a bounded deque (one C-level step, thread-safe); the
    evictor replays them under the lock before it changes anything."""

    __slots__ = ("_reads",)

    _reads: collections.deque[str]

    def __init__(self, max_size: int | None, max_weight: int | None, order: KeyOrder) -> None:
        super().__init__(max_size, max_weight, order)
        self._reads = collections.deque(maxlen=_READ_BUFFER)
        self.use = self._reads.append

    def _drain(self) -> None:
        # As many as are there now: readers keep appending while this runs, and a loop
        # "while reads" could go on for as long as they do.
        reads, hit, present = self._reads, self._hit, self._weights
        for _ in range(len(reads)):
            try:
                key = reads.popleft()
            except IndexError:  # pragma: no cover -- emptied by a racing drain
                return
            if key in present:
                hit(key)

    def _hit(self, key: str) -> None:  # pragma: no cover -- overridden
        raise NotImplementedError


# -- S3-FIFO -----------------------------------------------------------------------------


class S3FIFOEvictor(_Buffered):
    """The state of an `S3FIFO` policy in one store.

    Three FIFO queues: *small* (a tenth of the bound) takes new keys, *main* the keys
    read at least twice while in small, *ghost* remembers the keys evicted from small
    (keys only, as many as main holds). Each key has a read count capped at 3. Evicting
    from small moves a key read twice or more to main, or evicts it (into ghost); evicting
    from main gives a key read since it got there another round with one read less, or
    evicts it. A new key found in ghost goes straight to main. `O(1)` amortized.
    """

    # Each queue is an OrderedDict, oldest first: taking the oldest of a plain dict that
    # keeps losing its first keys scans the dead slots, O(n) per eviction until it resizes.
    # small and main map each key to its read count.
    __slots__ = ("_evicting", "_ghost", "_main", "_small", "_small_units")

    _small: collections.OrderedDict[str, int]
    _main: collections.OrderedDict[str, int]
    _ghost: collections.OrderedDict[str, None]
    _small_units: int
    _evicting: str | None

    def __init__(self, max_size: int | None, max_weight: int | None, order: KeyOrder) -> None:
        super().__init__(max_size, max_weight, order)
        self._small = collections.OrderedDict()
        self._main = collections.OrderedDict()
        self._ghost = collections.OrderedDict()
        self._small_units = 0
        self._evicting = None

    def _reset(self) -> None:
        super()._reset()
        self._small, self._main = collections.OrderedDict(), collections.OrderedDict()
        self._small_units = 0
        self._reads.clear()

    def _hit(self, key: str) -> None:
        queue = self._small if key in self._small else self._main
        if queue[key] < 3:  # noqa: PLR2004 -- the paper's two-bit counter
            queue[key] += 1

    def add(self, key: str, weight: int) -> None:
        """A write: a hit for a present key; a new key goes to small, or to main from ghost."""
        if self._reads:
            self._drain()
        if key in self._weights:
            if key in self._small:
                self._small_units += weight - self._weights[key]
            self._weigh_in(key, weight)
            self._hit(key)
            return
        self._weigh_in(key, weight)
        # From ghost, or while small is full but the store is not (libCacheSim's S3-FIFO:
        # the keys written before the store fills are kept a little longer): to main.
        if self._ghost.pop(key, 0) is None or (
            self._small_units >= self._small_target() and not self._over()
        ):
            self._main[key] = 0
        else:
            self._small[key] = 0
            self._small_units += self._units(key)

    def remove(self, key: str) -> None:
        """*key* left the store; if it was evicted from small, ghost remembers it."""
        if self._reads:
            self._drain()  # its reads count for it, not for a key of that name written later
        if key not in self._weights:
            return
        if key in self._small:
            self._small_units -= self._units(key)
            del self._small[key]
            if key == self._evicting:
                ghost = self._ghost
                ghost[key] = None
                if len(ghost) > self._ghost_size():
                    ghost.popitem(last=False)
        else:
            del self._main[key]
        self._evicting = None
        self._weigh_out(key)

    def _small_target(self) -> int:
        return max(self._capacity() // 10, 1)

    def _ghost_size(self) -> int:
        """As many keys as main holds when the store is full: 90 % of the entries."""
        entries = self.max_size if self.max_size is not None else len(self._weights)
        return max(entries * 9 // 10, 1)

    def victim(self) -> str | None:
        """The next key S3-FIFO evicts, while over a bound."""
        if self._reads:
            self._drain()
        if not self._over():
            return None
        small, main = self._small, self._main
        small_target = self._small_target()
        while True:
            if small and (self._small_units >= small_target or not main):
                key = next(iter(small))
                if small[key] >= 2:  # noqa: PLR2004 -- read twice: worth keeping
                    del small[key]
                    self._small_units -= self._units(key)
                    main[key] = 0
                    continue
                self._evicting = key
                return key
            key = next(iter(main))
            reads = main[key]
            if reads > 0:
                main[key] = reads - 1
                main.move_to_end(key)  # another round, at the newest end
                continue
            return key


# -- W-TinyLFU ---------------------------------------------------------------------------


_SEED_C, _SEED_D = 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F
_MASK64 = 2**64 - 1
_HALVED = bytes([n >> 1 for n in range(256)])  # a translation table: n -> n // 2


class FrequencySketch:
    """How often each key was seen lately, approximately: a count-min sketch of four rows
    of 4-bit counters (each row four times as wide as the store holds keys). After ten
    times as many sightings as the store holds keys, every counter is halved, so old
    popularity fades. `O(1)` per sighting.

    The four counters of a key come from its one ``hash()`` (SipHash for a ``str``, so
    every bit is random): its low and its high 32 bits, and the top bits of two
    multiplications of it, which depend on all 64.

    (Measured on the hit-ratio benchmark's traces: rows four times as wide as the bound
    missed up to 1.5 % less than rows as wide; halving after 20x instead of 10x missed
    1.5 % less on steady Zipf traffic but 10 % more when popularity shifts, so it stays
    at Caffeine's 10x. A doorkeeper in front of the sketch made it miss more.)
    """

    __slots__ = ("_counters", "_mask", "_seen", "_shift", "_width", "capacity")

    capacity: int
    _width: int
    _mask: int
    _shift: int
    _counters: bytearray
    _seen: int

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen = 0
        bits = 4
        while 1 << bits < 4 * self.capacity and bits < 32:  # noqa: PLR2004 -- 32 bits a row
            bits += 1
        self._width = width = 1 << bits
        self._mask = width - 1
        self._shift = 64 - bits
        self._counters = bytearray(4 * width)

    def __repr__(self) -> str:
        return f"FrequencySketch(capacity={self.capacity!r})"

    def _slots(self, key: str) -> tuple[int, int, int, int]:
        h = hash(key) & _MASK64
        mask, shift, width = self._mask, self._shift, self._width
        return (
            h & mask,
            width + ((h >> 32) & mask),
            2 * width + (((h * _SEED_C) & _MASK64) >> shift),
            3 * width + (((h * _SEED_D) & _MASK64) >> shift),
        )

    def increment(self, key: str) -> None:
        """Count a sighting of *key*."""
        counters = self._counters
        a, b, c, d = self._slots(key)
        if counters[a] < 15:  # noqa: PLR2004 -- 4-bit counters
            counters[a] += 1
        if counters[b] < 15:  # noqa: PLR2004
            counters[b] += 1
        if counters[c] < 15:  # noqa: PLR2004
            counters[c] += 1
        if counters[d] < 15:  # noqa: PLR2004
            counters[d] += 1
        self._seen += 1
        if self._seen >= 10 * self.capacity:
            self._counters = counters.translate(_HALVED)  # every counter halved, in C
            self._seen //= 2

    def frequency(self, key: str) -> int:
        """The estimated sightings of *key* since the last halving (at most 15)."""
        counters = self._counters
        a, b, c, d = self._slots(key)
        return min(counters[a], counters[b], counters[c], counters[d])


class WTinyLFUEvictor(_Buffered):
    """The state of a `WTinyLFU` policy in one store.

    A small LRU window (1 % of the bound) takes new keys; the main region is a segmented
    LRU (probation, then protected: 80 % of it, for keys read again while in probation).
    When the window overflows, its oldest key is a candidate for main: it gets in only if
    the frequency sketch has seen it more often than the key main would evict in its
    place, so that one-time keys never push out popular ones. Reads are replayed under
    the lock. `O(1)` amortized per read and write.
    """

    __slots__ = (
        "_probation", "_protected", "_protected_units", "_sketch", "_window", "_window_units"
    )  # fmt: skip

    _window: collections.OrderedDict[str, None]
    _probation: collections.OrderedDict[str, None]
    _protected: collections.OrderedDict[str, None]
    _sketch: FrequencySketch
    _window_units: int
    _protected_units: int

    def __init__(self, max_size: int | None, max_weight: int | None, order: KeyOrder) -> None:
        super().__init__(max_size, max_weight, order)
        self._queues()
        self._sketch = FrequencySketch(self.max_size or 1024)

    def _queues(self) -> None:
        self._window = collections.OrderedDict()
        self._probation = collections.OrderedDict()
        self._protected = collections.OrderedDict()
        self._window_units = self._protected_units = 0

    def _reset(self) -> None:
        super()._reset()
        self._queues()
        self._reads.clear()

    def _hit(self, key: str) -> None:
        self._sketch.increment(key)
        if key in self._window:
            self._window.move_to_end(key)
        elif key in self._probation:
            del self._probation[key]
            self._protected[key] = None
            self._protected_units += self._units(key)
            limit = self._capacity() * 99 // 100 * 4 // 5
            while self._protected_units > limit and len(self._protected) > 1:
                demoted, _ = self._protected.popitem(last=False)
                self._protected_units -= self._units(demoted)
                self._probation[demoted] = None
        else:
            self._protected.move_to_end(key)

    def add(self, key: str, weight: int) -> None:
        """A write: a hit for a present key; a new key goes into the window."""
        if self._reads:
            self._drain()
        if key in self._weights:
            units = self._units(key)
            self._weigh_in(key, weight)
            delta = self._units(key) - units
            if key in self._window:
                self._window_units += delta
            elif key in self._protected:
                self._protected_units += delta
            self._hit(key)
            return
        self._weigh_in(key, weight)
        self._sketch.increment(key)
        self._window[key] = None
        self._window_units += self._units(key)
        # Until the store is full, the window's overflow goes to main unopposed.
        target = max(self._capacity() // 100, 1)
        while self._window_units > target and not self._over() and len(self._window) > 1:
            moved, _ = self._window.popitem(last=False)
            self._window_units -= self._units(moved)
            self._probation[moved] = None

    def remove(self, key: str) -> None:
        """*key* left the store."""
        if self._reads:
            self._drain()  # its reads count for it, not for a key of that name written later
        if key not in self._weights:
            return
        units = self._units(key)
        if self._window.pop(key, 0) is None:
            self._window_units -= units
        elif self._protected.pop(key, 0) is None:
            self._protected_units -= units
        else:
            self._probation.pop(key, None)
        self._weigh_out(key)

    def victim(self) -> str | None:
        """The key to evict while over a bound: the loser of the window's candidate and
        main's victim, by frequency."""
        if self._reads:
            self._drain()
        if not self._over():
            return None
        window, probation, protected = self._window, self._probation, self._protected
        main = probation or protected
        if not main:
            return next(iter(window))
        target = max(self._capacity() // 100, 1)
        if window and self._window_units > target:
            candidate = next(iter(window))
            victim = next(iter(main))
            sketch = self._sketch
            if sketch.frequency(candidate) > sketch.frequency(victim):
                del window[candidate]  # admitted: main's victim leaves instead
                self._window_units -= self._units(candidate)
                probation[candidate] = None
                return victim
            return candidate
        return next(iter(main))
