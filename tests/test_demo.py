"""The README's demo runs and shows what it promises, on a manual clock."""

from __future__ import annotations

import importlib.util

from pathlib import Path

import pytest

from lapse.testing import ManualClock


pytestmark = pytest.mark.anyio

DEMO = Path(__file__).parent.parent / "examples" / "demo.py"


async def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    """TTL expiry, idle, LRU eviction, incr and the stats all show up in the output."""
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    assert spec is not None
    assert spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    clock = ManualClock()
    await demo.run(clock=clock, sleep=clock.advance)
    out = capsys.readouterr().out
    assert "0.5 s later: get('otp') = None" in out
    assert "on_remove: 'user:1' = {'name': 'Alice'} (evicted)" in out
    assert "get('hits') = 3" in out
    assert "len(store) = 0; purge_expired() removed 3" in out
    assert "hits=3 misses=1 sets=8 evictions=2 expirations=4 hit_ratio=0.75" in out
    assert clock.now == 1.5
