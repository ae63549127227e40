"""The session cookie: its settings, checked once, and every header that sessions send."""

from __future__ import annotations

import re

from typing import Literal

import attrs


Headers = list[tuple[bytes, bytes]]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a cookie name (RFC 6265 token)
_DOMAIN = re.compile(r"\.?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
_MAX_HEADER = 8192
_NO_STORE: Headers = [(b"cache-control", b"no-store"), (b"vary", b"Cookie")]
_PRIVATE: Headers = [(b"cache-control", b"private"), (b"vary", b"Cookie")]
HOST_PREFIX = "__Host-"


@attrs.frozen(kw_only=True)
class Cookie:
    """The session cookie's name and attributes, checked when built.

    Attributes:
        name: The cookie's name.
        secure: Send it over HTTPS only.
        http_only: Hide it from JavaScript.
        same_site: ``"lax"``, ``"strict"`` or ``"none"``.
        path: Its path.
        domain: Its domain, or ``None`` for the host only.
        persistent: Give it a ``Max-Age`` (the session's absolute lifetime) rather than
            making it a browser-session cookie.
    """

    name: str
    secure: bool
    http_only: bool
    same_site: Literal["lax", "strict", "none"]
    path: str
    domain: str | None
    persistent: bool

    def __attrs_post_init__(self) -> None:  # noqa: C901 -- one check per attribute
        for flag in ("secure", "http_only", "persistent"):
            if not isinstance(getattr(self, flag), bool):
                msg = f"{flag} must be a bool"
                raise TypeError(msg)
        if not isinstance(self.name, str) or not _TOKEN.fullmatch(self.name):
            msg = f"cookie_name {self.name!r} is not a valid cookie name"
            raise ValueError(msg)
        if not isinstance(self.path, str):
            msg = "path must be a str"
            raise TypeError(msg)
        if not self.path.startswith("/") or any(c in self.path for c in ";\r\n\t "):
            msg = f"path must start with '/' and hold no ';', spaces or line breaks: {self.path!r}"
            raise ValueError(msg)
        if self.domain is not None:
            if not isinstance(self.domain, str):
                msg = "domain must be a str or None"
                raise TypeError(msg)
            if not _DOMAIN.fullmatch(self.domain):
                msg = f"domain must be a host name (no ';', spaces or line breaks): {self.domain!r}"
                raise ValueError(msg)
        if self.same_site not in ("lax", "strict", "none"):
            msg = f"same_site must be 'lax', 'strict' or 'none', not {self.same_site!r}"
            raise ValueError(msg)
        if self.same_site == "none" and not self.secure:
            msg = "same_site='none' requires secure=True (browsers refuse it otherwise)"
            raise ValueError(msg)
        if self.name.startswith(HOST_PREFIX) and (
            not self.secure or self.path != "/" or self.domain is not None
        ):
            msg = "a __Host- cookie needs secure=True, path='/' and domain=None"
            raise ValueError(msg)
        if self.name.startswith("__Secure-") and not self.secure:
            msg = "a __Secure- cookie needs secure=True"
            raise ValueError(msg)

    def _attributes(self) -> str:
        parts = [f"Path={self.path}"]
        if self.domain is not None:
            parts.append(f"Domain={self.domain}")
        if self.http_only:
            parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        parts.append(f"SameSite={self.same_site.capitalize()}")
        return "; ".join(parts)

    def set_headers(self, sid: str, lifetime: float | None) -> Headers:
        """Headers that set the cookie to *sid*: ``Set-Cookie``, ``no-store``, ``Vary``.

        *lifetime* is the session's remaining absolute lifetime (``None``: none), the
        cookie's ``Max-Age`` when the cookie is persistent.
        """
        max_age = ""
        if self.persistent and lifetime is not None:
            max_age = f"; Max-Age={max(round(lifetime), 1)}"
        cookie = f"{self.name}={sid}{max_age}; {self._attributes()}"
        return [(b"set-cookie", cookie.encode()), *_NO_STORE]

    def clear_headers(self) -> Headers:
        """Headers that clear the cookie, with the Path and Domain it was set with."""
        cookie = f"{self.name}=; Max-Age=0; Expires={_EPOCH}; {self._attributes()}"
        return [(b"set-cookie", cookie.encode()), *_NO_STORE]

    def values(self, headers: Headers) -> list[str]:
        """Every value of the cookie in a request's ``Cookie`` headers, in order."""
        name = self.name
        found = []
        for header, value in headers:
            if header.lower() != b"cookie" or len(value) > _MAX_HEADER:
                continue
            for part in value.decode("latin-1").split(";"):
                cookie, _, sid = part.strip().partition("=")
                if cookie == name:
                    found.append(sid)
        return found


def private_headers() -> Headers:
    """Headers for a response that read the session without changing its cookie."""
    return list(_PRIVATE)


def _cache_control(app: bytes | None, ours: bytes) -> bytes:
    """The Cache-Control of a response: *ours*, or the app's if that is as strict."""
    if ours == b"no-store" or app is None:
        return ours
    directives = [d.strip() for d in app.split(b",") if d.strip()]
    lowered = [d.lower() for d in directives]
    if b"no-store" in lowered or b"private" in lowered:
        return app
    kept = [d for d, low in zip(directives, lowered, strict=True) if low != b"public"]
    return b", ".join([b"private", *kept])


def merge(headers: Headers, extra: Headers) -> Headers:
    """A response's *headers* with sessions' *extra* ones: Cache-Control made at least as
    strict as ours, Vary extended, Set-Cookie added."""
    if not extra:
        return headers
    ours = dict(extra)
    out: Headers = []
    app_cache: bytes | None = None
    vary_done = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"cache-control" and b"cache-control" in ours:
            app_cache = value if app_cache is None else app_cache + b", " + value
            continue
        if lower == b"vary" and b"vary" in ours:
            vary_done = True
            if b"cookie" not in value.lower() and value.strip() != b"*":
                value = value + b", Cookie"  # noqa: PLW2901 -- the header as sent
        out.append((name, value))
    for name, value in extra:
        if name == b"cache-control":
            out.append((name, _cache_control(app_cache, value)))
        elif not (name == b"vary" and vary_done):
            out.append((name, value))
    return out
