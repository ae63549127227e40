"""Expiry and eviction policies: small frozen objects composed into a store."""

from __future__ import annotations

import inspect
import math

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

import attrs

from ._clock import as_seconds


class ExpiryPolicy(Protocol):
    """Decides how long an entry lives.

    A store asks every configured policy and keeps the earliest deadline. Each entry has
    two deadlines:

    - the *write deadline*, set when the entry is written: ``now + after_write(...)``.
      A per-key ``ttl=`` replaces it; ``keep_ttl=True`` keeps the previous one.
    - the *use deadline*, set whenever the entry is used (read, written or touched):
      ``now + after_use(...)``.

    The entry expires at the earlier of the two. Both methods return seconds from now,
    ``math.inf`` for "no limit"; they must be cheap, they run under the store's lock, and
    they must not use the store. A policy may raise to refuse a write: the store is then
    left unchanged and the exception reaches the caller.

    `TTL` bounds only the write deadline, `Idle` only the use deadline. A store whose
    policies are all `TTL` never calls ``after_use``; any other policy is asked on every
    read.
    """

    def after_write(self, key: str, value: object) -> float:
        """Return how many seconds *key* may live after *value* was written to it."""
        ...

    def after_use(self, key: str, value: object) -> float:
        """Return how many seconds *key* may live after it was used (read or written)."""
        ...


def _lifetime(value: float | timedelta) -> float:
    return as_seconds(value, what="seconds")


@attrs.frozen
class TTL:
    """Every entry lives *seconds* after its last write (time to live).

    Reads do not extend it. ``TTL(300)`` and ``TTL(timedelta(minutes=5))`` are equal.

    Attributes:
        seconds: The lifetime, greater than zero; an ``int``, ``float`` or
            `datetime.timedelta` is converted to ``float`` seconds.

    Raises:
        TypeError: *seconds* is not a number or a timedelta.
        ValueError: *seconds* is zero, negative or NaN.
    """

    seconds: float = attrs.field(converter=_lifetime)

    def after_write(self, key: str, value: object) -> float:  # noqa: ARG002
        """Return *seconds*. Runtime complexity: `O(1)`."""
        return self.seconds

    def after_use(self, key: str, value: object) -> float:  # noqa: ARG002
        """Return ``math.inf``: use does not extend a TTL. Runtime complexity: `O(1)`."""
        return math.inf


@attrs.frozen
class Idle:
    """Every entry lives *seconds* after its last use: a read, a write or a ``touch``.

    This is a sliding expiry, like a web session's idle timeout. Compose it with `TTL` for
    an absolute limit too: ``expiry=(TTL(8 * 3600), Idle(1800))``.

    Attributes:
        seconds: The idle timeout, greater than zero (``int``, ``float`` or timedelta).

    Raises:
        TypeError: *seconds* is not a number or a timedelta.
        ValueError: *seconds* is zero, negative or NaN.
    """

    seconds: float = attrs.field(converter=_lifetime)

    def after_write(self, key: str, value: object) -> float:  # noqa: ARG002
        """Return ``math.inf``: only use bounds an idle entry. Runtime complexity: `O(1)`."""
        return math.inf

    def after_use(self, key: str, value: object) -> float:  # noqa: ARG002
        """Return *seconds*. Runtime complexity: `O(1)`."""
        return self.seconds


class KeyOrder(Protocol):
    """A store's keys in order, as an evictor sees them: first is oldest.

    It is the store's own ordered mapping (a `collections.OrderedDict`). A new key is
    added at the end. An evictor may reorder keys with `move_to_end`, and read the order
    with ``iter()``, ``len()`` and ``in``; it must not change it in any other way, and must
    treat the mapping's values as opaque.
    """

    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def __contains__(self, key: object) -> bool: ...

    def move_to_end(self, key: str, last: bool = True) -> None:
        """Move *key* to the end (``last=True``) or the start of the order."""
        ...


