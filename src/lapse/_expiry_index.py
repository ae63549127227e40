"""The expiry index of a `SyncMemoryStore`: deadlines in buckets, coarse far from the clock.

A bucket is named by the time it starts. Deadlines before ``_fine_end`` (near the clock)
fall in one-second buckets, ``floor(expires)``; later ones in `_COARSE`-second buckets,
``floor(expires / 64) * 64``. ``_buckets`` maps a bucket to the keys in it (a dict used
as an ordered set), ``_ids`` is the `SortedList` of the buckets that hold keys,
``_head`` a lower bound of the earliest deadline, in the first bucket. Moving a key to
another deadline is two dict operations, and no index work at all within one bucket; the
`SortedList` changes only when a bucket appears or empties. Far deadlines share few
buckets, so the bucket a write touches is usually in the CPU's cache and rarely new.

When the clock comes within `_COARSE` seconds of a coarse bucket, it is opened:
``_fine_end`` moves past it and its keys (the ``_remnant``) move to their one-second
buckets, `_DRAIN_STEP` keys per write, so no write pauses for a whole bucket; they are
all moved before any of them can expire (at once, if the clock jumps). A key is moved at
most once. A one-second bucket is ordered exactly, as an `_Ordered` run of
``(expires, key)``, only once the clock has reached it (``_exact``): that is where a purge
must pick the earliest entry and ``len()`` must count the expired ones. Reads always
check an entry's exact deadline.

`ExpiryIndex` is a base class of the engine: its methods run under the store's lock and
share the engine's state (the index is derived from ``_data``, the truth).
"""

from __future__ import annotations

import bisect
import math

from typing import TYPE_CHECKING, Any

from sortedcontainers import SortedList

from ._store import RemovalCause


if TYPE_CHECKING:
    from collections.abc import Sequence

_INF = math.inf
_PURGE_STEP = 2  # expired entries purged by each write: more than one, so backlogs shrink
_SPARE_BUCKETS = 1024  # empty buckets kept beyond 8 per entry before a sweep
_COMPACT = 64  # an _Ordered run cuts its taken prefix past this length
_COARSE = 64.0  # seconds in a bucket beyond _fine_end: a power of two, so ids are exact
_DRAIN_STEP = 1024  # keys of an opened coarse bucket moved by each write: about 0.3 ms
_EXPIRED = RemovalCause.EXPIRED


class _Ordered:
    """The entries of one bucket in deadline order: ``(expires, key)``, earliest first.

    A plain list kept sorted with C ``bisect``, and a start offset so that taking the
    earliest is `O(1)`; the taken prefix is cut off once it is half the list. Built once,
    when the clock reaches the bucket; a bucket holds one second of deadlines, so its
    inserts and removals move little memory.
    """

    __slots__ = ("items", "start")

    def __init__(self, items: list[tuple[float, str]]) -> None:
        items.sort()
        self.items = items
        self.start = 0

    def first(self) -> tuple[float, str]:
        return self.items[self.start]

    def add(self, item: tuple[float, str]) -> None:
        bisect.insort(self.items, item, lo=self.start)

    def remove(self, item: tuple[float, str]) -> None:
        items, start = self.items, self.start
        i = bisect.bisect_left(items, item, lo=start)
        if i == start:
            self.start = start = start + 1
            if start > _COMPACT and 2 * start > len(items):
                del items[:start]
                self.start = 0
        else:
            del items[i]

    def expired(self, now: float) -> list[tuple[float, str]]:
        """Return the items whose deadline is *now* or earlier."""
        items = self.items
        return items[self.start : bisect.bisect_left(items, (math.nextafter(now, _INF),))]

    def live(self) -> list[tuple[float, str]]:
        return self.items[self.start :]


