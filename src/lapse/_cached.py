"""The `cached` decorator: memoize a function's results in a store, single-flight.

Default keys are built from values, never from addresses (`canonical`), and start from a
name that is unique to the decorated function object within this process (`_prefix`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import fractions
import functools
import hashlib
import inspect
import itertools
import pathlib
import re
import threading
import uuid
import weakref

from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import attrs

from ._clock import as_seconds
from ._loader import Loader, OnStoreError, check_on_store_error, loader_for


P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")

_MAX_KEY = 250  # longer default keys are hashed
_MAX_DEPTH = 32  # deeper arguments are refused: likely a cycle

# Objects keyed by identity get a token the first time a key is built from them, never
# reused: an object at a dead object's address does not inherit its entries.
_tokens: dict[int, str] = {}
_token_counter = itertools.count(1)
_tokens_lock = threading.Lock()

# Decorated functions by name: the second function object with a name gets "#2", and so
# on (closures from one factory, lambdas), so that two functions never share entries.
_prefixes: dict[str, itertools.count[int]] = {}

_PLAIN = frozenset({str, int, float, bool, type(None), bytes, complex})
# Types whose repr is their value, whatever their subclass or instance.
_BY_REPR = (
    dt.date,  # and datetime
    dt.time,
    dt.timedelta,
    dt.tzinfo,
    decimal.Decimal,
    fractions.Fraction,
    uuid.UUID,
    pathlib.PurePath,
    range,
    re.Pattern,
)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _identity(obj: object) -> str:
    """A token for *obj* that no other object ever gets, or `TypeError`."""
    key = id(obj)
    with _tokens_lock:
        token = _tokens.get(key)
        if token is None:
            try:
                weakref.finalize(obj, _tokens.pop, key, None)
            except TypeError:
                kind = _name(type(obj))
                msg = (
                    f"cannot build a cache key from a {kind} argument: it is known only by its "
                    f"address (default repr), and cannot be weakly referenced to get a token; "
                    f"pass key=... to @cached, or give {type(obj).__qualname__} a __repr__ "
                    "that shows its value"
                )
                raise TypeError(msg) from None
            token = _tokens[key] = f"<{type(obj).__qualname__}#{next(_token_counter)}>"
    return token


def canonical(value: Any, depth: int = 0) -> str:  # noqa: C901, PLR0911, PLR0912 -- one case per kind
    """Return a text that identifies *value* by value, the same in every process.

    Numbers, strings, bytes and ``None`` by their ``repr``; tuples and lists item by
    item; dicts and sets sorted, whatever their insertion order or hash seed; enums by
    name; dataclasses and attrs classes by their fields; classes by qualified name;
    dates, decimals, UUIDs, paths and other value types by ``repr``; any other object
    by its own ``__repr__`` if it has one that shows no address. An object known only by
    its address gets a token never given to another object (or `TypeError` if it
    cannot be weakly referenced), so a call with it never shares an entry with a call
    with another object.

    Raises:
        TypeError: *value* cannot be keyed (see above), or is nested deeper than 32 levels.
    """
    cls = value.__class__
    if cls in _PLAIN:
        return repr(value)
    if depth > _MAX_DEPTH:
        msg = "a cache key argument is nested too deeply (a cycle?); pass key=... to @cached"
        raise TypeError(msg)
    depth += 1
    if cls is tuple or cls is list:
        inner = ", ".join(canonical(item, depth) for item in value)
        return f"({inner},)" if cls is tuple else f"[{inner}]"
    if cls is dict:
        items = sorted(f"{canonical(k, depth)}: {canonical(v, depth)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if cls is set or cls is frozenset:
        return f"{cls.__name__}({{{', '.join(sorted(canonical(v, depth) for v in value))}}})"
    if isinstance(value, type):
        return f"<class {_name(value)}>"
    if isinstance(value, enum.Enum):
        return f"{_name(cls)}.{value.name}"
    if dataclasses.is_dataclass(value):
        fields = ", ".join(
            f"{f.name}={canonical(getattr(value, f.name), depth)}"
            for f in dataclasses.fields(value)
        )
        return f"{_name(cls)}({fields})"
    if attrs.has(cls):
        fields = ", ".join(
            f"{f.name}={canonical(getattr(value, f.name), depth)}" for f in attrs.fields(cls)
        )
        return f"{_name(cls)}({fields})"
    if isinstance(value, (str, int, float, bytes)):  # subclasses: their base value
        base = next(b for b in (str, bool, int, float, bytes) if isinstance(value, b))
        return f"{_name(cls)}:{base.__repr__(value)}"
    if isinstance(value, (tuple, list, dict, set, frozenset)):  # named tuples and the like
        plain = next(b for b in (tuple, list, dict, set, frozenset) if isinstance(value, b))
        return f"{_name(cls)}:{canonical(plain(value), depth)}"
    if isinstance(value, _BY_REPR):
        return f"{_name(cls)}:{value!r}"
    if cls.__repr__ is not object.__repr__:
        text = repr(value)
        if not _ADDRESS.search(text):
            return f"{_name(cls)}:{text}"
    return _identity(value)


def _describe(fn: Any) -> str:
    """``module.qualname`` of a function, a partial or a callable instance."""
    if isinstance(fn, functools.partial):
        return f"{_describe(fn.func)}.partial"
    qualname = getattr(fn, "__qualname__", None)
    module = getattr(fn, "__module__", None)
    if qualname is None or module is None:  # a callable instance
        return f"{_name(type(fn))}.__call__"
    return f"{module}.{qualname}"


def _prefix(fn: Any) -> str:
    """A name for *fn* that no other decorated function object gets in this process."""
    name = _describe(fn)
    with _tokens_lock:
        counter = _prefixes.get(name)
        if counter is None:
            _prefixes[name] = itertools.count(2)
            return name
        return f"{name}#{next(counter)}"


_Pairs = list[tuple[str, Any]]


def _simple_binder(signature: inspect.Signature) -> Callable[..., _Pairs | None] | None:
    """Bind arguments to a signature without *args, **kwargs or positional-only parameters.

    `inspect.Signature.bind` costs microseconds on every call; this does the simple case
    and returns ``None`` for anything it does not handle, wrong calls included.
    """
    params = list(signature.parameters.values())
    allowed = {inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY}
    if any(p.kind not in allowed for p in params):
        return None
    names = [p.name for p in params]
    defaults = [p.default for p in params]
    empty = inspect.Parameter.empty
    positional = sum(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
    index = {name: i for i, name in enumerate(names)}

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Pairs | None:
        if len(args) > positional:
            return None
        values = [*args, *([empty] * (len(names) - len(args)))]
        for name, value in kwargs.items():
            i = index.get(name)
            if i is None or values[i] is not empty:
                return None
            values[i] = value
        for i, value in enumerate(values):
            if value is empty:
                if defaults[i] is empty:
                    return None
                values[i] = defaults[i]
        return list(zip(names, values, strict=True))

    return bind


def default_key(
    fn: Callable[..., Any], prefix: str | None = None, ignore: Iterable[str] = ()
) -> Callable[..., str]:
    """Return the default key builder of *fn*.

    The key is ``prefix(arg=value, ...)``: the arguments bound to *fn*'s signature with
    defaults applied, so positional and keyword forms of one call give one key, each value
    as `canonical` spells it (``self`` and ``cls`` included), but for the parameters named
    in *ignore*, which are left out. *prefix* is
    ``module.qualname``, with ``#2``, ``#3`` ... for the second and later function objects
    of one name in this process. A key longer than 250 characters is shortened to the
    prefix and a SHA-256 of the whole.
    """
    signature = inspect.signature(fn)
    kinds = {p.name: p.kind for p in signature.parameters.values()}
    left_out = frozenset(ignore)
    unknown = sorted(left_out - set(kinds))
    if unknown:
        msg = f"ignore names {unknown}, which {_describe(fn)} has no parameter called"
        raise TypeError(msg)
    prefix = _prefix(fn) if prefix is None else prefix
    fast_bind = _simple_binder(signature)

    def make_key(*args: Any, **kwargs: Any) -> str:
        pairs = None if fast_bind is None else fast_bind(args, kwargs)
        if pairs is None:  # the general case, and every wrong call: bind() raises TypeError
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            pairs = list(bound.arguments.items())
        parts: list[str] = []
        for name, value in pairs:
            if name in left_out:
                continue
            if value.__class__ in _PLAIN:  # canonical()'s first case, without the call
                parts.append(f"{name}={value!r}")
            elif kinds[name] is inspect.Parameter.VAR_KEYWORD:
                parts.extend(f"{k}={canonical(v)}" for k, v in sorted(value.items()))
            else:
                parts.append(f"{name}={canonical(value)}")
        key = f"{prefix}({', '.join(parts)})"
        if len(key) > _MAX_KEY:
            key = f"{prefix}#sha256:{hashlib.sha256(key.encode()).hexdigest()}"
        return key

    return make_key


class _Base(Generic[P, R]):
    """What both kinds of cached function share: the key, binding to an instance."""

    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Any]

    def __init__(
        self,
        fn: Callable[P, Any],
        store: Any,
        loader: Loader,
        make_key: Callable[..., str],
        options: dict[str, Any],
    ) -> None:
        if inspect.isfunction(fn) or inspect.ismethod(fn):
            functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        else:  # a partial or a callable instance: its name, never its attributes
            functools.update_wrapper(self, fn, updated=())  # type: ignore[arg-type]
            name = _describe(fn).rpartition(".")[2]
            self.__name__ = getattr(fn, "__name__", name)
            self.__qualname__ = getattr(fn, "__qualname__", name)
        self._binds_class = False  # a classmethod's: binds the class, not the instance
        self._fn = fn
        self._store = store
        self._loader = loader
        self._make_key = make_key
        self._options = options

    def key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Return the key under which this call's result is stored."""
        key = self._make_key(*args, **kwargs)
        if not isinstance(key, str):
            msg = f"the key function returned a {type(key).__name__}, not a str"
            raise TypeError(msg)
        return key

    def _bind(self, obj: Any, objtype: Any) -> Any:
        """``obj.method``: the function with *obj* as first argument, key and invalidate too."""
        if self._binds_class:
            return _Bound(self, objtype if objtype is not None else type(obj))
        return self if obj is None else _Bound(self, obj)


