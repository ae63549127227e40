from __future__ import annotations

import sys

from collections.abc import Iterator

import pytest

from lapse import MemoryStore
from lapse.testing import ManualClock


@pytest.fixture(name="anyio_backend", params=["asyncio", "trio"])
def _anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(name="clock")
def _clock() -> ManualClock:
    return ManualClock(1000.0)


@pytest.fixture(name="store")
def _store(clock: ManualClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture(name="fast_switching")
def _fast_switching() -> Iterator[None]:
    """Switch threads as often as CPython allows, so that races show."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)
