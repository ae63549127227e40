"""Print the bytes per entry of one subject holding N entries with a per-key TTL.

Run by run.py in a fresh interpreter per subject: RSS growth while the store fills,
divided by N. Keys are built before the first reading and the value is shared, so only
the store's own overhead is counted.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys

from subjects import LONG_TTL, SUBJECTS


def rss() -> int:
    with open("/proc/self/statm") as f:  # noqa: PTH123
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def main(name: str, n: int) -> float:
    keys = [f"key{i}" for i in range(n)]
    ops = SUBJECTS[name].build(n)
    gc.collect()
    before = rss()
    for key in keys:
        result = ops.set(key, 1, LONG_TTL)
        if ops.is_async:
            await result
    gc.collect()
    grown = rss() - before
    if ops.size() != n:
        msg = f"{name} holds {ops.size()} entries, not {n}"
        raise RuntimeError(msg)
    return grown / n


if __name__ == "__main__":
    print(f"{asyncio.run(main(sys.argv[1], int(sys.argv[2]))):.1f}")