class Evictor(Protocol):
    """The per-store state of an eviction policy: which key leaves a full store.

    A store calls these methods under its lock, so an evictor needs no lock of its own;
    they must not raise and must not use the store. The store prefers an expired entry to
    any victim, so an evictor need not know about time.
    """

    def add(self, key: str, weight: int) -> None:
        """*key* was written: it is new (and already last in the order) or was present.

        *weight* is the new value's, from `EvictionPolicy.weigh`. A write is also a use.
        """
        ...

    def use(self, key: str) -> None:
        """*key*, a present key, was read or touched.

        On a store without idle expiry this is called without the store's lock (reads
        take no lock there), so it must be a single thread-safe step such as
        ``OrderedDict.move_to_end``, and may find *key* gone: it may then raise `KeyError`,
        which the store ignores.
        """
        ...

    def remove(self, key: str) -> None:
        """*key* left the store; it is no longer in the order."""
        ...

    def victim(self) -> str | None:
        """Return a key to evict while the store is over its bound, else ``None``."""
        ...


class EvictionPolicy(Protocol):
    """Bounds a store's size: configuration that makes one `Evictor` per store."""

    def weigh(self, key: str, value: object) -> int:
        """Return the weight of an entry about to be written.

        Called before the store changes anything: raise `ValueError` to refuse the write.
        """
        ...

    def evictor(self, order: KeyOrder) -> Evictor:
        """Return a new evictor for one store, whose keys are *order*."""
        ...


def weights_of(
    order: KeyOrder, known: dict[str, int], weigh: Callable[[str], int]
) -> dict[str, int]:
    """The weight of each key of *order*, in order: the *known* one, or ``weigh(key)`` (a
    weigher that raises counts as 0). For an evictor's ``rebuild``. Runtime: `O(n)`."""
    fresh: dict[str, int] = {}
    for key in list(order):
        weight = known.get(key)
        if weight is None:
            try:
                weight = weigh(key)
            except Exception:  # noqa: BLE001 -- counted as weightless, never raised here
                weight = 0
        fresh[key] = weight
    return fresh


def positive_int_or_none(value: int | None, what: str) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        msg = f"{what} must be an int, not {type(value).__name__}"
        raise TypeError(msg)
    if value < 1:
        msg = f"{what} must be at least 1, got {value!r}"
        raise ValueError(msg)


@attrs.frozen
class LRU:
    """Bound a store by entry count or total weight; evict the least recently used.

    ``LRU(10_000)`` keeps at most 10 000 entries. ``LRU(max_weight=64 * 2**20,
    weigher=lambda key, value: len(value))`` keeps the sum of the weights at most
    64 MiB. Both bounds may be given. Reads, writes and ``touch`` count as a use;
    ``has`` and ``ttl`` do not. The store removes expired entries before it evicts a
    live one.

    Attributes:
        max_size: The most entries the store holds, at least 1, or ``None``.
        max_weight: The largest total weight, at least 1, or ``None``; needs *weigher*.
        weigher: ``weigher(key, value) -> int``, the weight of an entry (>= 0). An entry
            heavier than *max_weight* is refused with `ValueError`.

    Raises:
        TypeError: A bound is not an ``int``, or *weigher* is not callable.
        ValueError: A bound is below 1, neither bound is given, or *max_weight* and
            *weigher* are not given together.
    """

    max_size: int | None = None
    max_weight: int | None = attrs.field(default=None, kw_only=True)
    weigher: Callable[[str, Any], int] | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        positive_int_or_none(self.max_size, "max_size")
        positive_int_or_none(self.max_weight, "max_weight")
        if self.max_size is None and self.max_weight is None:
            msg = f"{type(self).__name__} needs max_size, max_weight or both"
            raise ValueError(msg)
        if (self.max_weight is None) != (self.weigher is None):
            msg = "max_weight and weigher go together: give both or neither"
            raise ValueError(msg)
        if self.weigher is not None and not callable(self.weigher):
            msg = f"weigher must be callable, not {type(self.weigher).__name__}"
            raise TypeError(msg)

    def weigh(self, key: str, value: object) -> int:
        """Return ``weigher(key, value)``, or 1 when there is no *weigher*.

        Runtime complexity: `O(1)` plus the weigher's own.

        Raises:
            TypeError: The weigher returned something other than an ``int``.
            ValueError: The weight is negative or above *max_weight*.
        """
        if self.weigher is None:
            return 1
        weight = self.weigher(key, value)
        if not isinstance(weight, int) or isinstance(weight, bool):
            msg = f"weigher must return an int, returned {type(weight).__name__} for {key!r}"
            raise TypeError(msg)
        if weight < 0:
            msg = f"weigher returned a negative weight ({weight}) for {key!r}"
            raise ValueError(msg)
        if self.max_weight is not None and weight > self.max_weight:
            msg = f"entry {key!r} weighs {weight}, more than max_weight={self.max_weight}"
            raise ValueError(msg)
        return weight

    def evictor(self, order: KeyOrder) -> LRUEvictor:
        """Return a new `LRUEvictor` with this policy's bounds over *order*."""
        return LRUEvictor(order, self.max_size, self.max_weight)


