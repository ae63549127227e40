"""The `cached` decorator: memoize a function's results in a store, single-flight."""

from __future__ import annotations

import functools
import hashlib
import inspect
import itertools
import threading
import weakref

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from ._clock import as_seconds
from ._loader import Loader, loader_for


P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")

_MAX_KEY = 250  # longer default keys are hashed

# Instances get a token the first time a cached method sees them, never reused: two
# objects never share entries, even when one reuses the address of another that is gone.
_tokens: dict[int, str] = {}
_token_counter = itertools.count(1)
_tokens_lock = threading.Lock()


def _identity(obj: object) -> str:
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    key = id(obj)
    with _tokens_lock:
        token = _tokens.get(key)
        if token is None:
            token = f"{type(obj).__qualname__}#{next(_token_counter)}"
            try:
                weakref.finalize(obj, _tokens.pop, key, None)
            except TypeError:  # not weakly referenceable: its address is all we have
                return f"{type(obj).__qualname__}@{key:x}"
            _tokens[key] = token
    return token


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


def default_key(fn: Callable[..., Any]) -> Callable[..., str]:
    """Return the default key builder of *fn*.

    The key is ``module.qualname(arg=value, ...)``: the arguments bound to *fn*'s
    signature with defaults applied, so positional and keyword forms of one call give one
    key, each value by its ``repr``. The first argument of a method (``self`` or ``cls``)
    is replaced by the identity of the object. A key longer than 250 characters is
    shortened to the name and a SHA-256 of the whole.
    """
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    instance = params[0].name if params and params[0].name in ("self", "cls") else None
    kinds = {p.name: p.kind for p in params}
    prefix = f"{fn.__module__}.{fn.__qualname__}"
    fast_bind = _simple_binder(signature)

    def make_key(*args: Any, **kwargs: Any) -> str:
        pairs = None if fast_bind is None else fast_bind(args, kwargs)
        if pairs is None:  # the general case, and every wrong call: bind() raises TypeError
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            pairs = list(bound.arguments.items())
        parts = []
        for name, value in pairs:
            if name == instance:
                parts.append(f"{name}=<{_identity(value)}>")
            elif kinds[name] is inspect.Parameter.VAR_KEYWORD:
                parts.extend(f"{k}={v!r}" for k, v in sorted(value.items()))
            else:
                parts.append(f"{name}={value!r}")
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
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
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

    def _bind(self, obj: Any) -> Any:
        """``obj.method``: the function with *obj* as first argument, key and invalidate too."""
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

    Added in 0.1.
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
        """Remove the entry of this call; return whether there was one."""
        removed: bool = await self._store.delete(self.key(*args, **kwargs))
        return removed

    @overload
    def __get__(self, obj: None, objtype: Any = None) -> AsyncCachedFunction[P, R]: ...
    @overload
    def __get__(
        self: AsyncCachedFunction[Concatenate[S, P2], R], obj: S, objtype: Any = None
    ) -> AsyncCachedFunction[P2, R]: ...
    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self._bind(obj)


class CachedFunction(_Base[P, R]):
    """A plain function whose results are kept in a store's ``sync`` face, as made by `cached`.

    Call it as the function itself. ``fn.key(*args, **kwargs)`` is the key of a call and
    ``fn.invalidate(*args, **kwargs)`` removes its entry. Threads calling it with one
    missing key share one call.

    Added in 0.1.
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
        """Remove the entry of this call; return whether there was one."""
        removed: bool = self._store.delete(self.key(*args, **kwargs))
        return removed

    @overload
    def __get__(self, obj: None, objtype: Any = None) -> CachedFunction[P, R]: ...
    @overload
    def __get__(
        self: CachedFunction[Concatenate[S, P2], R], obj: S, objtype: Any = None
    ) -> CachedFunction[P2, R]: ...
    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self._bind(obj)


class _Decorator:
    def __init__(self, store: Any, key: Callable[..., str] | None, options: dict[str, Any]) -> None:
        self._store = store
        self._key = key
        self._options = options

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> AsyncCachedFunction[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> CachedFunction[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Any:
        make_key = self._key or default_key(fn)
        if inspect.iscoroutinefunction(fn):
            return AsyncCachedFunction(
                fn, self._store, loader_for(self._store), make_key, self._options
            )
        sync = getattr(self._store, "sync", None)
        if sync is None or not all(
            callable(getattr(sync, m, None)) for m in ("get", "set", "delete")
        ):
            msg = (
                f"{fn.__qualname__} is not async, and {type(self._store).__name__} has no "
                "sync face: decorate an async function, or use a store with .sync such as "
                "MemoryStore"
            )
            raise TypeError(msg)
        return CachedFunction(fn, sync, loader_for(sync), make_key, self._options)


def cached(
    store: Any,
    *,
    ttl: float | timedelta | None = None,
    key: Callable[..., str] | None = None,
    cache_none: bool = True,
    refresh_after: float | None = None,
) -> _Decorator:
    """Keep the results of a function in *store*, one load per key at a time.

    ::

        @cached(store, ttl=60)
        async def user(user_id: int) -> User:
            return await db.fetch_user(user_id)

        await user(1)               # loads, stores for 60 s
        await user(user_id=1)       # the same key: served from the store
        user.key(1)                 # 'app.user(user_id=1)'
        await user.invalidate(1)    # removes that entry

    Works on async functions with any `lapse.Store`, and on plain functions with a store
    that has a ``sync`` face (`MemoryStore`). Methods work too: two instances never share
    an entry, and ``self`` need not be hashable. Concurrent calls with one missing key
    share one call of the function, as `MemoryStore.get_or_set` describes.

    Args:
        store: Where the results are kept.
        ttl: The lifetime of each result, as in ``set``; ``None``: the store's default.
        key: ``key(*args, **kwargs) -> str``, given the call's own arguments (``self``
            included, for a method). The default is described in `default_key`.
        cache_none: Whether a ``None`` result is stored (the default) or asked for again
            on the next call.
        refresh_after: Seconds after which a result is served once more as it is while
            one background call replaces it.

    Raises:
        TypeError: At decoration: a plain function and a store with no ``sync`` face.
        ValueError: *ttl* or *refresh_after* is zero, negative or NaN.

    Added in 0.1.
    """
    if ttl is not None:
        as_seconds(ttl, what="ttl")
    if refresh_after is not None:
        as_seconds(refresh_after, what="refresh_after")
    if key is not None and not callable(key):
        msg = f"key must be a callable returning a str, not {type(key).__name__}"
        raise TypeError(msg)
    options = {"ttl": ttl, "refresh_after": refresh_after, "cache_none": cache_none}
    return _Decorator(store, key, options)