class _Bound:
    """A cached function bound to an instance: ``obj.method``, with ``key`` and ``invalidate``."""

    def __init__(self, cached: _Base[Any, Any], obj: Any) -> None:
        self._cached = cached
        self.__self__ = obj
        self.__func__ = cached
        functools.update_wrapper(self, cached)  # type: ignore[arg-type]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._cached(self.__self__, *args, **kwargs)  # type: ignore[operator]

    def key(self, *args: Any, **kwargs: Any) -> str:
        return self._cached.key(self.__self__, *args, **kwargs)

    def invalidate(self, *args: Any, **kwargs: Any) -> Any:
        return self._cached.invalidate(self.__self__, *args, **kwargs)  # type: ignore[attr-defined]


class AsyncCachedFunction(_Base[P, R]):
    """An async function whose results are kept in a store, as made by `cached`.

    Call it as the function itself. ``fn.key(*args, **kwargs)`` is the key of a call and
    ``await fn.invalidate(*args, **kwargs)`` removes its entry.
    """

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        fn = self._fn

        def load() -> Any:
            return fn(*args, **kwargs)

        result: R = await self._loader.get_or_set(
            self._store, self.key(*args, **kwargs), load, **self._options
        )
        return result

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the entry of this call; return whether there was one.

        A load of this call still in progress will not store its result afterwards.
        """
        key = self.key(*args, **kwargs)
        self._loader.invalidate(key)
        removed: bool = await self._store.delete(key)
        return removed

    @overload
    def __get__(self, obj: None, objtype: Any = None) -> AsyncCachedFunction[P, R]: ...
    @overload
    def __get__(
        self: AsyncCachedFunction[Concatenate[S, P2], R], obj: S, objtype: Any = None
    ) -> AsyncCachedFunction[P2, R]: ...
    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self._bind(obj, objtype)


class CachedFunction(_Base[P, R]):
    """A plain function whose results are kept in a store's ``sync`` face, as made by `cached`.

    Call it as the function itself. ``fn.key(*args, **kwargs)`` is the key of a call and
    ``fn.invalidate(*args, **kwargs)`` removes its entry. Threads calling it with one
    missing key share one call.
    """

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        fn = self._fn

        def load() -> Any:
            return fn(*args, **kwargs)

        result: R = self._loader.get_or_set_sync(
            self._store, self.key(*args, **kwargs), load, **self._options
        )
        return result

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Remove the entry of this call; return whether there was one.

        A load of this call still in progress will not store its result afterwards.
        """
        key = self.key(*args, **kwargs)
        self._loader.invalidate(key)
        removed: bool = self._store.delete(key)
        return removed

    @overload
    def __get__(self, obj: None, objtype: Any = None) -> CachedFunction[P, R]: ...
    @overload
    def __get__(
        self: CachedFunction[Concatenate[S, P2], R], obj: S, objtype: Any = None
    ) -> CachedFunction[P2, R]: ...
    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self._bind(obj, objtype)