@attrs.define
class LRUEvictor:
    """The state of an `LRU` policy in one store.

    The store's own key order is the recency order: a use moves a key to the end, and the
    victim is the first key. Nothing is kept per key unless there is a weight bound.
    Every method is `O(1)`.

    Attributes:
        order: The store's keys, least recently used first.
        max_size: As in `LRU`.
        max_weight: As in `LRU`.
    """

    order: KeyOrder
    max_size: int | None
    max_weight: int | None
    use: Callable[[str], None] = attrs.field(init=False)
    """Make a key the most recently used: the order's own ``move_to_end``."""
    _weights: dict[str, int] | None = attrs.field(init=False)
    _weight: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self.use = self.order.move_to_end
        self._weights = None if self.max_weight is None else {}

    def add(self, key: str, weight: int) -> None:
        """Make *key* the most recently used, with *weight*. Runtime complexity: `O(1)`."""
        self.order.move_to_end(key)
        weights = self._weights
        if weights is not None:
            self._weight += weight - weights.get(key, 0)
            weights[key] = weight

    def remove(self, key: str) -> None:
        """Forget the weight of *key*. Runtime complexity: `O(1)`."""
        if self._weights is not None:
            self._weight -= self._weights.pop(key)

    def victim(self) -> str | None:
        """Return the least recently used key while over a bound. Runtime complexity: `O(1)`."""
        order = self.order
        if (self.max_size is not None and len(order) > self.max_size) or (
            self.max_weight is not None and self._weight > self.max_weight
        ):
            while True:
                try:
                    return next(iter(order))
                except RuntimeError:  # a lock-free read moved a key between iter and next
                    continue
        return None

    def rebuild(self, weigh: Callable[[str], int]) -> None:
        """Make the weights agree with the order again, after an interrupted operation.

        Keys that left the order lose their weight; keys without one are weighed with
        *weigh* (a weigher that raises counts as 0). Runtime complexity: `O(n)`.
        """
        if self._weights is None:
            return
        self._weights = fresh = weights_of(self.order, self._weights, weigh)
        self._weight = sum(fresh.values())

    def check(self, items: Sequence[tuple[str, object]]) -> None:
        """Raise `AssertionError` unless the weights match the keys of *items* (tests)."""
        weights = self._weights
        if weights is not None and (
            set(weights) != {key for key, _ in items} or self._weight != sum(weights.values())
        ):
            msg = "the LRU weights do not match the keys"
            raise AssertionError(msg)

    @property
    def weight(self) -> int:
        """The total weight of the keys present."""
        return self._weight


# -- checking and folding a store's policies ---------------------------------------------


def ttl_seconds(ttl: float | timedelta | None) -> float | None:
    """A per-key ``ttl=`` argument in seconds (``None`` stays ``None``), checked."""
    if ttl is None:
        return None
    if (ttl.__class__ is float and ttl > 0) or (ttl.__class__ is int and 0 < ttl < 2**62):
        return ttl  # the common cases, fast
    return as_seconds(ttl, what="ttl")


def check_lifetime(seconds: float, policy: object) -> float:
    """A lifetime an expiry policy returned, refused if NaN (it would corrupt the index)."""
    if math.isnan(seconds):
        msg = f"{policy!r} returned NaN as a lifetime"
        raise ValueError(msg)
    return seconds


def _is_expiry_policy(policy: object) -> bool:
    return callable(getattr(policy, "after_write", None)) and callable(
        getattr(policy, "after_use", None)
    )


