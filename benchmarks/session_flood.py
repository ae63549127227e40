"""Sessions under a flood of one-time visitors: how many active users each eviction
policy logs out.

    python benchmarks/session_flood.py            # the full run: ~1 minute
    python benchmarks/session_flood.py --quick

A `SessionManager` on a bounded `MemoryStore` holds the sessions of logged-in users
(a session record and the user's index each: two entries per user). They come back
at their own pace: a third of them on nearly every round, the rest now and then.
Meanwhile anonymous visitors each get a session once and never return (a bot, a
crawler, a login page that stores a CSRF token), *flood* of them per user request,
and a few users log in during the flood. A user is logged out when a request finds
no session: the store evicted its record or its index.

Time runs on a fake clock, 10 seconds a round, far inside the idle timeout, so
nothing expires: every logout here is an eviction. Writes ``results/session_flood.json``
and ``results/session_flood.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import sys

from pathlib import Path
from typing import Any


RESULTS = Path(__file__).parent / "results"


class Clock:
    """A clock the run moves by hand; the manager's wall clock and the store's."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def run(
    policy: Any, capacity: int, users: int, flood: float, rounds: int, *, returning: bool
) -> dict[str, Any]:
    from lapse import MemoryStore  # noqa: PLC0415
    from lapse.sessions import SessionManager  # noqa: PLC0415

    clock = Clock()
    store = MemoryStore(eviction=policy(capacity), clock=clock)
    manager = SessionManager(store=store, clock=clock)
    rng = random.Random(7)
    # (sid, chance of a request each round); a third of the users come back every round
    active: dict[int, tuple[str, float]] = {}
    for user in range(users):
        sid = await manager.create({"user_id": user}, user=user)
        active[user] = (sid, 0.9 if user % 3 == 0 else 0.2)
    established = set(active)
    lost: set[int] = set()
    requests = 0
    next_user = users
    carry = 0.0
    bots: collections.deque[str] = collections.deque(maxlen=50)
    for _ in range(rounds):
        clock.now += 10
        for _ in range(max(1, users // 100)):  # logins during the flood
            sid = await manager.create({"user_id": next_user}, user=next_user)
            active[next_user] = (sid, 0.9 if next_user % 3 == 0 else 0.2)
            next_user += 1
        for user in list(active):
            sid, chance = active[user]
            if rng.random() >= chance:
                continue
            requests += 1
            if await manager.get(sid) is None:
                lost.add(user)
                del active[user]  # logged out: the user is gone from this run
            carry += flood
            while carry >= 1:
                carry -= 1
                bots.append(await manager.create({"csrf": "x"}))
                if returning and len(bots) == bots.maxlen:  # back once, 50 visitors later
                    await manager.get(bots.popleft())
    new = next_user - users
    return {
        "established_lost": len(lost & established) / users,
        "new_lost": len(lost - established) / new,
        "requests": requests,
    }


def _cell(result: dict[str, Any]) -> str:
    return f"{100 * result['established_lost']:.1f} % / {100 * result['new_lost']:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller store, fewer rounds")
    args = parser.parse_args()

    from lapse import LRU, S3FIFO, SIEVE, WTinyLFU  # noqa: PLC0415

    capacity, users, rounds = (2_000, 400, 15) if args.quick else (5_000, 1_000, 20)
    floods = (0, 1, 5, 20, 100)
    policies = {"LRU": LRU, "SIEVE": SIEVE, "S3FIFO": S3FIFO, "WTinyLFU": WTinyLFU}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    print(
        f"store bound {capacity} entries, {users} logged-in users (2 entries each), "
        f"{rounds} rounds; users logged out by eviction: established / new logins"
    )
    for scenario in ("one-time", "returning once"):
        print(f"anonymous visitors {scenario}")
        print(f"{'per user request':>17} " + " ".join(f"{name:>17}" for name in policies))
        for flood in floods:
            row = {
                name: asyncio.run(
                    run(policy, capacity, users, flood, rounds, returning=scenario != "one-time")
                )
                for name, policy in policies.items()
            }
            results[f"{scenario}, {flood}"] = row
            print(f"{flood:>17} " + " ".join(f"{_cell(r):>17}" for r in row.values()), flush=True)
    RESULTS.mkdir(exist_ok=True)
    meta = {"capacity": capacity, "users": users, "rounds": rounds, "python": sys.version}
    (RESULTS / "session_flood.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1) + "\n"
    )
    lines = [
        f"Store bound {capacity} entries; {users} logged-in users at the start (a session and "
        f"an index each), {max(1, users // 100)} logins a round, {rounds} rounds. Share of users "
        "logged out by eviction: established users / users who logged in during the flood.",
        "",
        "| anonymous visitors, sessions per user request | " + " | ".join(policies) + " |",
        "|---|" + "---|" * len(policies),
    ]
    lines += [
        f"| {name} | " + " | ".join(map(_cell, row.values())) + " |"
        for name, row in results.items()
    ]
    (RESULTS / "session_flood.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
