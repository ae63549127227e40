"""The expiry index of a `SyncMemoryStore`: deadlines in buckets, coarse far from the clock.

Deadlines before ``_fine_end`` (within about two minutes of the clock) fall in one-second
buckets named ``floor(expires)``: ``_buckets`` maps each to the keys in it (a dict used as
an ordered set), ``_ids`` is the `SortedList` of their names, and ``_head`` a lower bound
of their earliest deadline, in the first of them. Later deadlines fall in `_COARSE`-second
buckets, ``_coarse``: append-only lists of keys, named ``floor(expires / 64) * 64``. An hour
of deadlines is about sixty coarse lists, so a write appends to a list that is in the CPU's
cache, and a key costs a list slot (8 bytes) instead of a dict slot (about 40).

A coarse list is never searched: a key that leaves it (a new deadline, a delete) stays in
it, stale, and a key may be in it twice. A list entry counts only while the key's current
deadline is in the list's 64 seconds; `_compact` drops the others, `_COMPACT_STEP` entries
per write, once the lists hold twice as many slots as the store has entries (amortized
`O(1)`).

When the clock comes within `_COARSE` seconds of a coarse list, it is opened: ``_fine_end``
moves past it and its live keys (the ``_remnant``) move to their one-second buckets,
`_DRAIN_STEP` per write, all before any of them can expire (at once if the clock jumps).
A one-second bucket is ordered exactly, as an `_Ordered` run of ``(expires, key)``, only
once the clock has reached it (``_exact``): that is where a purge must pick the earliest
entry and ``len()`` must count the expired ones. Reads always check an entry's exact
deadline.

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
_NAN = math.nan
_PURGE_STEP = 2  # expired entries purged by each write: more than one, so backlogs shrink
_SPARE_BUCKETS = 1024  # empty buckets kept beyond 8 per entry before a sweep
_COMPACT = 64  # an _Ordered run cuts its taken prefix past this length
_COARSE = 64.0  # seconds in a bucket beyond _fine_end: a power of two, so ids are exact
_DRAIN_STEP = 1024  # keys of an opened coarse bucket moved by each write: about 0.3 ms
_SPARE_SLOTS = 4096  # coarse list slots beyond 2 per entry before compacting
_COMPACT_STEP = 4096  # coarse list entries checked by each write while compacting: ~3 ms
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
    A deadline far from the clock is one list append. Moving an opened coarse list's
    keys, and compacting the lists, is `O(1)` amortized per slot: at most `_DRAIN_STEP`
    keys, or one list, per write.

    A plain class with slots, not attrs: the engine compiles with mypyc, which compiles
    plain classes only.
    """

    __slots__ = (
        "_buckets",
        "_busy",
        "_coarse",
        "_coarse_slots",
        "_compact_live",
        "_compact_pos",
        "_compacted",
        "_compacting",
        "_data",
        "_due",
        "_exact",
        "_fine_end",
        "_head",
        "_ids",
        "_remnant",
        "_remnant_id",
    )

    _buckets: dict[float, dict[str, None]]
    _ids: SortedList[float]
    _exact: dict[float, _Ordered]
    _head: float  # in the first bucket
    _fine_end: float  # deadlines before it have one-second buckets; a multiple of _COARSE
    _coarse: dict[float, list[str]]  # deadlines from _fine_end on, by 64 seconds
    _coarse_slots: int  # entries in the coarse lists, stale ones included
    _compacted: float  # the coarse list compacted last: the next one is after it
    _compacting: float  # the coarse list being compacted, or NaN
    _compact_pos: int  # its entries before this one are checked
    _compact_live: dict[str, None]  # its live keys so far, once each
    _remnant: list[str]  # entries of the last opened coarse list not yet moved
    _remnant_id: float  # that list's name: its keys' deadlines are within 64 s of it
    _due: float  # when `_advance` has work: -inf while a remnant or compaction is left
    _busy: bool  # changing state, under the lock
    _data: dict[str, tuple[Any, ...]]  # the engine's entries, the truth

    def __init__(self) -> None:
        self._buckets = {}
        self._ids = SortedList()
        self._exact = {}
        self._head = _INF
        self._fine_end = -_INF
        self._coarse = {}
        self._coarse_slots = 0
        self._compacted = -_INF
        self._compacting = _NAN
        self._compact_pos = 0
        self._compact_live = {}
        self._remnant = []
        self._remnant_id = -_INF
        self._due = -_INF
        self._busy = False

    def _forget(self, key: str, entry: tuple[Any, ...], cause: RemovalCause) -> None:
        """After *key* left the dict and the index: the engine's bookkeeping."""
        raise NotImplementedError

    def _index(self, key: str, expires: float) -> None:
        if expires == _INF:
            return
        if expires >= self._fine_end:
            self._index_coarse(key, expires // _COARSE * _COARSE)
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
        if expires >= self._fine_end:
            return  # in a coarse list, it is stale from now on
        bucket_id = expires // 1.0
        try:
            bucket = self._buckets[bucket_id]
            del bucket[key]  # an empty bucket stays, for the next key
        except KeyError:
            if self._remnant:  # still there, where it is stale from now on
                return
            raise
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
            if new < self._head and new < self._fine_end:  # the head is a fine deadline
                self._head = new
            return
        self._unindex(key, old)
        self._index(key, new)

    def _bucket_of(self, expires: float) -> float:
        """The bucket of the finite deadline *expires*."""
        if expires < self._fine_end:
            return expires // 1.0
        return expires // _COARSE * _COARSE

    def _index_coarse(self, key: str, coarse_id: float) -> None:
        """Append *key* to the coarse list *coarse_id*."""
        coarse = self._coarse.get(coarse_id)
        if coarse is None:
            self._coarse[coarse_id] = [key]
        else:
            coarse.append(key)
        self._coarse_slots += 1
        if self._over_slots():
            self._due = -_INF  # the next write compacts

    def _compact(self) -> None:
        """Check up to `_COMPACT_STEP` entries of the coarse list being compacted (the next
        after the last one compacted) and, at its end, keep only its live keys, once each."""
        lists, data = self._coarse, self._data
        name = self._compacting
        if math.isnan(name):  # start on the next list
            later = [other for other in lists if other > self._compacted]
            name = min(later) if later else min(lists)
            self._compacting, self._compact_pos, self._compact_live = name, 0, {}
        entries, live, end = lists[name], self._compact_live, name + _COARSE
        stop = min(self._compact_pos + _COMPACT_STEP, len(entries))
        for key in entries[self._compact_pos : stop]:
            entry = data.get(key)
            if entry is not None and name <= entry[0] < end:
                live[key] = None
        self._compact_pos = stop
        if stop < len(entries):
            return
        self._coarse_slots -= len(entries) - len(live)
        if live:
            lists[name] = list(live)
        else:
            del lists[name]
        self._compacted, self._compacting, self._compact_live = name, _NAN, {}

    def _over_slots(self) -> bool:
        """Whether the coarse lists hold more than twice the entries, plus spare slots."""
        return self._coarse_slots > 2 * len(self._data) + _SPARE_SLOTS

    def _take_coarse(self, name: float) -> list[str]:
        """Remove the coarse list *name*; return its entries (less those compaction
        found stale)."""
        entries = self._coarse.pop(name)
        self._coarse_slots -= len(entries)
        if name == self._compacting:  # half-compacted: the checked part, then the rest
            entries = [*self._compact_live, *entries[self._compact_pos :]]
            self._compacting, self._compact_live = _NAN, {}
        return entries

    def _advance(self, now: float) -> None:
        """Keep every deadline up to a minute past *now* in one-second buckets.

        Opens the next coarse bucket when the clock comes within `_COARSE` seconds of it:
        ``_fine_end`` moves past it and its keys become the ``_remnant``, moved to their
        one-second buckets `_DRAIN_STEP` at a time by the writes that follow, all at once
        if the clock reaches them first. `O(_DRAIN_STEP)` per call.
        """
        self._busy = True
        while True:
            if self._remnant and now >= self._fine_end - _COARSE:  # some may expire
                self._drain(len(self._remnant))
            if now < self._fine_end - _COARSE:
                break
            lists = self._coarse
            first = min(lists) if lists else _INF
            if first > now + _COARSE:  # none within a minute
                self._fine_end = (now + _COARSE) // _COARSE * _COARSE + _COARSE
                break
            self._remnant, self._remnant_id = self._take_coarse(first), first
            self._fine_end = first + _COARSE
        if self._remnant:
            self._drain(_DRAIN_STEP)
        elif self._over_slots():
            self._compact()
        self._due = -_INF if self._busy_index() else self._fine_end - _COARSE

    def _busy_index(self) -> bool:
        """Whether writes have index work to do: keys to move, or lists to compact."""
        return bool(self._remnant) or self._over_slots()

    def _drain(self, count: int) -> None:
        """Move up to *count* live keys of the remnant to their one-second buckets."""
        remnant, data = self._remnant, self._data
        start, end = self._remnant_id, self._remnant_id + _COARSE
        for _ in range(min(count, len(remnant))):
            key = remnant.pop()
            entry = data.get(key)
            if entry is not None and start <= entry[0] < end:
                self._index(key, entry[0])  # twice in a row is the same as once

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
        lists: dict[float, list[str]] = {}
        for key, entry in items:
            expires = entry[0]
            if expires != _INF:
                lists.setdefault(expires // _COARSE * _COARSE, []).append(key)
        self._buckets, self._ids, self._exact, self._head = {}, SortedList(), {}, _INF
        self._coarse, self._coarse_slots = lists, sum(map(len, lists.values()))
        self._compacted = -_INF
        self._compacting, self._compact_pos, self._compact_live = _NAN, 0, {}
        self._fine_end, self._remnant, self._remnant_id, self._due = -_INF, [], -_INF, -_INF

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

    def _check_keys(
        self, finite: dict[str, float], indexed: dict[str, float], waiting: set[str]
    ) -> None:
        """Raise `AssertionError` unless each key with a deadline is where it belongs."""
        for key, expires in finite.items():
            if expires >= self._fine_end:
                if key not in self._coarse.get(expires // _COARSE * _COARSE, ()):
                    msg = f"{key!r} is missing from its coarse list"
                    raise AssertionError(msg)
            elif indexed.get(key) != expires // 1.0 and key not in waiting:
                msg = f"{key!r} is not in its one-second bucket"
                raise AssertionError(msg)

    def _check_index(self, items: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        """Raise `AssertionError` unless the index matches the entries *items* (tests)."""
        finite = {key: entry[0] for key, entry in items if entry[0] != _INF}
        fine_end = self._fine_end
        start = self._remnant_id
        if self._remnant and start + _COARSE != fine_end:
            msg = "the remnant is not the coarse list just before the fine end"
            raise AssertionError(msg)
        waiting = {k for k in self._remnant if start <= finite.get(k, _INF) < start + _COARSE}
        indexed = {key: bid for bid, bucket in self._buckets.items() for key in bucket}
        self._check_keys(finite, indexed, waiting)
        if any(k not in finite or finite[k] >= fine_end for k in indexed):
            msg = "a one-second bucket holds a key whose deadline is not in it"
            raise AssertionError(msg)
        if any(name < fine_end or name % _COARSE for name in self._coarse):
            msg = "a coarse list is before the fine end, or misnamed"
            raise AssertionError(msg)
        if self._coarse_slots != sum(map(len, self._coarse.values())):
            msg = "the coarse slot count is wrong"
            raise AssertionError(msg)
        if list(self._ids) != sorted(self._buckets):
            msg = "the bucket ids do not match the buckets"
            raise AssertionError(msg)
        earliest = min((finite[k] for k in indexed), default=_INF)
        if not (
            self._head <= earliest
            and (self._head // 1.0 == self._ids[0] if self._ids else self._head == _INF)
        ):
            msg = "the head is not a lower bound of the deadlines, in the first bucket"
            raise AssertionError(msg)
        if self._due != (-_INF if self._busy_index() else fine_end - _COARSE):
            msg = "the next advance of the index is not when it is due"
            raise AssertionError(msg)
        for bid, exact in self._exact.items():
            if exact.live() != sorted((finite[k], k) for k in self._buckets[bid]):
                msg = f"the ordered bucket {bid} does not match its keys"
                raise AssertionError(msg)
