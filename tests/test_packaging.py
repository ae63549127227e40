"""The public API: what lapse exports, its version, and what importing it costs."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

from importlib import metadata
from types import ModuleType

import lapse
import lapse.policies
import lapse.testing


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and names exactly the public, importable members."""
    assert lapse.__all__ == sorted(lapse.__all__)
    for name in lapse.__all__:
        assert getattr(lapse, name) is not None
    public = {
        name
        for name, value in vars(lapse).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    public -= {"annotations"}
    assert public == set(lapse.__all__)


def test_issue_names_are_importable() -> None:
    """The names users and docs rely on are where they were promised."""
    from lapse import LRU, TTL, Idle, MemoryStore, RemovalCause, Store  # noqa: F401, PLC0415
    from lapse.policies import EvictionPolicy, ExpiryPolicy  # noqa: F401, PLC0415
    from lapse.testing import ManualClock, StoreContract  # noqa: F401, PLC0415


def test_version_comes_from_metadata() -> None:
    """__version__ is the installed distribution's version."""
    assert lapse.__version__ == metadata.version("lapse")


def test_unknown_attribute() -> None:
    """Other missing attributes raise AttributeError as usual."""
    try:
        lapse.nope  # noqa: B018
    except AttributeError as e:
        assert "nope" in str(e)  # noqa: PT017
    else:
        raise AssertionError


def test_import_is_light() -> None:
    """import lapse loads no web framework, no redis and none of the test helpers' dependencies."""
    code = (
        "import sys, lapse; "
        "print(sorted(m for m in ('redis', 'starlette', 'fastapi', 'litestar', 'flask',"
        " 'django', 'pytest', 'hypothesis') if m in sys.modules))"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


COMPILED_MODULES = ("_engine", "_evictors", "_expiry_index", "_sync_store")


def test_the_build_is_the_one_expected() -> None:
    """The engine is compiled exactly when the runner says so: ``scripts/test-compiled``
    sets LAPSE_EXPECT_COMPILED=1 and installs the mypyc wheel; ``scripts/test`` runs the
    pure source. So neither run can test the other build by mistake."""
    expected = os.environ.get("LAPSE_EXPECT_COMPILED") == "1"
    for name in COMPILED_MODULES:
        module = importlib.import_module(f"lapse.{name}")
        compiled = not (module.__file__ or "").endswith(".py")
        assert compiled == expected, (name, module.__file__)
