"""`RedisStore`: the lapse store API on a Redis server or a Redis Cluster (redis.asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import pickle
import sys
import time

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import anyio

from ._clock import as_seconds
from ._engine import expiry_tuple, ttl_seconds
from ._loader import Loader
from ._policies import TTL, Idle
from ._store import Stats, check_key
from .exceptions import CorruptValueError, StoreError, StoreTimeoutError, UnserializableError


try:
    import redis.asyncio as aioredis
    import redis.exceptions as redis_errors

    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError:  # pragma: no cover -- the extra is installed in CI
    msg = "lapse.redis needs redis-py: pip install 'lapse[redis]'"
    raise ImportError(msg) from None


T = TypeVar("T")
_MISSING: Any = object()
_SCAN_BATCH = 500
_GLOB = str.maketrans({c: f"\\{c}" for c in "*?[]\\"})
_DRIVER_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
# Compare-and-set: write ARGV[3..5] only if the key still holds what was read (ARGV[1..2]).
_CAS = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[3] == 'del' then
  redis.call('DEL', KEYS[1])
elseif ARGV[4] == 'keep' then
  redis.call('SET', KEYS[1], ARGV[5], 'KEEPTTL')
elseif ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[4])
end
return 1
"""


class Serializer(Protocol):
    """Turns values into bytes for Redis and back: `JSON` by default.

    A serializer may declare ``safe = True`` when its ``loads`` runs no code whatever
    the bytes; `lapse.sessions.SessionManager` accepts only such a store's serializer.

    Added in 0.2.
    """

    def dumps(self, value: Any) -> bytes:
        """Encode *value*; raise `TypeError` or `ValueError` if it cannot be."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode *data*; raise `ValueError` (or any `Exception`) if it is not ours."""
        ...


class JSONSerializer:
    """JSON: round-trips str, int, float, bool, None, list and dict (with str keys).

    NaN and infinities are refused, as JSON has none. Added in 0.2.
    """

    safe = True
    """Decoding runs no code, whatever the bytes."""

    def dumps(self, value: Any) -> bytes:
        """Encode *value* as compact JSON."""
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()

    def loads(self, data: bytes) -> Any:
        """Decode JSON."""
        return json.loads(data)


class PickleSerializer:
    """pickle: any picklable value. Only for a Redis that nobody else can write to:
    unpickling runs code chosen by whoever wrote the bytes.

    Added in 0.2.
    """

    safe = False
    """Decoding runs code chosen by whoever wrote the bytes."""

    def dumps(self, value: Any) -> bytes:
        """Pickle *value*."""
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        """Unpickle *data*."""
        return pickle.loads(data)  # noqa: S301 -- chosen explicitly by the user


JSON: Serializer = JSONSerializer()
"""The default serializer of `RedisStore`: a `JSONSerializer`."""


if sys.version_info >= (3, 11):
    _timeout = asyncio.timeout  # lighter than a cancel scope, and RedisStore is asyncio's