class ExpiryIndex:
    """The index half of the engine: every method runs under the store's lock.

    Runtime complexity: adding, removing or moving a key is `O(1)` within a bucket the
    clock has not reached, and `O(log b)` for *b* buckets when one appears or empties;
    in a reached bucket of *m* keys, `O(log m)` plus a memory move of at most *m* items.
    Moving an opened coarse bucket's keys is `O(1)` amortized per key (each moves at
    most once), at most `_DRAIN_STEP` of them per write.

    A plain class with slots, not attrs: the engine compiles with mypyc, which compiles
    plain classes only.
    """

    __slots__ = (
        "_buckets",
        "_busy",
        "_data",
        "_due",
        "_exact",
        "_fine_end",
        "_head",
        "_ids",
        "_remnant",
    )

    _buckets: dict[float, dict[str, None]]
    _ids: SortedList[float]
    _exact: dict[float, _Ordered]
    _head: float  # in the first bucket
    _fine_end: float  # deadlines before it have one-second buckets; a multiple of _COARSE
    _remnant: dict[str, None]  # keys of the last opened coarse bucket not yet moved
    _due: float  # when `_advance` has work: -inf while a remnant is left
    _busy: bool  # changing state, under the lock
    _data: dict[str, tuple[Any, ...]]  # the engine's entries, the truth

    def __init__(self) -> None:
        self._buckets = {}
        self._ids = SortedList()
        self._exact = {}
        self._head = _INF
        self._fine_end = -_INF
        self._remnant = {}
        self._due = -_INF
        self._busy = False

    def _forget(self, key: str, entry: tuple[Any, ...], cause: RemovalCause) -> None:
        """After *key* left the dict and the index: the engine's bookkeeping."""
        raise NotImplementedError

    def _index(self, key: str, expires: float) -> None:
        if expires == _INF:
            return
        # _bucket_of written out: a call costs more than the rest of this line.
        bucket_id = expires // 1.0 if expires < self._fine_end else expires // _COARSE * _COARSE
        bucket = self._buckets.get(bucket_id)
        if bucket is None:
            self._buckets[bucket_id] = {key: None}
            self._ids.add(bucket_id)
            if len(self._buckets) > 8 * len(self._data) + _SPARE_BUCKETS:
                self._sweep()
        else:
            bucket[key] = None
            if self._exact:
                exact = self._exact.get(bucket_id)
                if exact is not None:
                    exact.add((expires, key))
        if expires < self._head:  # noqa: PLR1730 -- min() is a call, this is not
            self._head = expires

    def _unindex(self, key: str, expires: float) -> None:
        if expires == _INF:
            return
        # _bucket_of written out: a call costs more than the rest of this line.
        bucket_id = expires // 1.0 if expires < self._fine_end else expires // _COARSE * _COARSE
        try:
            bucket = self._buckets[bucket_id]
            del bucket[key]  # an empty bucket stays, for the next key
        except KeyError:  # not moved yet from the coarse bucket it was in
            del self._remnant[key]
            return
        if self._exact:
            exact = self._exact.get(bucket_id)
            if exact is not None:
                exact.remove((expires, key))
                if bucket and self._head // 1.0 == bucket_id:
                    self._head = exact.first()[0]  # the next deadline, exactly

    def _reindex(self, key: str, old: float, new: float) -> None:
        """Move *key* from the deadline *old* to *new*: within one bucket, only the head
        may move."""
        if old == new or (
            old != _INF  # noqa: PLR1714 -- a tuple costs an allocation
            and new != _INF
            and (bucket_id := self._bucket_of(old)) == self._bucket_of(new)
            and (not self._exact or bucket_id not in self._exact)
            and not self._remnant  # else *key* may be in it, not in its bucket
        ):
            if new < self._head:  # noqa: PLR1730
                self._head = new
            return
        self._unindex(key, old)
        self._index(key, new)

    def _bucket_of(self, expires: float) -> float:
        """The bucket of the finite deadline *expires*."""
        if expires < self._fine_end:
            return expires // 1.0
        return expires // _COARSE * _COARSE

    def _advance(self, now: float) -> None:
        """Keep every deadline up to a minute past *now* in one-second buckets.

        Opens the next coarse bucket when the clock comes within `_COARSE` seconds of it:
        ``_fine_end`` moves past it and its keys become the ``_remnant``, moved to their
        one-second buckets `_DRAIN_STEP` at a time by the writes that follow, all at once
        if the clock reaches them first. `O(_DRAIN_STEP)` per call.
        """
        self._busy = True
        while True:
            remnant = self._remnant
            if remnant and now >= self._fine_end - _COARSE:  # some may expire: all now
                self._drain(len(remnant))
            if now < self._fine_end - _COARSE:
                break
            ids = self._ids  # after _drain: a sweep may have replaced it
            i = ids.bisect_left(self._fine_end)  # the earliest coarse bucket
            if i == len(ids) or ids[i] > now + _COARSE:  # none within a minute
                self._fine_end = (now + _COARSE) // _COARSE * _COARSE + _COARSE
                break
            coarse_id = ids[i]
            del ids[i]
            self._remnant = self._buckets.pop(coarse_id)
            self._fine_end = coarse_id + _COARSE
            if self._head >= coarse_id:  # it was the first bucket
                self._head = ids[0] if ids else _INF
        if self._remnant:
            self._drain(_DRAIN_STEP)
        self._due = -_INF if self._remnant else self._fine_end - _COARSE

    def _drain(self, count: int) -> None:
        """Move up to *count* keys of the remnant to their one-second buckets."""
        remnant, data = self._remnant, self._data
        for _ in range(min(count, len(remnant))):
            key = remnant.popitem()[0]
            self._index(key, data[key][0])

    def _ordered(self, bucket_id: float) -> _Ordered:
        """The entries of a bucket the clock has reached, by deadline: built once."""
        exact = self._exact.get(bucket_id)
        if exact is None:
            data = self._data
            exact = _Ordered([(data[key][0], key) for key in self._buckets[bucket_id]])
            self._exact[bucket_id] = exact
        return exact

    def _expire_first(self, now: float) -> bool:
        """Drop the entry with the earliest deadline if it has passed; return whether it did.

        The purge's hot path: `_drop` and `_unindex` written out for the first entry of
        the first bucket.
        """
        ids, buckets = self._ids, self._buckets
        while self._head <= now:
            first = self._head // 1.0  # the first bucket, one-second: the head lies in it
            bucket = buckets[first]
            if not bucket:  # an empty bucket reached by the clock: gone for good
                del buckets[first]
                self._exact.pop(first, None)
                del ids[0]
                self._head = ids[0] if ids else _INF
                continue
            exact = self._exact.get(first)
            if exact is None:
                exact = self._ordered(first)
            items, start = exact.items, exact.start
            expires, key = items[start]
            if expires > now:
                self._head = expires  # exactly: nothing to purge before it passes
                return False
            self._busy = True
            entry = self._data.pop(key)
            del bucket[key]
            start += 1
            self._head = items[start][0] if start < len(items) else first
            if start > _COMPACT and 2 * start > len(items):
                del items[:start]
                start = 0
            exact.start = start
            self._forget(key, entry, _EXPIRED)
            return True
        return False

    def _purge(self, now: float) -> None:
        """Drop up to `_PURGE_STEP` expired entries, earliest first: what each write does."""
        if now >= self._due:
            self._advance(now)
        for _ in range(_PURGE_STEP):
            if self._head > now or not self._expire_first(now):
                return

    def _sweep(self) -> None:
        """Drop the empty buckets, once they outnumber the entries: amortized `O(1)`."""
        buckets = {bid: bucket for bid, bucket in self._buckets.items() if bucket}
        self._exact = {bid: exact for bid, exact in self._exact.items() if bid in buckets}
        self._buckets, self._ids = buckets, SortedList(buckets)
        self._head = self._ids[0] if self._ids else _INF

    def _expired_count(self, now: float) -> int:
        if now >= self._due:
            self._advance(now)
        if self._head > now:
            return 0
        ids, buckets = self._ids, self._buckets
        boundary = now // 1.0
        past = ids.bisect_left(boundary)  # buckets before the clock's: wholly expired
        count = sum(len(buckets[bucket_id]) for bucket_id in ids.islice(0, past))
        if boundary in buckets:
            count += len(self._ordered(boundary).expired(now))
        return count

    def _index_from(self, items: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Derive the index from the entries *items* again: `O(n log n)`."""
        buckets: dict[float, dict[str, None]] = {}
        for key, entry in items:
            expires = entry[0]
            if expires != _INF:
                buckets.setdefault(expires // _COARSE * _COARSE, {})[key] = None
        ids = SortedList(buckets)
        self._buckets, self._ids, self._exact = buckets, ids, {}
        self._fine_end, self._remnant, self._due = -_INF, {}, -_INF
        self._head = ids[0] if ids else _INF

    def _all_expired(self, now: float) -> list[tuple[float, str]]:
        """Every expired ``(expires, key)``, earliest first: `O(k log k)` for *k* of them."""
        if now >= self._due:
            self._advance(now)
        if self._head > now:
            return []
        data, buckets = self._data, self._buckets
        boundary = now // 1.0
        expired = [
            (data[key][0], key)
            for bucket_id in self._ids.islice(0, self._ids.bisect_left(boundary))
            for key in buckets[bucket_id]
        ]
        expired.sort()
        if boundary in buckets:
            expired += self._ordered(boundary).expired(now)
        return expired

    def _check_index(self, items: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Raise `AssertionError` unless the index matches the entries *items* (tests)."""
        finite = {key: entry[0] for key, entry in items if entry[0] != _INF}
        remnant = self._remnant
        if any(not self._fine_end - _COARSE <= finite[k] < self._fine_end for k in remnant):
            msg = "the remnant holds a key outside the coarse bucket it came from"
            raise AssertionError(msg)
        indexed = {key: bid for bid, bucket in self._buckets.items() for key in bucket}
        expected = {k: self._bucket_of(d) for k, d in finite.items() if k not in remnant}
        if indexed != expected:
            msg = "the expiry index does not match the entries"
            raise AssertionError(msg)
        if list(self._ids) != sorted(self._buckets):
            msg = "the bucket ids do not match the buckets"
            raise AssertionError(msg)
        earliest = min((d for k, d in finite.items() if k not in remnant), default=_INF)
        if not (
            self._head <= earliest
            and (self._bucket_of(self._head) == self._ids[0] if self._ids else self._head == _INF)
        ):
            msg = "the head is not a lower bound of the deadlines, in the first bucket"
            raise AssertionError(msg)
        if self._due != (-_INF if remnant else self._fine_end - _COARSE):
            msg = "the next advance of the index is not when it is due"
            raise AssertionError(msg)
        for bid, exact in self._exact.items():
            if exact.live() != sorted((finite[k], k) for k in self._buckets[bid]):
                msg = f"the ordered bucket {bid} does not match its keys"
                raise AssertionError(msg)