class _Decorator:
    def __init__(
        self,
        store: Any,
        key: Callable[..., str] | None,
        options: dict[str, Any],
        ignore: tuple[str, ...] = (),
    ) -> None:
        self._store = store
        self._key = key
        self._options = options
        self._ignore = ignore

    @overload
    def __call__(self, fn: staticmethod[P, R]) -> staticmethod[P, R]: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, fn: classmethod[S, P, R]) -> classmethod[S, P, R]: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> AsyncCachedFunction[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> CachedFunction[P, R]: ...
    def __call__(self, fn: Any) -> Any:
        if isinstance(fn, staticmethod):  # @cached above @staticmethod: cache the function
            return staticmethod(self(fn.__func__))
        if isinstance(fn, classmethod):  # ... above @classmethod: bind the class
            inner = self(fn.__func__)
            inner._binds_class = True  # noqa: SLF001
            return inner
        if not callable(fn):
            msg = f"@cached decorates a function, not a {type(fn).__name__}"
            raise TypeError(msg)
        make_key = self._key or default_key(fn, ignore=self._ignore)
        store, name = self._store, _describe(fn)
        if _is_async(fn):
            if not _is_async(getattr(store, "get", None)):
                msg = (
                    f"{name} is async, and {type(store).__name__} is not an async store: "
                    "pass the MemoryStore itself, not its .sync"
                )
                raise TypeError(msg)
            return AsyncCachedFunction(fn, store, loader_for(store), make_key, self._options)
        sync = store if _is_sync_store(store) else getattr(store, "sync", None)
        if not _is_sync_store(sync):
            msg = (
                f"{name} is not async, and {type(store).__name__} has no sync face: decorate "
                "an async function, or use a store with .sync such as MemoryStore"
            )
            raise TypeError(msg)
        return CachedFunction(fn, sync, loader_for(sync), make_key, self._options)


def _is_async(fn: object) -> bool:
    """Whether calling *fn* gives a coroutine: a coroutine function, partial or instance."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 -- an instance's async __call__
    )


def _is_sync_store(store: object) -> bool:
    """Whether *store* has plain (not async) get, set and delete."""
    methods = [getattr(store, name, None) for name in ("get", "set", "delete")]
    return all(callable(m) and not _is_async(m) for m in methods)


def cached(
    store: Any,
    *,
    ttl: float | dt.timedelta | None = None,
    key: Callable[..., str] | None = None,
    ignore: Iterable[str] = (),
    cache_none: bool = True,
    refresh_after: float | None = None,
    on_store_error: OnStoreError = "fail_open",
) -> _Decorator:
    """Keep the results of a function in *store*, one load per key at a time.

    ```python
    @cached(store, ttl=60)
    async def user(user_id: int) -> User:
        return await db.fetch_user(user_id)

    await user(1)               # loads, stores for 60 s
    await user(user_id=1)       # the same key: served from the store
    user.key(1)                 # 'app.user(user_id=1)'
    await user.invalidate(1)    # removes that entry
    ```

    Works on async functions with any `lapse.Store`, and on plain functions with
    ``store.sync`` or a store that has a ``sync`` face (`MemoryStore`); also on methods,
    static and class methods, `functools.partial` objects and callable instances.
    Concurrent calls with one missing key share one call of the function, as
    `MemoryStore.get_or_set` describes; a thread and an async task asking for the same
    missing key at once each load it (their waits cannot be shared).

    The default key names the function object (a second function with the same
    qualified name, such as another closure from one factory, gets ``#2``) and each
    argument by value (see `canonical`): a call never gets another call's result.
    Arguments known only by their address (the default ``repr``), ``self`` included, get
    a token that no other object ever gets, so their entries are never served to anyone
    else; they stay in the store until they expire or are evicted, so give such a store
    a TTL or an `LRU` bound.

    Args:
        store: Where the results are kept.
        ttl: The lifetime of each result, as in ``set``; ``None``: the store's default.
        key: ``key(*args, **kwargs) -> str``, given the call's own arguments (``self``
            included, for a method). The default is described in `default_key`.
        ignore: Names of parameters the default key leaves out: ``ignore=("self",)`` on
            a method shares its results between all instances (a repository made per
            request), ``ignore=("db",)`` leaves out a connection argument. Leave out only
            what does not change the result.
        cache_none: Whether a ``None`` result is stored (the default) or asked for again
            on the next call.
        refresh_after: Seconds after which a result is served once more as it is while
            one background call replaces it.
        on_store_error: ``"fail_open"`` (the default): if the store fails (a Redis
            server down), the failure is logged and the function's result returned, as
            if the store were empty; ``"fail_closed"``: the `StoreError` is raised.

    Raises:
        TypeError: At decoration: a plain function and a store with no ``sync`` face;
            *ignore* names a parameter the function does not have, or comes with *key*.
        ValueError: *ttl* or *refresh_after* is zero, negative or NaN, or a wrong
            *on_store_error*.
    """
    if ttl is not None:
        as_seconds(ttl, what="ttl")
    if refresh_after is not None:
        as_seconds(refresh_after, what="refresh_after")
    if key is not None and not callable(key):
        msg = f"key must be a callable returning a str, not {type(key).__name__}"
        raise TypeError(msg)
    if isinstance(ignore, str):
        ignore = (ignore,)
    ignored = tuple(ignore)
    if key is not None and ignored:
        msg = "ignore leaves arguments out of the default key; with key=..., leave them out there"
        raise TypeError(msg)
    check_on_store_error(on_store_error)
    options = {
        "ttl": ttl,
        "refresh_after": refresh_after,
        "cache_none": cache_none,
        "on_store_error": on_store_error,
    }
    return _Decorator(store, key, options, ignored)
