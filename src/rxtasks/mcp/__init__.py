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

from .._core._errors import RxTasksError
from ._ref import PROTOCOLS, TaskRef

__all__ = [
    "PROTOCOLS",
    "TASKS_EXTENSION",
    "TRANSIENT_CODES",
    "TaskRef",
    "is_transient",
    "sdk_module",
]

#: The identifier of the tasks extension (protocol 2026-07-28, SEP-2663).
TASKS_EXTENSION = "io.modelcontextprotocol/tasks"

#: JSON-RPC error codes worth a retry: internal error (-32603) and request timeout
#: (-32001 in mcp 2.x, HTTP's 408 in mcp 1.x). "Invalid params" (-32602, what both
#: revisions answer for an unknown task) never is, nor is -32000: the SDKs use it for a
#: closed connection (the session is gone; a retry on it fails alike), and servers for
#: errors of their own.
TRANSIENT_CODES = frozenset({-32603, -32001, 408})


def is_transient(error: BaseException) -> bool:
    """Tell whether a request's error is worth a retry: the connection's, not the task's.

    Transient: timeouts, connection errors (``OSError``, the HTTP client's transport
    errors, a stream closed under the session), and the JSON-RPC errors in
    `TRANSIENT_CODES`, read from ``error.code`` (mcp 2.x ``MCPError``) or
    ``error.error.code`` (mcp 1.x ``McpError``). Never an `rxtasks.RxTasksError`
    (`PollTimeoutError`, a task's `TaskError`...), whatever else it also is. It needs no
    SDK.

    Example:
        >>> policy = rxtasks.PollPolicy(retry=rxtasks.Retry(retry_on=rxtasks.mcp.is_transient))
    """
    if isinstance(error, RxTasksError):
        # rxtasks' own verdicts (a deadline, a task that failed or was cancelled, a bad
        # answer), even those that are also an SDK's error or a TimeoutError.
        return False
    if isinstance(error, TimeoutError | OSError):
        return True
    code = getattr(error, "code", None)
    if code is None:
        code = getattr(getattr(error, "error", None), "code", None)
    if isinstance(code, int) and not isinstance(code, bool):
        return code in TRANSIENT_CODES
    # The HTTP clients' transport errors and anyio's closed streams, by name: this module
    # imports neither SDK nor its HTTP client (httpx for mcp 1.x, httpx2 for mcp 2.x).
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"TransportError", "BrokenResourceError", "ClosedResourceError"})


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
