"""What a session and a renewed session's old ID look like in the store, and their decoding.

A session record is JSON under a key derived from a hash of its ID::

    {"v": 1, "data": {...}, "created": t, "seen": t, "idle": s|null, "abs": s|null,
     "user": u|null, "desc": str|null}

When a session gets a new ID, its old key holds a *renewal* for a few seconds::

    {"v": 1, "renewed": "<new store key>" | null, "until": t}

``renewed`` names the session that the old ID now stands for, or is ``null`` when the old
session ended for good (a logout, another user's login): requests still in flight with the
old cookie then neither write anything nor clear the new cookie.

`decode` never raises: whatever is stored (garbage, another version, fields of the wrong
type, data nested too deep) is `None` ("no session"), logged by the caller.
"""

from __future__ import annotations

import json
import math

from typing import Any

import attrs


VERSION = 1
MAX_DEPTH = 64
"""Deepest nesting of containers accepted in stored data: deeper is a corrupt record."""


def dumps(value: Any) -> str:
    """*value* as canonical JSON (sorted keys), the form change tracking compares.

    Raises:
        TypeError: *value* is not JSON (or nested too deep for it).
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        msg = (
            "session values must be JSON-serializable "
            f"(str, int, float, bool, None, list, dict): {e}"
        )
        raise TypeError(msg) from None


def _shallow(value: object) -> bool:
    """Whether *value* nests containers no deeper than `MAX_DEPTH` (iteratively)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= MAX_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _time(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def _span(value: object) -> bool:
    return value is None or (_time(value) and value > 0)  # type: ignore[operator]


@attrs.define(eq=False)
class Record:
    """One session as stored. Times are wall-clock seconds; *idle* and *absolute* are
    lifetimes in seconds, ``None`` for no such limit.

    Attributes:
        data: The session's data (JSON values under str keys).
        created: When the session began (its absolute deadline counts from here).
        seen: When it was last used, as far as the record knows (see
            `SessionManager` for the precision).
        idle: Idle lifetime.
        absolute: Absolute lifetime.
        user: The user it is tied to (any JSON value), or ``None``.
        descriptor: What the app said about the device at login (a user agent...).
    """

    data: dict[str, Any]
    created: float
    seen: float
    idle: float | None
    absolute: float | None
    user: Any = None
    descriptor: str | None = None

    def deadline(self) -> float:
        """When the session ends if nobody uses it again."""
        ends = math.inf
        if self.idle is not None:
            ends = self.seen + self.idle
        if self.absolute is not None:
            ends = min(ends, self.created + self.absolute)
        return ends

    def absolute_end(self) -> float:
        """When the session ends whatever happens (``inf``: never)."""
        return math.inf if self.absolute is None else self.created + self.absolute

    def ended(self, now: float, *, slack: float = 0.0) -> str | None:
        """Why the session has ended at *now* (``"absolute"``, ``"idle"``), or ``None``.

        *slack* widens the idle check, for a record whose *seen* may lag behind.
        """
        if now >= self.absolute_end():
            return "absolute"
        if self.idle is not None and now >= self.seen + self.idle + slack:
            return "idle"
        return None

    def encode(self) -> str:
        """The record as stored."""
        return json.dumps(
            {
                "v": VERSION,
                "data": self.data,
                "created": self.created,
                "seen": self.seen,
                "idle": self.idle,
                "abs": self.absolute,
                "user": self.user,
                "desc": self.descriptor,
            },
            separators=(",", ":"),
        )


@attrs.frozen
class Renewal:
    """What an old ID's key holds for a short while after the session got a new ID.

    Attributes:
        target: The store key of the session the old ID stands for, or ``None`` if the
            old session ended for good.
        until: When the grace ends (checked on read: a store may keep it longer).
    """

    target: str | None
    until: float

    def encode(self) -> str:
        """The renewal as stored."""
        fields = {"v": VERSION, "renewed": self.target, "until": self.until}
        return json.dumps(fields, separators=(",", ":"))


def decode(raw: object) -> Record | Renewal | None:  # noqa: PLR0911 -- one per shape
    """The record or renewal stored as *raw*, or ``None`` if it is not one. Never raises.

    Runtime complexity: `O(size)` of *raw*.
    """
    if not isinstance(raw, (str, bytes)):
        return None
    try:
        fields = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(fields, dict) or fields.get("v") != VERSION:
        return None
    if "renewed" in fields:
        target, until = fields["renewed"], fields.get("until", math.nan)
        if (target is None or isinstance(target, str)) and _time(until):
            return Renewal(target, until)
        return None
    data: Any = fields.get("data")
    created: Any = fields.get("created")
    seen: Any = fields.get("seen")
    idle, absolute, descriptor = fields.get("idle"), fields.get("abs"), fields.get("desc")
    if not (
        isinstance(data, dict)
        and _time(created)
        and _time(seen)
        and _span(idle)
        and _span(absolute)
        and (descriptor is None or isinstance(descriptor, str))
        and _shallow(data)
        and _shallow(fields.get("user"))
    ):
        return None
    return Record(data, created, seen, idle, absolute, fields.get("user"), descriptor)
