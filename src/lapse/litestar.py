"""Litestar's `Store` interface on any lapse store: ``lapse.litestar.Store``.

`session_middleware` puts lapse's server-side sessions in a Litestar app. Litestar keeps
its response cache, its rate limiter and its own server-side sessions in stores
(``app.stores``). Its own memory store neither bounds its size nor drops what is
never read again. Put a lapse store under them:

```python
from litestar import Litestar
from lapse import MemoryStore, TTL, SIEVE
import lapse.litestar

cache = MemoryStore(expiry=TTL(3600), eviction=SIEVE(10_000))
app = Litestar(
    route_handlers=[...],
    stores={"response_cache": lapse.litestar.Store(cache)},
)
```

Needs the ``litestar`` extra: ``pip install 'lapse[litestar]'``.
"""

from __future__ import annotations

import math

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from litestar.middleware import DefineMiddleware
from litestar.stores.base import NamespacedStore

from ._asgi import SessionMiddleware


if TYPE_CHECKING:
    from typing_extensions import Self

    from ._sessions import SessionManager
    from ._store import FullStore

__all__ = ["Store", "session_middleware"]


def session_middleware(manager: SessionManager) -> DefineMiddleware:
    """lapse's `lapse.sessions.SessionMiddleware` for ``Litestar(middleware=[...])``.

    ``request.session`` is then the `lapse.sessions.Session` of the request (use
    `lapse.sessions.session_of` for `login`, `regenerate` and `clear`). The same as
    ``DefineMiddleware(SessionMiddleware, manager=manager)``, typed as Litestar expects
    (lapse's middleware is typed for plain ASGI).
    """
    middleware: Any = SessionMiddleware
    return DefineMiddleware(middleware, manager=manager)


class Store(NamespacedStore):
    """A Litestar store whose entries live in *store*, a lapse store (`MemoryStore`,
    ``RedisStore``, or your own `FullStore`).

    Values are bytes (a ``str`` is stored UTF-8 encoded); *expires_in* becomes the
    entry's TTL and ``None`` leaves it to the lapse store's expiry policy. A namespace
    is a key prefix, ``"<namespace>:"``; `with_namespace` nests them, and `delete_all`
    of a namespace removes its keys and its children's. Without a namespace, `delete_all`
    clears the whole lapse store.

    Each method is one call on the lapse store (`get` with *renew_for* two or three), so
    it costs what that store's call costs.
    """

    __slots__ = ("_prefix", "_store")

    def __init__(self, store: FullStore, namespace: str | None = None) -> None:
        self._store = store
        self.namespace = namespace
        self._prefix = "" if namespace is None else f"{namespace}:"

    def __repr__(self) -> str:
        return f"lapse.litestar.Store({self._store!r}, namespace={self.namespace!r})"

    def with_namespace(self, namespace: str) -> Self:
        """Return a store on the same lapse store, in the child *namespace*."""
        child = namespace if self.namespace is None else f"{self.namespace}:{namespace}"
        return type(self)(self._store, child)

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        """Store *value* under *key*, for *expires_in* seconds."""
        data = value.encode("utf-8") if isinstance(value, str) else value
        await self._store.set(self._prefix + key, data, ttl=expires_in)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        """Return the value of *key*, or ``None``. With *renew_for*, a value that has an
        expiry gets *renew_for* seconds from now; one without keeps none."""
        full = self._prefix + key
        value: bytes | None = await self._store.get(full)
        if value is not None and renew_for:
            remaining = await self._store.ttl(full)
            if remaining is not None and remaining != math.inf:
                await self._store.expire(full, renew_for)
        return value

    async def delete(self, key: str) -> None:
        """Remove *key*; nothing happens if it is absent."""
        await self._store.delete(self._prefix + key)

    async def delete_all(self) -> None:
        """Remove every key of this namespace and its children (everything, without a
        namespace). `O(n)` over the lapse store's keys when namespaced."""
        if not self._prefix:
            await self._store.clear()
            return
        keys = [key async for key in self._store.keys() if key.startswith(self._prefix)]
        await self._store.delete_many(keys)

    async def exists(self, key: str) -> bool:
        """Whether *key* holds a live value."""
        return await self._store.has(self._prefix + key)

    async def expires_in(self, key: str) -> int | None:
        """Whole seconds before *key* expires; ``None`` if it is absent or never expires."""
        remaining = await self._store.ttl(self._prefix + key)
        if remaining is None or remaining == math.inf:
            return None
        return int(remaining)