else:  # pragma: no cover -- Python 3.10

    @contextlib.asynccontextmanager
    async def _timeout(seconds: float) -> AsyncIterator[None]:
        with anyio.fail_after(seconds):
            yield


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisStore:
    """The lapse store API on Redis: `MemoryStore`'s methods with Redis's own semantics.

    ::

        store = RedisStore("redis://127.0.0.1:6379/0", prefix="app:")
        store = RedisStore("redis+cluster://127.0.0.1:7000", prefix="app:")   # a cluster
        store = RedisStore(client=redis.asyncio.Redis(...), prefix="app:")

    Every key is stored under *prefix*, so several stores share one server safely, and
    `clear` removes only its own. Values go through *serializer* (`JSON` by default); a
    value it cannot encode raises `lapse.exceptions.UnserializableError` before anything
    is written, and bytes it cannot decode raise `lapse.exceptions.CorruptValueError`
    naming the key. Every call has a *timeout*: a server that is down, refuses, or hangs
    gives `lapse.exceptions.StoreError` (`StoreTimeoutError` for the timeout), chained to
    the driver's error, and a write that failed is never reported as written. The same
    object works again once the server is back.

    Runs on asyncio (redis-py's asyncio client). Single-flight loads (`get_or_set`,
    `lapse.cached`) hold within one process.

    Attributes:
        url: A ``redis://`` or ``rediss://`` URL, or ``redis+cluster://host:port`` for a
            Redis Cluster (any node; the others are discovered).
        client: An existing ``redis.asyncio.Redis`` or ``RedisCluster``, instead of *url*.
        prefix: Prepended to every key.
        expiry: `TTL` (the lifetime of a write without *ttl*) or `Idle` (every read
            restarts the lifetime, with GETEX); both together are refused, as Redis keeps
            one deadline per key.
        eviction: Must be ``None``: an `LRU` bound per prefix cannot be enforced cheaply
            and atomically in Redis. Use Redis's ``maxmemory`` with
            ``maxmemory-policy allkeys-lru`` instead.
        serializer: A `Serializer`; `JSON` by default, `PickleSerializer()` on request.
        timeout: Seconds each call may take, 1.0 by default.

    Raises:
        TypeError: Neither or both of *url* and *client*, or a wrong policy.
        ValueError: An *eviction* policy, or `TTL` and `Idle` together.

    Added in 0.2.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "",
        expiry: TTL | Idle | None = None,
        eviction: object = None,
        serializer: Serializer = JSON,
        timeout: float = 1.0,
    ) -> None:
        if (url is None) == (client is None):
            msg = "RedisStore takes a url or a client= (one of them)"
            raise TypeError(msg)
        if eviction is not None:
            msg = (
                "RedisStore cannot bound a prefix with LRU atomically and cheaply; configure "
                "Redis itself: maxmemory <bytes> and maxmemory-policy allkeys-lru"
            )
            raise ValueError(msg)
        if not isinstance(prefix, str):
            msg = f"prefix must be a str, not {type(prefix).__name__}"
            raise TypeError(msg)
        policies = expiry_tuple(expiry)
        self._ttl: float | None = None
        self._idle: float | None = None
        for policy in policies:
            if type(policy) is TTL:
                self._ttl = policy.seconds
            elif type(policy) is Idle:
                self._idle = policy.seconds
            else:
                msg = f"RedisStore supports TTL or Idle expiry, not {policy!r}"
                raise TypeError(msg)
        if self._ttl is not None and self._idle is not None:
            msg = "RedisStore keeps one deadline per key: give TTL or Idle, not both"
            raise ValueError(msg)
        self._fixed_ttl = self._ttl or self._idle  # for refresh-ahead: the write lifetime
        self.timeout = as_seconds(timeout, what="timeout")
        if url is not None:
            # No driver retries: a command resent after a dropped connection could apply
            # twice (an update, an INCRBY); lapse reports such a call as unknown instead.
            options = {
                "socket_timeout": self.timeout,
                "socket_connect_timeout": self.timeout,
                "retry": Retry(NoBackoff(), 0),
            }
            scheme = "redis+cluster://"
            if url.startswith(scheme):
                client = RedisCluster.from_url("redis://" + url[len(scheme) :], **options)
            else:
                client = aioredis.from_url(url, **options)
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        self.prefix = prefix
        self.serializer = serializer
        self._loader = Loader(time.time)
        self._hits = self._misses = self._sets = self._deletes = 0

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r}, cluster={self.cluster}, timeout={self.timeout})"

    # -- plumbing ----------------------------------------------------------------------

    def _key(self, key: str) -> str:
        check_key(key)
        return self.prefix + key

    async def _run(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one driver call within the timeout, with lapse's errors."""
        try:
            async with _timeout(self.timeout):
                return await call()
        except TimeoutError as e:
            msg = f"Redis did not answer {what} within {self.timeout} s"
            raise StoreTimeoutError(msg) from e
        except redis_errors.ResponseError as e:
            if str(e).startswith("WRONGTYPE"):
                msg = f"Redis holds a value of another type where {what} expected a string: {e}"
                raise CorruptValueError(msg) from e
            msg = f"Redis refused {what}: {e}"
            raise StoreError(msg) from e
        except (*_DRIVER_ERRORS, redis_errors.RedisClusterException) as e:
            msg = f"Redis failed on {what}: {e}"
            raise StoreError(msg) from e

    def _dumps(self, key: str, value: Any) -> bytes:
        try:
            return self.serializer.dumps(value)
        except (TypeError, ValueError, pickle.PicklingError) as e:
            msg = f"cannot store {key!r}: {type(value).__name__} is not serializable ({e})"
            raise UnserializableError(msg) from e

    def _loads(self, key: str, data: bytes) -> Any:
        try:
            return self.serializer.loads(data)
        except Exception as e:
            msg = f"the bytes under {key!r} cannot be decoded by {type(self.serializer).__name__}"
            raise CorruptValueError(msg) from e

    def _px(self, ttl: Any) -> int | None:
        """Milliseconds for PX from a call's *ttl* or the policy, ``None`` for no deadline."""
        seconds = ttl_seconds(ttl)
        if seconds is None:
            seconds = self._ttl or self._idle
        if seconds is None or seconds == math.inf:
            return None
        return _ms(seconds)

    # -- reads -------------------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """Return the value of *key*, or *default*. With `Idle`, restarts its lifetime (GETEX)."""
        name = self._key(key)
        if self._idle is None:
            data = await self._run("GET", lambda: self.client.get(name))
        else:
            data = await self._run("GETEX", lambda: self.client.getex(name, px=_ms(self._idle)))  # type: ignore[arg-type]
        if data is None:
            self._misses += 1
            return default
        self._hits += 1
        return self._loads(key, data)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return the live values of *keys* in one round trip (MGET; per slot on a cluster)."""
        keys = list(keys)
        names = [self._key(key) for key in keys]
        if not names:
            return {}
        mget = self.client.mget_nonatomic if self.cluster else self.client.mget
        found = await self._run("MGET", lambda: mget(names))
        result = {}
        for key, data in zip(keys, found, strict=True):
            if data is None:
                self._misses += 1
            else:
                self._hits += 1
                result[key] = self._loads(key, data)
        return result

    async def has(self, key: str) -> bool:
        """Return whether *key* exists (EXISTS), counting no use."""
        name = self._key(key)
        return bool(await self._run("EXISTS", lambda: self.client.exists(name)))

    async def ttl(self, key: str) -> float | None:
        """Seconds left (PTTL): ``math.inf`` with no deadline, ``None`` if missing."""
        name = self._key(key)
        ms = await self._run("PTTL", lambda: self.client.pttl(name))
        if ms == -2:  # noqa: PLR2004 -- Redis's "no such key"
            return None
        return math.inf if ms == -1 else ms / 1000

    async def keys(self) -> AsyncIterator[str]:
        """Iterate over this store's keys (SCAN of its prefix), in no particular order."""
        pattern = self.prefix.translate(_GLOB) + "*"
        cut = len(self.prefix)
        names = await self._run("SCAN", lambda: self._scan(pattern))
        for name in names:
            yield name.decode()[cut:]

    async def _scan(self, pattern: str) -> list[bytes]:
        return [name async for name in self.client.scan_iter(match=pattern, count=_SCAN_BATCH)]

    def stats(self) -> Stats:
        """This object's counters (hits, misses, sets, deletes, loads); *size* is -1: ask
        Redis (``DBSIZE``) for the size."""
        loader = self._loader
        return Stats(
            hits=self._hits,
            misses=self._misses,
            sets=self._sets,
            deletes=self._deletes,
            evictions=0,
            expirations=0,
            size=-1,
            loads=loader.loads,
            load_failures=loader.load_failures,
            load_time=loader.load_time,
        )

    # -- writes ------------------------------------------------------------------------

    async def set(self, key: str, value: Any, *, ttl: Any = None, keep_ttl: bool = False) -> None:
        """Store *value* (SET, with PX or KEEPTTL). Raises before writing if it cannot encode."""
        name = self._key(key)
        if keep_ttl and ttl is not None:
            msg = "set() takes a ttl or keep_ttl=True, not both (Redis refuses PX with KEEPTTL)"
            raise ValueError(msg)
        px = None if keep_ttl else self._px(ttl)
        data = self._dumps(key, value)
        self._loader.invalidate(key)
        await self._run("SET", lambda: self.client.set(name, data, px=px, keepttl=keep_ttl))
        self._sets += 1

    async def set_many(self, mapping: Mapping[str, Any], *, ttl: Any = None) -> None:
        """Store every item in one round trip, all or nothing (MULTI; per slot on a cluster).

        Every value is encoded first: if one cannot be, nothing is written.
        """
        items = [(self._key(key), key, value) for key, value in mapping.items()]
        px = self._px(ttl)
        encoded = [(name, self._dumps(key, value)) for name, key, value in items]
        if not encoded:
            return

        async def write() -> None:
            async with self.client.pipeline(transaction=not self.cluster) as pipe:
                for name, data in encoded:
                    pipe.set(name, data, px=px)
                await pipe.execute()

        for _, key, _ in items:
            self._loader.invalidate(key)
        await self._run("MULTI/SET", write)
        self._sets += len(encoded)

    async def add(self, key: str, value: Any, *, ttl: Any = None) -> bool:
        """Store *value* only if *key* is missing (SET NX); return whether it did."""
        name = self._key(key)
        px = self._px(ttl)
        data = self._dumps(key, value)
        done = await self._run("SET NX", lambda: self.client.set(name, data, px=px, nx=True))
        if done:
            self._sets += 1
        return bool(done)

    async def incr(self, key: str, delta: int = 1) -> int:
        """Add *delta* to the integer at *key* (INCRBY); a new key gets the policy's lifetime."""
        name = self._key(key)
        if not isinstance(delta, int) or isinstance(delta, bool):
            msg = f"delta must be an int, not {type(delta).__name__}"
            raise TypeError(msg)
        px = self._px(None)

        async def incr() -> int:
            async with self.client.pipeline(transaction=True) as pipe:
                if px is not None:
                    pipe.set(name, b"0", px=px, nx=True)
                pipe.incrby(name, delta)
                results = await pipe.execute()
            return int(results[-1])

        try:
            value = await self._run("INCRBY", incr)
        except StoreError as e:
            if "not an integer" not in str(e.__cause__):
                raise  # the server's own reason (OOM, READONLY...) is in the message
            msg = f"the value of {key!r} is not an int"
            raise TypeError(msg) from e.__cause__
        self._sets += 1
        return value

    async def expire(self, key: str, ttl: float | timedelta) -> bool:
        """Set the deadline of *key* to *ttl* from now (PEXPIRE); ``False`` if missing."""
        name = self._key(key)
        ms = _ms(as_seconds(ttl, what="ttl"))
        return bool(await self._run("PEXPIRE", lambda: self.client.pexpire(name, ms)))

    async def persist(self, key: str) -> bool:
        """Remove the deadline of *key* (PERSIST); ``True`` if there was one."""
        name = self._key(key)
        return bool(await self._run("PERSIST", lambda: self.client.persist(name)))

    async def touch(self, key: str) -> bool:
        """Count a use of *key*: with `Idle`, restart its lifetime; ``False`` if missing."""
        name = self._key(key)
        if self._idle is not None:
            ms = _ms(self._idle)
            return bool(await self._run("PEXPIRE", lambda: self.client.pexpire(name, ms)))
        return bool(await self._run("TOUCH", lambda: self.client.touch(name)))

    async def update(
        self,
        key: str,
        fn: Callable[[Any], Any],
        *,
        ttl: Any = None,
        keep_ttl: bool = False,
    ) -> Any:
        """Replace the value of *key* by ``fn(value)`` atomically; return the new value.

        As `MemoryStore.update`: *fn* gets ``None`` for a missing key, returning ``None``
        deletes it, and *ttl* may be a function of the new value. A GET, then one
        compare-and-set script (EVAL) that writes only if the key still holds what was
        read, with its deadline: two round trips, on one node of a cluster, no WATCH.
        If another client changed the key meanwhile, *fn* runs again on the new value,
        until the call's timeout (counted over the whole call).

        Raises:
            StoreError: The server failed; if that happened while the write was on its
                way, the message says it may or may not have been applied, and it is
                never retried.
            StoreTimeoutError: No attempt succeeded within the timeout.
        """
        name = self._key(key)
        computed = callable(ttl)
        if keep_ttl and (computed or ttl is not None):
            msg = "update() takes a ttl or keep_ttl=True, not both"
            raise ValueError(msg)
        fixed = None if keep_ttl or computed else self._px(ttl)
        deadline = time.monotonic() + self.timeout
        while True:
            data = await self._run("GET", lambda: self.client.get(name))
            old = None if data is None else self._loads(key, data)
            new = fn(old)
            if new is None:
                write = ("del", "", b"")
            else:
                encoded = self._dumps(key, new)
                px = self._px(ttl(new)) if computed else fixed
                write = ("set", "keep" if keep_ttl else ("" if px is None else str(px)), encoded)
            args = ("0" if data is None else "1", b"" if data is None else data, *write)
            try:
                done = await self._run(
                    "EVAL",
                    lambda args=args: self.client.eval(_CAS, 1, name, *args),  # type: ignore[misc]
                )
            except StoreError as e:
                if isinstance(e.__cause__, redis_errors.ResponseError):
                    raise  # the server refused the script: nothing was written
                msg = (
                    f"Redis did not confirm the update of {key!r}: it may or may not have "
                    f"been applied ({e})"
                )
                raise type(e)(msg) from e.__cause__
            if done:
                self._loader.invalidate(key)
                if new is not None:
                    self._sets += 1
                return new
            if time.monotonic() >= deadline:
                msg = f"update of {key!r} kept conflicting with other writers for {self.timeout} s"
                raise StoreTimeoutError(msg)

    # -- removals ----------------------------------------------------------------------

    async def delete(self, key: str) -> bool:
        """Remove *key* (UNLINK); return whether it existed."""
        name = self._key(key)
        self._loader.invalidate(key)
        removed = await self._run("UNLINK", lambda: self.client.unlink(name))
        self._deletes += int(removed)
        return bool(removed)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove every key of *keys* (UNLINK; per slot on a cluster); return how many existed."""
        keys = list(keys)
        names = [self._key(key) for key in keys]
        if not names:
            return 0
        for key in keys:
            self._loader.invalidate(key)
        removed = int(await self._run("UNLINK", lambda: self.client.unlink(*names)))
        self._deletes += removed
        return removed

    async def pop(self, key: str, default: Any = None) -> Any:
        """Remove *key* and return its value (GETDEL), or *default*."""
        name = self._key(key)
        self._loader.invalidate(key)
        data = await self._run("GETDEL", lambda: self.client.getdel(name))
        if data is None:
            return default
        self._deletes += 1
        return self._loads(key, data)

    async def clear(self) -> None:
        """Remove this store's keys only (SCAN of the prefix, UNLINK); never FLUSHDB.

        Raises:
            ValueError: The store has no prefix: it would remove every key of the database.
        """
        if not self.prefix:
            msg = "clear() needs a prefix: without one it would remove every key of the database"
            raise ValueError(msg)
        pattern = self.prefix.translate(_GLOB) + "*"
        names = await self._run("SCAN", lambda: self._scan(pattern))
        for start in range(0, len(names), _SCAN_BATCH):
            batch = names[start : start + _SCAN_BATCH]
            await self._run("UNLINK", lambda batch=batch: self.client.unlink(*batch))  # type: ignore[misc]

    # -- loading and closing -----------------------------------------------------------

    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], Any],
        *,
        ttl: Any = None,
        refresh_after: float | None = None,
    ) -> Any:
        """`MemoryStore.get_or_set`, on Redis; single-flight within this process."""
        return await self._loader.get_or_set(
            self, key, factory, ttl=ttl, refresh_after=refresh_after
        )

    async def aclose(self) -> None:
        """Cancel background refreshes and close the connection pool."""
        await self._loader.aclose()
        await self.client.aclose()

    async def __aenter__(self) -> RedisStore:  # noqa: PYI034 -- final in spirit
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
