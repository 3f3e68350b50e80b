"""The public API: what `rxtasks` exports, and how it presents itself."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import rxtasks


def test_all_is_sorted_and_complete() -> None:
    """__all__ lists every public name once, sorted, and each one exists."""
    assert rxtasks.__all__ == sorted(rxtasks.__all__, key=lambda n: (not n.isupper(), n))
    assert len(set(rxtasks.__all__)) == len(rxtasks.__all__)
    public = {
        name
        for name, member in vars(rxtasks).items()
        if not name.startswith("_") and not isinstance(member, ModuleType)  # rxtasks.testing
    }
    assert public == set(rxtasks.__all__)


def test_exported_members_say_rxtasks() -> None:
    """Reprs and docs say rxtasks.poll, not the private module it lives in."""
    for name in rxtasks.__all__:
        member = getattr(rxtasks, name)
        if hasattr(member, "__module__") and callable(member):
            assert member.__module__ == "rxtasks", name


def test_core_does_not_import_mcp() -> None:
    """The MCP SDK is an optional extra: importing rxtasks never imports it."""
    code = "import sys, rxtasks, rxtasks.testing; print('mcp' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "False"
