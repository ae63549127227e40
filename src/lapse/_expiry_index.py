"""The expiry index of a `SyncMemoryStore`: deadlines in one-second buckets.

A finite deadline falls in the bucket ``floor(expires)``. ``_buckets`` maps a bucket to
the keys in it (a dict used as an ordered set), ``_ids`` is the `SortedList` of the
buckets that hold keys, ``_head`` a lower bound of the earliest deadline, in the first
bucket. Moving a key to another deadline is two dict operations, and no index work at
all within one bucket; the `SortedList` changes only when a bucket appears or empties. A
bucket is ordered exactly, as an `_Ordered` run of ``(expires, key)``, only once the
clock has reached it (``_exact``): that is where a purge must pick the earliest entry
and ``len()`` must count the expired ones. Reads always check an entry's exact deadline.

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

    A plain class with slots, not attrs: the engine compiles with mypyc, which compiles
    plain classes only.
    """

    __slots__ = ("_buckets", "_busy", "_data", "_exact", "_head", "_ids")

    _buckets: dict[float, dict[str, None]]
    _ids: SortedList[float]
    _exact: dict[float, _Ordered]
    _head: float  # in the first bucket
    _busy: bool  # changing state, under the lock
    _data: dict[str, tuple[Any, ...]]  # the engine's entries, the truth

    def __init__(self) -> None:
        self._buckets = {}
        self._ids = SortedList()
        self._exact = {}
        self._head = _INF
        self._busy = False

    def _forget(self, key: str, entry: tuple[Any, ...], cause: RemovalCause) -> None:
        """After *key* left the dict and the index: the engine's bookkeeping."""
        raise NotImplementedError

    def _index(self, key: str, expires: float) -> None:
        if expires == _INF:
            return
        bucket_id = expires // 1.0
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
        bucket_id = expires // 1.0
        bucket = self._buckets[bucket_id]
        del bucket[key]  # an empty bucket stays, for the next key
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
            and (bucket_id := old // 1.0) == new // 1.0
            and (not self._exact or bucket_id not in self._exact)
        ):
            if new < self._head:  # noqa: PLR1730
                self._head = new
            return
        self._unindex(key, old)
        self._index(key, new)

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
            first = self._head // 1.0  # the first bucket's id: the head lies in it
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
                buckets.setdefault(expires // 1.0, {})[key] = None
        ids = SortedList(buckets)
        self._buckets, self._ids, self._exact = buckets, ids, {}
        self._head = ids[0] if ids else _INF

    def _all_expired(self, now: float) -> list[tuple[float, str]]:
        """Every expired ``(expires, key)``, earliest first: `O(k log k)` for *k* of them."""
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
        indexed = {key: bid for bid, bucket in self._buckets.items() for key in bucket}
        if indexed != {key: expires // 1.0 for key, expires in finite.items()}:
            msg = "the expiry index does not match the entries"
            raise AssertionError(msg)
        if list(self._ids) != sorted(self._buckets):
            msg = "the bucket ids do not match the buckets"
            raise AssertionError(msg)
        earliest = min(finite.values(), default=_INF)
        if not (
            self._head <= earliest
            and (self._head // 1.0 == self._ids[0] if self._ids else self._head == _INF)
        ):
            msg = "the head is not a lower bound of the deadlines, in the first bucket"
            raise AssertionError(msg)
        for bid, exact in self._exact.items():
            if exact.live() != sorted((finite[k], k) for k in self._buckets[bid]):
                msg = f"the ordered bucket {bid} does not match its keys"
                raise AssertionError(msg)
