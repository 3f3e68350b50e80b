"""The public API: what `rxtasks` exports, and how it presents itself."""

from __future__ import annotations

import inspect
import subprocess
import sys
from importlib import import_module
from importlib.util import find_spec
from types import ModuleType
from typing import Any

import pytest

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


def _public_modules() -> list[Any]:
    """Every public module this environment can import: the SDK ones where installed.

    An SDK module is marked for its SDK's session (``-m mcp1`` / ``-m mcp2``), the only
    sessions that have it.
    """
    names: list[Any] = ["rxtasks", "rxtasks.testing", "rxtasks.mcp", "rxtasks.cli"]
    if find_spec("mcp") is not None:
        if find_spec("mcp_types") is not None:
            names.append(pytest.param("rxtasks.mcp.sdk2", marks=pytest.mark.mcp2))
        else:
            names.append(pytest.param("rxtasks.mcp.sdk1", marks=pytest.mark.mcp1))
    return names


@pytest.mark.parametrize("name", _public_modules())
def test_every_public_module_declares_its_api(name: str) -> None:
    """Each public module's __all__ is sorted, unique, and names what it defines, all of it."""
    module = import_module(name)
    exported: list[str] = module.__all__
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n)), name
    assert len(set(exported)) == len(exported), name
    for member in exported:
        assert hasattr(module, member), f"{name}.{member}"
    defined = {
        attribute
        for attribute, value in vars(module).items()
        if not attribute.startswith("_")
        and attribute.isidentifier()  # not pydantic's parametrized generics ("Request[...]")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__
    }
    assert defined <= set(exported), f"{name} defines but does not export {defined - set(exported)}"
