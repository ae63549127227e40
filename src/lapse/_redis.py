"""`RedisStore`: the lapse store API on a Redis server or a Redis Cluster (redis.asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import pickle
import select
import sys
import threading
import time

from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import attrs

from . import _codec
from ._clock import as_seconds
from ._loader import Loader, OnStoreError
from ._policies import TTL, Idle, expiry_tuple, positive_int_or_none, ttl_seconds
from ._sansio import Op, adrive
from ._store import Stats, check_key
from .exceptions import (
    CorruptValueError,
    LapseError,
    StoreError,
    StoreTimeoutError,
    UnserializableError,
)


if TYPE_CHECKING:
    from ._redis_sync import SyncRedisStore


try:
    import redis
    import redis.asyncio as aioredis
    import redis.exceptions as redis_errors

    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.connection import Connection, UnixDomainSocketConnection
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster as SyncRedisCluster
    from redis.retry import Retry as SyncRetry
except ImportError:  # pragma: no cover -- the extra is installed in CI
    msg = "lapse.redis needs redis-py: pip install 'lapse[redis]'"
    raise ImportError(msg) from None


T = TypeVar("T")
_log = logging.getLogger("lapse")
_MISSING: Any = object()
_SCAN_BATCH = 1000  # keys a SCAN asks for per round trip
_CHUNK = 250  # items per round trip of a batch: the loop stalls 8 ms at most (23 ms at 500)
_ATTEMPTS = 3  # of a command that is safe to repeat, within the call's timeout
_MAX_MS = 2**62  # Redis refuses deadlines past LLONG_MAX ms; this leaves room for "now"
_INT64 = 2**63
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

# With an Idle policy, a value is stored as "\0<write deadline, server ms, or nothing>\0"
# followed by its bytes: the key's own TTL is the earlier of the idle and the write
# deadline, and a read restarts it from the write deadline kept beside the value.
_IDLE_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function split(v)
  local h = string.match(v, '^%z(%d*)%z')
  if h then return h, string.sub(v, #h + 3) end
  return '', v
end
local function put(key, hard, payload, idle)
  local px = idle
  if hard ~= '' then
    local left = tonumber(hard) - now_ms()
    if left <= 0 then redis.call('DEL', key) return end
    if left < px then px = left end
  end
  redis.call('SET', key, '\0' .. hard .. '\0' .. payload, 'PX', px)
  return true
end
local function deadline(ms)
  if ms == '' then return '' end
  return string.format('%.0f', now_ms() + tonumber(ms))
end
"""
# KEYS[1]; ARGV: idle ms, '1' to return the value. Restarts the idle lifetime.
_IDLE_READ = (
    _IDLE_PRELUDE
    + """
local v = redis.call('GET', KEYS[1])
if not v then return false end
local hard, payload = split(v)
if not put(KEYS[1], hard, payload, tonumber(ARGV[1])) then return false end
if ARGV[2] == '1' then return v end
return 1
"""
)
# KEYS[1]; ARGV: payload, ttl ('keep', '' for none, or ms), idle ms, condition ('', 'nx',
# 'cas0': only if missing, 'cas1': only if the key holds ARGV[5]), expected bytes, the
# policy's ttl for a new key under 'keep', 'del' to delete instead of writing.
_IDLE_WRITE = (
    _IDLE_PRELUDE
    + """
local key = KEYS[1]
local old = redis.call('GET', key)
local cond = ARGV[4]
if cond == 'nx' and old then return 0 end
if cond == 'cas0' and old then return 0 end
if cond == 'cas1' and old ~= ARGV[5] then return 0 end
if ARGV[7] == 'del' then redis.call('DEL', key) return 1 end
local hard = ''
if ARGV[2] == 'keep' then
  if old then hard = split(old) else hard = deadline(ARGV[6]) end
else
  hard = deadline(ARGV[2])
end
put(key, hard, ARGV[1], tonumber(ARGV[3]))
return 1
"""
)
# KEYS[1]; ARGV: delta, the policy's ttl ms for a new key ('' for none), idle ms.
_IDLE_INCR = (
    _IDLE_PRELUDE
    + """
local key = KEYS[1]
local old = redis.call('GET', key)
local hard, payload = '', '0'
if old then hard, payload = split(old) else hard = deadline(ARGV[2]) end
redis.call('SET', key, payload)
local n = redis.pcall('INCRBY', key, ARGV[1])
if type(n) == 'table' and n.err then
  if old then redis.call('SET', key, old, 'KEEPTTL') else redis.call('DEL', key) end
  return n
end
local digits = redis.call('GET', key)  -- exact: a Lua number holds 53 bits only
put(key, hard, digits, tonumber(ARGV[3]))
return digits
"""
)
# KEYS[1]; ARGV: ttl ms ('' removes the write deadline), idle ms. 1 if the key was live
# (for a removal: if it had a write deadline), else 0. Restarts the idle lifetime.
_IDLE_EXPIRE = (
    _IDLE_PRELUDE
    + """
local old = redis.call('GET', KEYS[1])
if not old then return 0 end
local hard, payload = split(old)
put(KEYS[1], deadline(ARGV[1]), payload, tonumber(ARGV[2]))
if ARGV[1] == '' and hard == '' then return 0 end
return 1
"""
)


