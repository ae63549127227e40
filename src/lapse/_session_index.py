"""The per-user index of sessions: what "log out everywhere" and "my devices" read.

One small JSON value per user, under a key derived from a hash of the user::

    {"v": 1, "sessions": {"<session store key>": [created, ends|null, descriptor|null]}}

It is also what makes a session of a user valid: a session tied to a user is accepted
only while the user's index lists it. So `SessionManager.revoke_all` needs only to take
the keys out of the index, and an index the store evicted or lost logs its user out
everywhere instead of keeping revoked sessions alive.

*ends* is the latest time the session can end (its absolute deadline, or for a session
with no absolute lifetime the idle deadline last written), so ended sessions leave the
index when it is next written, and the index itself expires with its last session.
The index holds at most `SessionManager.max_sessions_per_user` entries, so reading or
writing it is bounded whatever a user does.
"""

from __future__ import annotations

import hashlib
import json
import math

from typing import Any

import attrs


_VERSION = 1


def user_key(prefix: str, user: object) -> str:
    """The store key of *user*'s index."""
    digest = hashlib.sha256(json.dumps(user, sort_keys=True).encode()).hexdigest()
    return f"{prefix}user:{digest}"


@attrs.frozen
class Entry:
    """One session in an index.

    Attributes:
        created: When the session began.
        ends: The latest it can end (``inf``: it may live forever with activity).
        descriptor: The app's description of the device, or ``None``.
    """

    created: float
    ends: float
    descriptor: str | None = None


@attrs.define
class UserIndex:
    """The sessions of one user, by store key, oldest first."""

    sessions: dict[str, Entry] = attrs.field(factory=dict)

    def encode(self) -> str:
        """The index as stored."""
        sessions = {
            key: [e.created, None if e.ends == math.inf else e.ends, e.descriptor]
            for key, e in self.sessions.items()
        }
        return json.dumps({"v": _VERSION, "sessions": sessions}, separators=(",", ":"))

    def prune(self, now: float) -> None:
        """Forget the sessions that have ended by *now*.

        Runtime complexity: `O(s)` for *s* entries (at most the per-user cap).
        """
        self.sessions = {k: e for k, e in self.sessions.items() if e.ends > now}

    def add(self, key: str, entry: Entry, cap: int | None) -> list[str]:
        """List *key*; return the keys of the oldest sessions dropped to stay within *cap*."""
        self.sessions[key] = entry
        if cap is None or len(self.sessions) <= cap:
            return []
        oldest = sorted(self.sessions, key=lambda k: self.sessions[k].created)
        dropped = [k for k in oldest[: len(oldest) - cap] if k != key]
        for gone in dropped:
            del self.sessions[gone]
        return dropped

    def ttl(self, now: float) -> float:
        """How long the index must live: until its last session can end."""
        ends = max((e.ends for e in self.sessions.values()), default=now)
        return max(ends - now, 1e-3)


def decode_index(raw: object) -> UserIndex | None:
    """The index stored as *raw*, or ``None`` if it is missing or not one. Never raises."""
    if not isinstance(raw, (str, bytes)):
        return None
    try:
        fields: Any = json.loads(raw)
        sessions: Any = fields["sessions"] if fields.get("v") == _VERSION else None
        index = UserIndex()
        for key, (created, ends, descriptor) in sessions.items():
            if not (
                isinstance(key, str)
                and type(created) in (int, float)
                and (ends is None or type(ends) in (int, float))
                and (descriptor is None or isinstance(descriptor, str))
            ):
                return None
            index.sessions[key] = Entry(created, math.inf if ends is None else ends, descriptor)
    except (ValueError, RecursionError, TypeError, KeyError, AttributeError):
        return None
    return index