def expiry_tuple(expiry: object) -> tuple[ExpiryPolicy, ...]:
    """Return *expiry* (one policy, a tuple or list of them, or ``None``) as a tuple."""
    if expiry is None:
        return ()
    if _is_expiry_policy(expiry):
        return (expiry,)  # type: ignore[return-value]
    policies = tuple(expiry) if isinstance(expiry, (tuple, list)) else (expiry,)
    for policy in policies:
        if not _is_expiry_policy(policy):
            msg = f"expiry must be an expiry policy or a tuple of them, got {policy!r}"
            raise TypeError(msg)
    return policies


def check_store_arguments(eviction: object, clock: object, on_remove: object) -> None:
    """Check the arguments of a `MemoryStore` (or `SyncMemoryStore`) but *expiry*."""
    if eviction is not None and not (
        callable(getattr(eviction, "weigh", None)) and callable(getattr(eviction, "evictor", None))
    ):
        msg = f"eviction must be an eviction policy such as LRU(...), got {eviction!r}"
        raise TypeError(msg)
    if not callable(clock):
        msg = f"clock must be a callable returning seconds, got {clock!r}"
        raise TypeError(msg)
    if on_remove is not None:
        if not callable(on_remove):
            msg = f"on_remove must be callable or None, got {on_remove!r}"
            raise TypeError(msg)
        if inspect.iscoroutinefunction(on_remove) or inspect.iscoroutinefunction(
            getattr(on_remove, "__call__", None)  # noqa: B004 -- an async __call__
        ):
            msg = (
                f"on_remove must be a plain function, not a coroutine function ({on_remove!r}): "
                "it runs inside the operation, which cannot await it"
            )
            raise TypeError(msg)


class FoldedExpiry(NamedTuple):
    """A store's expiry policies, folded into what its hot paths test."""

    tracks_use: bool
    """Some policy sets use deadlines: entries carry two deadlines and reads lock."""
    fixed_ttl: float | None
    """The write lifetime when it is the same for every entry (``inf``: none), else ``None``."""
    fixed_idle: float | None
    """The use lifetime when it is the same for every entry, else ``None``."""


def fold_expiry(policies: tuple[ExpiryPolicy, ...]) -> FoldedExpiry:
    """Fold `TTL` and `Idle` policies into constant lifetimes; others are asked each time."""
    tracks_use = not all(type(policy) is TTL for policy in policies)
    if not all(type(policy) in (TTL, Idle) for policy in policies):
        return FoldedExpiry(tracks_use, None, None)
    ttl = min((p.seconds for p in policies if type(p) is TTL), default=math.inf)
    idle = min((p.seconds for p in policies if type(p) is Idle), default=math.inf)
    return FoldedExpiry(tracks_use, ttl, idle)


class FoldedEviction(NamedTuple):
    """A store's eviction policy, folded into what its hot paths call."""

    data: dict[str, Any]
    """The store's dict: an `OrderedDict` (the evictor's key order) under a policy."""
    evictor: Evictor | None
    use: Callable[[str], None] | None
    """The evictor's lock-free ``use``."""
    weigh: Callable[[str, Any], int] | None
    """The policy's ``weigh``; ``None`` when every entry weighs 1 (no call)."""
    bound: int | None
    """The entry bound of any unweighted policy: ``set`` compares ``len()`` with it."""
    add: Callable[[str, int], None] | None
    """The evictor's ``add``, for a new key under an unweighted policy other than `LRU`
    (whose order has a new key at the newest end already); a rewrite calls ``use``."""


def fold_eviction(eviction: EvictionPolicy | None) -> FoldedEviction:
    """Make the evictor of one store and fold *eviction* into its hot paths' terms."""
    if eviction is None:
        return FoldedEviction({}, None, None, None, None, None)
    # LRU (or SIEVE, S3FIFO, WTinyLFU) without a weigher weighs every entry 1: no call.
    unweighted = isinstance(eviction, LRU) and eviction.weigher is None
    order: OrderedDict[str, Any] = OrderedDict()
    evictor = eviction.evictor(order)
    weigh = None if unweighted else eviction.weigh
    if unweighted and type(evictor) is LRUEvictor:
        return FoldedEviction(order, evictor, evictor.use, weigh, evictor.max_size, None)
    if unweighted:  # another of ours, counting entries: one add() call per set
        bound = eviction.max_size  # type: ignore[attr-defined]
        return FoldedEviction(order, evictor, evictor.use, weigh, bound, evictor.add)
    return FoldedEviction(order, evictor, evictor.use, weigh, None, None)