class Serializer(Protocol):
    """Turns values into bytes for Redis and back: `JSON` by default.

    A serializer may declare ``safe = True`` when its ``loads`` runs no code whatever
    the bytes; `lapse.sessions.SessionManager` accepts only such a store's serializer.
    """

    def dumps(self, value: Any) -> bytes:
        """Encode *value*; raise `TypeError` or `ValueError` if it cannot be."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode *data*; raise `ValueError` (or any `Exception`) if it is not ours."""
        ...


class JSONSerializer:
    """Exact JSON: a value comes back equal and of the same type, or `dumps` refuses it.

    Plain JSON values (str, int, float, bool, None, list, dict with str keys) are stored
    as plain JSON; tuples, sets, frozensets, dicts with other keys, bytes, datetimes,
    dates, times, timedeltas, decimals and UUIDs are stored as small tagged objects and
    come back as they went in. Anything else (an enum, a subclass of str or int, NaN or
    an infinity, an object) raises `TypeError` or `ValueError`, so that
    `RedisStore.set` refuses it before anything is written. Decoding runs no code,
    whatever the bytes.
    """

    safe = True
    """Decoding runs no code, whatever the bytes."""

    def dumps(self, value: Any) -> bytes:
        """Encode *value*. Runtime complexity: `O(n)` in the size of the value."""
        return _codec.dumps(value)

    def loads(self, data: bytes) -> Any:
        """Decode what `dumps` wrote, or any plain JSON."""
        return _codec.loads(data)


class PickleSerializer:
    """pickle: any picklable value. Only for a Redis that nobody else can write to:
    unpickling runs code chosen by whoever wrote the bytes.
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
    """Milliseconds for PX or PEXPIRE, at least 1; `ValueError` past what Redis can keep."""
    ms = max(1, math.ceil(seconds * 1000))
    if ms > _MAX_MS:
        msg = (
            f"a lifetime of {seconds!r} s is beyond what Redis can keep ({_MAX_MS // 1000} s); "
            "use math.inf for no expiry"
        )
        raise ValueError(msg)
    return ms


def _closed_by_peer(writer: Any) -> bool:
    """Whether the server closed (or wrote to) an idle connection since it was last used.

    The event loop sees a closed socket only when it next polls; a call made right after
    a server restart would otherwise send its command into the dead connection, and a
    command that is not safe to repeat could not be retried. One `poll` of the socket,
    without waiting: about a microsecond.
    """
    transport = writer.transport
    if transport.is_closing():
        return True
    sock = transport.get_extra_info("socket")
    if sock is None:  # pragma: no cover -- a transport without a socket
        return False
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])  # pragma: no cover -- Windows


class _Fresh:
    """Mixed into redis-py's connections: the pool checks a connection with `can_read`
    before it hands it out, and reconnects one that has data or EOF waiting; this also
    asks the socket itself, which knows of a close before the event loop does."""

    is_connected: bool
    _writer: Any

    async def can_read(self) -> bool:
        if self.is_connected and _closed_by_peer(self._writer):
            return True
        return await super().can_read()  # type: ignore[misc,no-any-return]


class _FreshConnection(_Fresh, Connection):
    pass


class _FreshUnixConnection(_Fresh, UnixDomainSocketConnection):
    pass


_UNSURE = "; the write may or may not have been applied"
# Not rediss://: under TLS the raw socket can be readable with protocol records (session
# tickets) that the application never sees, which would read as a dirty connection.
_FRESH = {"redis": _FreshConnection, "unix": _FreshUnixConnection}


def _sync_client(url: str, timeout: float, size: int) -> Any:
    """redis-py's sync client for *url*, set up as `RedisStore` sets up its asyncio one."""
    options: dict[str, Any] = {
        "socket_timeout": timeout / 2,
        "socket_connect_timeout": timeout / 2,
        "retry": SyncRetry(NoBackoff(), 0),
        "max_connections": size,
    }
    scheme = "redis+cluster://"
    if url.startswith(scheme):
        return SyncRedisCluster.from_url("redis://" + url[len(scheme) :], **options)
    return redis.Redis.from_url(url, **options)


def _lifetimes(expiry: object) -> tuple[float | None, float | None]:
    """The seconds of the `TTL` and of the `Idle` policy of *expiry*, if any."""
    ttl = idle = None
    for policy in expiry_tuple(expiry):
        if type(policy) is TTL:
            ttl = policy.seconds
        elif type(policy) is Idle:
            idle = policy.seconds
        else:
            msg = f"RedisStore supports TTL and Idle expiry, not {policy!r}"
            raise TypeError(msg)
    return ttl, idle


@attrs.frozen
class _Call:
    """One step of an operation: a driver call, ``call(client)``.

    Each operation of `RedisStore` is written once, as a generator that yields its
    steps and gets each reply back (or lapse's error, thrown in). ``call`` returns the
    reply from redis-py's sync client, or an awaitable of it from the asyncio one, so the
    same steps run on both: `RedisStore` drives them on asyncio, `SyncRedisStore` on
    threads.
    """

    what: str  # the command, for error messages
    call: Callable[[Any], Any]
    repeat: bool = False  # safe to repeat: retried on a driver failure
    unsure: bool = False  # a write not safe to repeat: a failure leaves it unknown


