"""MCP adapters: what `rxtasks.poll` needs, for each MCP SDK and protocol revision.

The core of rxtasks never imports an MCP SDK. This subpackage does, one module per SDK
major version (mcp 1.x and 2.x cannot share an environment):

=========================================================  ================================
You talk to the server with                                Use
=========================================================  ================================
mcp 1.23-1.30 ``ClientSession``, 2025-11-25 server          ``rxtasks.mcp.sdk1.CoreTasks``
mcp 2.x ``ClientSession``, 2025-11-25 server                ``rxtasks.mcp.sdk2.CoreTasks``
mcp 2.x ``ClientSession`` or fastmcp ``Client``, tasks      ``rxtasks.mcp.sdk2.ExtensionTasks``
extension (``io.modelcontextprotocol/tasks``, 2026-07-28)
=========================================================  ================================

Each adapter gives ``start`` (call a tool as a task), ``get_task``, ``cancel_task``, the
server's pushed statuses as ``notifications``, ``poll`` (`rxtasks.poll` wired to all of
them) and the task's outcome. Install with ``pip install "rxtasks[mcp]"`` (mcp 2.x and
fastmcp-tasks) or ``pip install "rxtasks[mcp1]"`` (mcp 1.23-1.30).

The names of the installed SDK's module are also available here: ``rxtasks.mcp.CoreTasks``.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

__all__ = ["TASKS_EXTENSION", "sdk_module"]

#: The identifier of the tasks extension (protocol 2026-07-28, SEP-2663).
TASKS_EXTENSION = "io.modelcontextprotocol/tasks"


def sdk_module() -> str:
    """Return the name of the adapter module for the installed MCP SDK.

    Raises:
        ImportError: If no MCP SDK is installed; the message says what to install.
    """
    if find_spec("mcp_types") is not None:
        return "rxtasks.mcp.sdk2"
    if find_spec("mcp") is not None:
        return "rxtasks.mcp.sdk1"
    raise ImportError(
        "rxtasks.mcp needs an MCP SDK. Install it with: pip install 'rxtasks[mcp]'"
        " (mcp 2.x and fastmcp-tasks) or pip install 'rxtasks[mcp1]' (mcp 1.23-1.30)"
    )


def __getattr__(name: str) -> Any:
    from importlib import import_module

    module = import_module(sdk_module())
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r} for this SDK"
        ) from None