_PAUSE: Any = object()  # a step that only lets the event loop run (nothing on threads)
# An operation (`_sansio.Op`) yields `_Call` steps (or `_PAUSE`) and gets their replies.


async def _settled(reply: Any) -> Any:
    return await reply if inspect.isawaitable(reply) else reply


def _primaries(client: Any) -> Any:
    return client.get_primaries()


def _scan(client: Any, cursor: int, match: bytes, options: dict[str, Any]) -> Any:
    return client.scan(cursor, match=match, count=_SCAN_BATCH, **options)


def _unlink(client: Any, names: list[bytes]) -> Any:
    return client.unlink(*names)


def _eval(client: Any, script: str, name: bytes, args: tuple[Any, ...]) -> Any:
    return client.eval(script, 1, name, *args)


class RedisStore:
    """The lapse store API on Redis: `MemoryStore`'s methods with Redis's own semantics.

    ```python
    store = RedisStore("redis://127.0.0.1:6379/0", prefix="app:")
    store = RedisStore("redis+cluster://127.0.0.1:7000", prefix="app:")   # a cluster
    store = RedisStore(client=redis.asyncio.Redis(...), prefix="app:")
    ```

    Every key is stored under *prefix*, so several stores share one server safely, and
    `clear` removes only its own. Values go through *serializer* (`JSON` by default: a
    value comes back exactly as it went in, or is refused); a value it cannot encode
    raises `lapse.exceptions.UnserializableError` before anything is written, and bytes
    it cannot decode raise `lapse.exceptions.CorruptValueError` naming the key.

    Failures. Every call has a *timeout*, retries included: a server that is down,
    refuses, or hangs gives `lapse.exceptions.StoreError` (`StoreTimeoutError` for the
    timeout), chained to the driver's error; no driver exception escapes. A write that
    raised is never reported as written. Commands that are safe to repeat (reads, SET,
    SET of a batch, PEXPIRE, TOUCH, SCAN) are retried on another connection, up to 3
    attempts within the timeout; the others (INCRBY, SET NX, UNLINK, GETDEL, PERSIST, the
    compare-and-set of `update`) never are, and when their reply is lost the error says
    the write may or may not have been applied. With a ``redis://`` or ``unix://`` URL, a
    connection the server closed while it sat in the pool (a restart) is noticed before
    a command is sent on it. The same object works again once the server is back.

    Connections. At most *max_connections* calls are in flight at once; more wait for a
    free connection, within their timeout. With a *url*, lapse builds the client: a pool
    of that size, a socket timeout of half the call's timeout (so a retry fits), and no
    retries of its own. A *client* you pass keeps its settings, but its own retries are
    turned off (`client.set_retry(Retry(NoBackoff(), 0))`): redis-py resends any command
    after a dropped connection, which would add twice in `incr`, or answer ``False``
    from `add` and `delete` after they did their work.

    Runs on asyncio (redis-py's asyncio client); `sync` is the same store on redis-py's
    sync client, for threads. Needs Redis 6.2 or later (GETEX, GETDEL). Single-flight
    loads (`get_or_set`, `lapse.cached`) hold within one process.

    Attributes:
        url: A ``redis://``, ``rediss://`` or ``unix://`` URL, or
            ``redis+cluster://host:port`` for a Redis Cluster (any node; the others are
            discovered).
        client: An existing ``redis.asyncio.Redis`` or ``RedisCluster``, instead of *url*.
        prefix: Prepended to every key.
        expiry: `TTL` (the lifetime of a write without *ttl*), `Idle` (every read
            restarts the lifetime), or both. With `Idle`, a value's write deadline is kept
            beside it (a few bytes before the serialized value), the key's own TTL is the
            earlier of the two, and reads, writes, `incr`, `update`, `expire` and
            `persist` are small Lua scripts that keep both; `expire` and `persist` then
            also restart the idle lifetime (the last use is not kept).
        eviction: Must be ``None``: an `LRU` bound per prefix cannot be enforced cheaply
            and atomically in Redis. Use Redis's ``maxmemory`` with
            ``maxmemory-policy allkeys-lru`` instead.
        serializer: A `Serializer`; `JSON` by default, `PickleSerializer()` on request.
        timeout: Seconds each call may take, retries and waiting for a connection
            included; 1.0 by default.
        max_connections: Calls in flight at once (and the pool's size with a *url*); by
            default 100, or the pool size of the *client* given.
        sync_client: With *client*: a ``redis.Redis`` or ``redis.cluster.RedisCluster``
            for `sync` (its retries are turned off, as *client*'s are).

    Raises:
        TypeError: Neither or both of *url* and *client*, or a wrong policy.
        ValueError: An *eviction* policy, `TTL` and `Idle` together, a lifetime Redis
            cannot keep, or *max_connections* below 1.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "",
        expiry: TTL | Idle | tuple[TTL | Idle, ...] | None = None,
        eviction: object = None,
        serializer: Serializer = JSON,
        timeout: float = 1.0,
        max_connections: int | None = None,
        sync_client: Any = None,
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
        self._ttl, self._idle = _lifetimes(expiry)
        lifetimes = [s for s in (self._ttl, self._idle) if s is not None]
        self._fixed_ttl = min(lifetimes, default=None)  # for refresh-ahead: a write's lifetime
        self._default_px = self._px(None)  # a lifetime Redis cannot keep fails here
        self._idle_ms = "" if self._idle is None else str(self._default_px)
        self._policy_ms = self._hard(None)
        self.timeout = as_seconds(timeout, what="timeout")
        positive_int_or_none(max_connections, "max_connections")
        if url is not None:
            size = max_connections or 100
            client = self._client(url, size)
        else:
            pool = getattr(client, "connection_pool", client)
            size = max_connections or getattr(pool, "max_connections", None) or 100
            # redis-py's own retries resend a command whose reply was lost: not for us.
            client.set_retry(Retry(NoBackoff(), 0))
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        self.max_connections: int = size
        self._slots = asyncio.Semaphore(size)
        self.prefix = prefix
        self.serializer = serializer
        self._loader = Loader(time.time, lifetime=self._fixed_ttl)
        self._hits = self._misses = self._sets = self._deletes = 0
        self._url = url
        self._sync_client = sync_client
        self._sync: SyncRedisStore | None = None
        self._sync_lock = threading.Lock()

    def _client(self, url: str, size: int) -> Any:
        # No driver retries: a command resent after a dropped connection could apply twice
        # (an update, an INCRBY); lapse retries only what is safe, within the timeout.
        options: dict[str, Any] = {
            "socket_timeout": self.timeout / 2,
            "socket_connect_timeout": self.timeout / 2,
            "retry": Retry(NoBackoff(), 0),
            "max_connections": size,
        }
        scheme = "redis+cluster://"
        if url.startswith(scheme):
            return RedisCluster.from_url("redis://" + url[len(scheme) :], **options)
        fresh = _FRESH.get(url.partition(":")[0])
        if fresh is not None:
            options["connection_class"] = fresh
        return aioredis.from_url(url, **options)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r}, cluster={self.cluster}, timeout={self.timeout})"

    @property
    def sync(self) -> SyncRedisStore:
        """The same store for threads and plain functions, through redis-py's sync client.

        The same prefix, serializer, policies, timeout, retries, errors and counters; the
        same methods as ``MemoryStore(...).sync``, as plain methods. Made on first use,
        with its own connection pool of *max_connections* (from the *url*, or the
        *sync_client* given with *client*). Safe to use from any number of threads; closed
        by `aclose` or by its own `SyncRedisStore.close`.

        Raises:
            TypeError: The store was made with *client* and no *sync_client*.
        """
        with self._sync_lock:
            if self._sync is None:
                from ._redis_sync import SyncRedisStore  # noqa: PLC0415 -- on first use

                if self._sync_client is not None:
                    client = self._sync_client
                    client.set_retry(SyncRetry(NoBackoff(), 0))
                elif self._url is not None:
                    client = _sync_client(self._url, self.timeout, self.max_connections)
                else:
                    msg = "RedisStore(client=...) needs sync_client= for its sync view"
                    raise TypeError(msg)
                self._sync = SyncRedisStore(self, client)
            return self._sync

    # -- plumbing ----------------------------------------------------------------------

    def _key(self, key: str) -> bytes:
        check_key(key)
        # surrogatepass: a str with a lone surrogate is a key like any other, as in memory
        return (self.prefix + key).encode("utf-8", "surrogatepass")

    def _error(self, what: str, unsure: bool, e: BaseException) -> LapseError:
        """lapse's error for the driver's exception *e* in *what* (both clients')."""
        if isinstance(e, TimeoutError):
            msg = f"Redis did not answer {what} within {self.timeout} s"
            return StoreTimeoutError(msg + _UNSURE * unsure)
        if isinstance(e, redis_errors.ResponseError):
            if str(e).startswith("WRONGTYPE"):
                msg = f"Redis holds a value of another type where {what} expected a string: {e}"
                return CorruptValueError(msg)
            return StoreError(f"Redis refused {what}: {e}")
        if isinstance(e, redis_errors.TimeoutError):
            msg = f"Redis did not answer {what} in time: {e}"
            return StoreTimeoutError(msg + _UNSURE * unsure)
        return StoreError(f"Redis failed on {what}: {e}" + _UNSURE * unsure)

    async def _run(self, step: _Call) -> Any:
        """Run one driver call within the timeout, with lapse's errors.

        ``step.repeat``: the command is safe to repeat, and is retried on a driver failure.
        ``step.unsure``: it writes and is not safe to repeat; a driver failure leaves its
        outcome unknown, and the error says so.
        """
        client = self.client
        try:
            async with _timeout(self.timeout), self._slots:
                for _ in range(_ATTEMPTS - 1 if step.repeat else 0):
                    try:
                        return await _settled(step.call(client))
                    except _DRIVER_ERRORS:
                        continue
                return await _settled(step.call(client))
        except (TimeoutError, *_DRIVER_ERRORS, redis_errors.RedisError) as e:
            raise self._error(step.what, step.unsure, e) from e

    async def _drive(self, op: Op[T]) -> T:
        """Run the operation *op* (see `_Call`) on the asyncio client."""
        return await adrive(op, self._step, StoreError)

    async def _step(self, step: Any) -> Any:
        if step is _PAUSE:
            await asyncio.sleep(0)  # let the loop breathe between chunks of work
            return None
        return await self._run(step)

    def _dumps(self, key: str, value: Any) -> bytes:
        try:
            return self.serializer.dumps(value)
        except (TypeError, ValueError, pickle.PicklingError, RecursionError) as e:
            msg = f"cannot store {key!r}: {type(value).__name__} is not serializable ({e})"
            raise UnserializableError(msg) from e

    def _loads(self, key: str, data: bytes) -> Any:
        try:
            if self._idle is not None and data[:1] == b"\x00":
                data = data[data.index(b"\x00", 1) + 1 :]  # the write deadline's header
            return self.serializer.loads(data)
        except Exception as e:
            msg = f"the bytes under {key!r} cannot be decoded by {type(self.serializer).__name__}"
            raise CorruptValueError(msg) from e

    def _px(self, ttl: Any) -> int | None:
        """Milliseconds for PX from a call's *ttl* or the policy, ``None`` for no deadline."""
        seconds = ttl_seconds(ttl)
        if seconds is None:
            seconds = self._fixed_ttl
        if seconds is None or seconds == math.inf:
            return None
        return _ms(seconds)

    def _hard(self, ttl: Any) -> str:
        """With `Idle`: the write lifetime in ms (a call's *ttl*, or `TTL`'s), "" for none."""
        seconds = ttl_seconds(ttl)
        if seconds is None:
            seconds = self._ttl
        return "" if seconds is None or seconds == math.inf else str(_ms(seconds))

    def _idle_write(
        self,
        client: Any,
        name: bytes,
        data: bytes | None,
        ttl: str,
        *,
        cond: str = "",
        old: bytes = b"",
    ) -> Any:
        """With `Idle`: *data* under *name*, with the write deadline *ttl* ("keep", "" or
        ms), if *cond* holds ("nx", "cas0", "cas1" with *old*); *data* ``None`` deletes."""
        op = "del" if data is None else ""
        args = (data or b"", ttl, self._idle_ms, cond, old, self._policy_ms, op)
        return client.eval(_IDLE_WRITE, 1, name, *args)

    # -- the operations, written once for both clients (see _Call) ---------------------

    def _op_get(self, key: str, default: Any) -> Op[Any]:
        name = self._key(key)
        if self._idle is None:
            data = yield _Call("GET", lambda c: c.get(name), repeat=True)
        else:
            idle_ms = self._idle_ms
            data = yield _Call(
                "EVAL", lambda c: c.eval(_IDLE_READ, 1, name, idle_ms, "1"), repeat=True
            )
        if data is None:
            self._misses += 1
            return default
        self._hits += 1
        return self._loads(key, data)

    def _op_get_many(self, keys: Iterable[str]) -> Op[dict[str, Any]]:
        keys = list(keys)
        names = [self._key(key) for key in keys]
        result = {}
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            found = yield _Call("MGET", functools.partial(self._mget, chunk=chunk), repeat=True)
            for key, data in zip(keys[start : start + _CHUNK], found, strict=True):
                if data is None:
                    self._misses += 1
                else:
                    self._hits += 1
                    result[key] = self._loads(key, data)
        return result

    def _mget(self, client: Any, chunk: list[bytes]) -> Any:
        if self._idle is not None:  # every read restarts the idle lifetime, as in memory
            pipe = client.pipeline(transaction=False)
            for name in chunk:
                pipe.eval(_IDLE_READ, 1, name, self._idle_ms, "1")
            return pipe.execute()  # resets the pipeline whatever happens
        if self.cluster:
            return client.mget_nonatomic(chunk)
        return client.mget(chunk)

    def _op_has(self, key: str) -> Op[bool]:
        name = self._key(key)
        return bool((yield _Call("EXISTS", lambda c: c.exists(name), repeat=True)))

    def _op_ttl(self, key: str) -> Op[float | None]:
        name = self._key(key)
        ms = yield _Call("PTTL", lambda c: c.pttl(name), repeat=True)
        if ms == -2:  # noqa: PLR2004 -- Redis's "no such key"
            return None
        return math.inf if ms == -1 else ms / 1000

    def _op_scan(self) -> Generator[_Call | list[bytes], Any, None]:
        """Pages of this store's key names (yielded as lists), one SCAN step each."""
        pattern = self.prefix.translate(_GLOB).encode("utf-8", "surrogatepass") + b"*"
        nodes = (yield _Call("CLUSTER NODES", _primaries)) if self.cluster else [None]
        for node in nodes:
            options = {} if node is None else {"target_nodes": node}
            cursor = 0
            while True:
                cursor, names = yield _Call(
                    "SCAN",
                    functools.partial(_scan, cursor=cursor, match=pattern, options=options),
                    repeat=True,
                )
                if isinstance(cursor, dict):  # the cluster client answers per node
                    cursor = next(iter(cursor.values()), 0)
                if names:
                    yield list(names)
                if not cursor:
                    break

    def _names(self, page: list[bytes]) -> list[str]:
        cut = len(self.prefix.encode("utf-8", "surrogatepass"))
        return [name[cut:].decode("utf-8", "surrogatepass") for name in page]

    def _op_set(self, key: str, value: Any, ttl: Any, keep_ttl: bool) -> Op[None]:
        name = self._key(key)
        if keep_ttl and ttl is not None:
            msg = "set() takes a ttl or keep_ttl=True, not both (Redis refuses PX with KEEPTTL)"
            raise ValueError(msg)
        px = self._default_px if keep_ttl else self._px(ttl)
        data = self._dumps(key, value)
        self._loader.invalidate(key)
        if self._idle is not None:
            spec = "keep" if keep_ttl else self._hard(ttl)
            yield _Call(
                "EVAL",
                functools.partial(self._idle_write, name=name, data=data, ttl=spec),
                repeat=True,
            )
        elif keep_ttl and px is not None:

            def write(client: Any) -> Any:
                pipe = client.pipeline(transaction=True)
                pipe.set(name, data, px=px, nx=True)
                pipe.set(name, data, keepttl=True, xx=True)
                return pipe.execute()

            yield _Call("SET KEEPTTL", write, repeat=True)
        else:
            yield _Call("SET", lambda c: c.set(name, data, px=px, keepttl=keep_ttl), repeat=True)
        self._sets += 1

    def _op_set_many(self, mapping: Mapping[str, Any], ttl: Any) -> Op[None]:
        items = list(mapping.items())
        px = self._px(ttl)
        spec = self._hard(ttl)
        encoded: list[tuple[bytes, bytes]] = []
        for start in range(0, len(items), _CHUNK):
            if start:
                yield _PAUSE
            encoded.extend(
                (self._key(key), self._dumps(key, value))
                for key, value in items[start : start + _CHUNK]
            )

        def write(client: Any, chunk: list[tuple[bytes, bytes]]) -> Any:
            pipe = client.pipeline(transaction=not self.cluster)
            for name, data in chunk:
                if self._idle is None:
                    pipe.set(name, data, px=px)
                else:
                    self._idle_write(pipe, name, data, spec)
            return pipe.execute()

        for key, _ in items:
            self._loader.invalidate(key)
        for start in range(0, len(encoded), _CHUNK):
            chunk = encoded[start : start + _CHUNK]
            yield _Call("MULTI/SET", functools.partial(write, chunk=chunk), repeat=True)
            self._sets += len(chunk)

    def _op_add(self, key: str, value: Any, ttl: Any) -> Op[bool]:
        name = self._key(key)
        px = self._px(ttl)
        data = self._dumps(key, value)
        if self._idle is not None:
            spec = self._hard(ttl)
            call = functools.partial(self._idle_write, name=name, data=data, ttl=spec, cond="nx")
            done = yield _Call("EVAL", call, unsure=True)
        else:
            done = yield _Call("SET NX", lambda c: c.set(name, data, px=px, nx=True), unsure=True)
        if done:
            self._loader.invalidate(key)
            self._sets += 1
        return bool(done)

    def _op_incr(self, key: str, delta: int) -> Op[int]:
        name = self._key(key)
        if not isinstance(delta, int) or isinstance(delta, bool):
            msg = f"delta must be an int, not {type(delta).__name__}"
            raise TypeError(msg)
        if not -_INT64 <= delta < _INT64:
            msg = f"delta {delta} is beyond Redis's 64-bit integers"
            raise ValueError(msg)
        px = self._default_px

        def incr(client: Any) -> Any:
            if self._idle is not None:
                return client.eval(_IDLE_INCR, 1, name, delta, self._policy_ms, self._idle_ms)
            pipe = client.pipeline(transaction=True)
            if px is not None:
                pipe.set(name, b"0", px=px, nx=True)
            pipe.incrby(name, delta)
            return pipe.execute()

        self._loader.invalidate(key)
        try:
            reply = yield _Call("INCRBY", incr, unsure=True)
        except StoreError as e:
            reason = str(e.__cause__)
            if "would overflow" in reason:
                msg = f"adding {delta} to {key!r} would overflow Redis's 64-bit integers"
                raise ValueError(msg) from e.__cause__
            if "not an integer" not in reason:
                raise  # the server's own reason (OOM, READONLY...) is in the message
            msg = f"the value of {key!r} is not an int that Redis can add to (64-bit)"
            raise TypeError(msg) from e.__cause__
        self._sets += 1
        return int(reply if self._idle is not None else reply[-1])

    def _op_expire(self, key: str, ttl: float | timedelta) -> Op[bool]:
        name = self._key(key)
        seconds = as_seconds(ttl, what="ttl")
        if self._idle is not None:
            ms = "" if seconds == math.inf else str(_ms(seconds))
            return (yield from self._op_idle_expire(name, ms))
        if seconds == math.inf:

            def persist(client: Any) -> Any:
                pipe = client.pipeline(transaction=True)
                pipe.exists(name)
                pipe.persist(name)
                return pipe.execute()

            exists, _ = yield _Call("PERSIST", persist, repeat=True)
            return bool(exists)
        ms_ = _ms(seconds)
        return bool((yield _Call("PEXPIRE", lambda c: c.pexpire(name, ms_), repeat=True)))

    def _op_persist(self, key: str) -> Op[bool]:
        name = self._key(key)
        if self._idle is not None:
            return (yield from self._op_idle_expire(name, ""))
        return bool((yield _Call("PERSIST", lambda c: c.persist(name), unsure=True)))

    def _op_idle_expire(self, name: bytes, ms: str) -> Op[bool]:
        """With `Idle`: a new write deadline for *name* ("" for none), restarting its idle
        lifetime (Redis keeps one deadline per key, and lapse does not keep the last use)."""
        idle_ms = self._idle_ms
        call = _Call("EVAL", lambda c: c.eval(_IDLE_EXPIRE, 1, name, ms, idle_ms), repeat=True)
        return bool((yield call))

    def _op_touch(self, key: str) -> Op[bool]:
        name = self._key(key)
        if self._idle is not None:
            idle_ms = self._idle_ms
            call = _Call("EVAL", lambda c: c.eval(_IDLE_READ, 1, name, idle_ms, "0"), repeat=True)
            return bool((yield call))
        return bool((yield _Call("TOUCH", lambda c: c.touch(name), repeat=True)))

    def _op_update(self, key: str, fn: Callable[[Any], Any], ttl: Any, keep_ttl: bool) -> Op[Any]:
        name = self._key(key)
        computed = callable(ttl)
        if keep_ttl and (computed or ttl is not None):
            msg = "update() takes a ttl or keep_ttl=True, not both"
            raise ValueError(msg)
        fixed = None if keep_ttl or computed else self._px(ttl)
        deadline = time.monotonic() + self.timeout
        while True:
            data = yield _Call("GET", lambda c: c.get(name), repeat=True)
            old = None if data is None else self._loads(key, data)
            new = fn(old)
            encoded = None if new is None else self._dumps(key, new)
            lifetime = None if new is None else (ttl(new) if computed else ttl)
            if self._idle is not None:
                spec = "keep" if keep_ttl else self._hard(lifetime)
                cond = "cas0" if data is None else "cas1"
                cas: Callable[[Any], Any] = functools.partial(
                    self._idle_write, name=name, data=encoded, ttl=spec, cond=cond, old=data or b""
                )
            else:
                if encoded is None:
                    write: tuple[str, str, bytes] = ("del", "", b"")
                else:
                    px = self._px(lifetime) if computed else fixed
                    write = (
                        "set",
                        "keep" if keep_ttl else ("" if px is None else str(px)),
                        encoded,
                    )
                args = ("0" if data is None else "1", b"" if data is None else data, *write)
                cas = functools.partial(_eval, script=_CAS, name=name, args=args)
            done = yield _Call("EVAL", cas, unsure=True)
            if done:
                self._loader.invalidate(key)
                if new is not None:
                    self._sets += 1
                return new
            if time.monotonic() >= deadline:
                msg = f"update of {key!r} kept conflicting with other writers for {self.timeout} s"
                raise StoreTimeoutError(msg)

    def _op_delete(self, key: str) -> Op[bool]:
        name = self._key(key)
        self._loader.invalidate(key)
        removed = yield _Call("UNLINK", lambda c: c.unlink(name), unsure=True)
        self._deletes += int(removed)
        return bool(removed)

    def _op_delete_many(self, keys: Iterable[str]) -> Op[int]:
        keys = list(keys)
        names = [self._key(key) for key in keys]
        for key in keys:
            self._loader.invalidate(key)
        removed = 0
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            removed += int(
                (yield _Call("UNLINK", functools.partial(_unlink, names=chunk), unsure=True))
            )
        self._deletes += removed
        return removed

    def _op_pop(self, key: str, default: Any) -> Op[Any]:
        name = self._key(key)
        self._loader.invalidate(key)
        data = yield _Call("GETDEL", lambda c: c.getdel(name), unsure=True)
        if data is None:
            return default
        self._deletes += 1
        return self._loads(key, data)

    def _op_clear(self) -> Op[None]:
        if not self.prefix:
            msg = "clear() needs a prefix: without one it would remove every key of the database"
            raise ValueError(msg)
        pages = self._op_scan()
        reply: Any = None
        while True:
            try:
                step = pages.send(reply)
            except StopIteration:
                return
            if isinstance(step, list):
                yield _Call("UNLINK", functools.partial(_unlink, names=step), repeat=True)
                reply = None
            else:
                reply = yield step

    # -- the asyncio face --------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """Return the value of *key*, or *default*. With `Idle`, restarts its lifetime (GETEX)."""
        return await self._drive(self._op_get(key, default))

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return the live values of *keys* (MGET, or GETEX with `Idle`).

        One round trip per 250 keys (per slot on a cluster), so that a large batch never
        holds the event loop for long.
        """
        return await self._drive(self._op_get_many(keys))

    async def has(self, key: str) -> bool:
        """Return whether *key* exists (EXISTS), counting no use."""
        return await self._drive(self._op_has(key))

    async def ttl(self, key: str) -> float | None:
        """Seconds left (PTTL): ``math.inf`` with no deadline, ``None`` if missing."""
        return await self._drive(self._op_ttl(key))

    async def keys(self) -> AsyncIterator[str]:
        """Iterate over this store's keys (SCAN of its prefix), in no particular order.

        The timeout applies to each round trip of the SCAN (1 000 keys of the database
        each, per node on a cluster), so a large database is walked to its end. Keys
        written or removed meanwhile may or may not be seen, as with SCAN.
        """
        pages = self._op_scan()
        reply: Any = None
        while True:
            try:
                step = pages.send(reply)
            except StopIteration:
                return
            reply = None
            if isinstance(step, list):
                for name in self._names(step):
                    yield name
            else:
                reply = await self._run(step)

    def stats(self) -> Stats:
        """The counters of this object (not of the server): hits and misses of `get` and
        `get_many`, sets, deletes, and loads. *size* is -1: the number of keys of a prefix
        is not kept by Redis; count them with `keys` (a SCAN), or ask Redis for the
        whole database's with ``DBSIZE``. *evictions* and *expirations* are Redis's own
        (``INFO stats``: ``evicted_keys``, ``expired_keys``) and read 0 here. ``store.sync``
        counts in the same counters."""
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

    async def set(self, key: str, value: Any, *, ttl: Any = None, keep_ttl: bool = False) -> None:
        """Store *value* (SET, with PX or KEEPTTL). Raises before writing if it cannot encode.

        With *keep_ttl*, a key that exists keeps its deadline and a new key gets the
        policy's lifetime, as in `MemoryStore` (one transaction of SET NX PX and SET XX
        KEEPTTL).
        """
        await self._drive(self._op_set(key, value, ttl, keep_ttl))

    async def set_many(self, mapping: Mapping[str, Any], *, ttl: Any = None) -> None:
        """Store every item (SET with PX, in MULTI transactions; per slot on a cluster).

        Every value is encoded first: if one cannot be, nothing is written. Up to 250
        items are written all or nothing, in one transaction; a larger batch is written in
        transactions of 250 items, so that no step holds the event loop for long, and a
        failure part way may leave the first ones written (each item whole). Writing them
        again is safe.
        """
        await self._drive(self._op_set_many(mapping, ttl))

    async def add(self, key: str, value: Any, *, ttl: Any = None) -> bool:
        """Store *value* only if *key* is missing (SET NX); return whether it did."""
        return await self._drive(self._op_add(key, value, ttl))

    async def incr(self, key: str, delta: int = 1) -> int:
        """Add *delta* to the integer at *key* (INCRBY); a new key gets the policy's lifetime.

        Raises:
            TypeError: *delta* is not an int, or the value is not one.
            ValueError: *delta* or the result is beyond Redis's 64-bit integers.
        """
        return await self._drive(self._op_incr(key, delta))

    async def expire(self, key: str, ttl: float | timedelta) -> bool:
        """Set the deadline of *key* to *ttl* from now (PEXPIRE; PERSIST for ``math.inf``);
        ``False`` if missing."""
        return await self._drive(self._op_expire(key, ttl))

    async def persist(self, key: str) -> bool:
        """Remove the deadline of *key* (PERSIST); ``True`` if there was one.

        With `Idle`, the write deadline is removed and the idle one still applies.
        """
        return await self._drive(self._op_persist(key))

    async def touch(self, key: str) -> bool:
        """Count a use of *key*: with `Idle`, restart its lifetime; ``False`` if missing."""
        return await self._drive(self._op_touch(key))

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
        return await self._drive(self._op_update(key, fn, ttl, keep_ttl))

    async def delete(self, key: str) -> bool:
        """Remove *key* (UNLINK); return whether it existed."""
        return await self._drive(self._op_delete(key))

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove every key of *keys* (UNLINK, 250 keys a round trip; per slot on a
        cluster); return how many existed."""
        return await self._drive(self._op_delete_many(keys))

    async def pop(self, key: str, default: Any = None) -> Any:
        """Remove *key* and return its value (GETDEL), or *default*."""
        return await self._drive(self._op_pop(key, default))

    async def clear(self) -> None:
        """Remove this store's keys only (SCAN of the prefix, UNLINK); never FLUSHDB.

        The timeout applies to each round trip, so a large database is walked to its end.

        Raises:
            ValueError: The store has no prefix: it would remove every key of the database.
        """
        await self._drive(self._op_clear())

    # -- loading and closing -----------------------------------------------------------

    async def get_or_set(
        self,
        key: str,
        factory: Callable[[], Any],
        *,
        ttl: Any = None,
        refresh_after: float | None = None,
        on_store_error: OnStoreError = "fail_open",
    ) -> Any:
        """`MemoryStore.get_or_set`, on Redis; single-flight within this process.

        With the server down, the factory's result is returned and the failure logged
        (``on_store_error="fail_open"``, the default); ``"fail_closed"`` raises it.
        """
        return await self._loader.get_or_set(
            self, key, factory, ttl=ttl, refresh_after=refresh_after, on_store_error=on_store_error
        )

    async def aclose(self) -> None:
        """Cancel background refreshes and close the connection pool (and the sync
        client's, if `sync` made one)."""
        await self._loader.aclose()
        await self.client.aclose()
        if self._sync is not None:
            self._sync.close()

    async def __aenter__(self) -> RedisStore:  # noqa: PYI034 -- final in spirit
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
