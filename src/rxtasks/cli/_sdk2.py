"""The commands on mcp 2.x: the tasks extension (fastmcp-tasks), and 2025-11-25 servers.

``demo`` serves `rxtasks.mcp._server_sdk2` in process (FastMCP with fastmcp-tasks, whose
task backend runs on asyncio only). ``watch`` talks Streamable HTTP to a server that
declares the tasks extension or, through `rxtasks.mcp.sdk2.CoreTasks`, 2025-11-25 tasks.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx2
import mcp_types
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from pydantic import ValidationError

from .._core._errors import InvalidResultError, TaskCancelledError, TaskError
from ..mcp import TASKS_EXTENSION, is_transient
from ..mcp.sdk2 import (
    CoreTasks,
    ExtensionTask,
    ExtensionTasks,
    TaskNotifications,
    demo_server,
    session_options,
)
from ._run import (
    DEMO_ANSWER,
    CommandError,
    DemoOptions,
    Options,
    Outcome,
    Reading,
    ServeOptions,
    State,
    WatchOptions,
    WatchProgress,
    demo_batch,
    explain_task_error,
    leaves,
    run_demo,
    run_watch,
    where,
)
from ._serve import serve_app
from ._view import TaskView

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from rich.console import Console

    from ..mcp._common import TaskAdapter

__all__ = [
    "BACKENDS",
    "BACKENDS_WHY",
    "NOISY_LOGGERS",
    "SKIP_FINALIZATION",
    "demo",
    "explain",
    "serve",
    "watch",
]

BACKENDS = {"demo": ("asyncio",), "watch": ("asyncio", "trio"), "serve": ("asyncio",)}
BACKENDS_WHY = {
    "demo": "the in-process tasks-extension server (fastmcp-tasks) runs on asyncio only",
    "watch": "",
    "serve": "the tasks-extension server (fastmcp-tasks) runs on asyncio only",
}

#: Commands after which `rxtasks.cli.run` ends the process without finalizing: the
#: demo's in-process server leaves native (Tokio) threads that may call into Python.
SKIP_FINALIZATION = ("demo", "serve")

#: Loggers the commands silence unless --verbose: the in-process server logs every
#: task's failure with its traceback (the demo's `fail` fails on purpose), its worker
#: chatters, and the HTTP client logs closed streams.
NOISY_LOGGERS = ("fastmcp", "fastmcp_tasks", "docket", "mcp", "httpx2")


#: The largest SSE event watch reads (the SDK's default is 1 MiB).
_MAX_EVENT_BYTES = 64 * 1024 * 1024


def _text(result: mcp_types.CallToolResult) -> str:
    texts = [c.text for c in result.content if isinstance(c, mcp_types.TextContent)]
    return " ".join(texts) or "(no text)"


def _question(request: Any) -> str | None:
    """Return the question of an input request, if it is an elicitation."""
    try:
        return mcp_types.ElicitRequest.model_validate(request).params.message
    except ValidationError:
        return None


def _extension_reading(tasks: ExtensionTasks) -> Reading[ExtensionTask]:
    """How the tasks extension's states read (their outcome is inlined)."""

    def state(task: ExtensionTask) -> State:
        message = None if task.status_message is None else str(task.status_message)
        if message is None and isinstance(task.input_requests, dict) and task.input_requests:
            # fastmcp-tasks gives input_required no message: show what is asked.
            asked = _question(next(iter(task.input_requests.values())))
            message = f"asks: {asked}" if asked else "needs input"
        return State(task.status, message)

    async def respond(task_id: str, task: ExtensionTask) -> None:
        answer = mcp_types.ElicitResult(action="accept", content={"answer": DEMO_ANSWER})
        new = tasks.new_input_requests(task)
        if new:
            await tasks.update(task_id, dict.fromkeys(new, answer))

    async def outcome(_: str, final: ExtensionTask) -> Outcome:
        try:
            result = tasks.outcome(final)
        except TaskCancelledError:
            return Outcome("cancelled", final.status_message or "cancelled")
        except TaskError as exc:
            return Outcome(exc.status, str(exc))
        return Outcome("completed", _text(result), tool_error=bool(result.is_error))

    return Reading(state=state, outcome=outcome, respond=respond, immediate=_immediate)


def _core_reading(tasks: CoreTasks) -> Reading[mcp_types.Task]:
    """How 2025-11-25 states read from mcp 2.x (input is not answered: it needs tasks/result)."""

    def state(task: mcp_types.Task) -> State:
        pushed = isinstance(task, mcp_types.TaskStatusNotificationParams)
        message = None if task.status_message is None else str(task.status_message)
        return State(task.status, message, pushed=pushed)

    async def respond(_task_id: str, _task: mcp_types.Task) -> None:
        """Nothing: answering needs ``tasks/result`` and an elicitation callback."""

    async def outcome(task_id: str, final: mcp_types.Task) -> Outcome:
        # The final status decides, whatever tasks/result would answer.
        if final.status == "completed":
            try:
                result = await tasks.result(task_id)
            except MCPError as exc:
                if is_transient(exc):
                    raise  # the server, not the task: exit 2
                # tasks/result carries the request's own error: the tool call failed.
                why = f"tasks/result answered an error: {exc.message} ({exc.code})"
                return Outcome("failed", why)
            return Outcome("completed", _text(result), tool_error=bool(result.is_error))
        return Outcome(final.status, str(final.status_message or final.status))

    return Reading(state=state, outcome=outcome, respond=respond, immediate=_immediate)


def _immediate(result: object) -> Outcome:
    """What a tool answered at once: its text, and whether it is a tool error."""
    if isinstance(result, mcp_types.CallToolResult):
        return Outcome("completed", _text(result), tool_error=bool(result.is_error))
    return Outcome("completed", f"(an answer of another kind: {type(result).__name__})", True)


# -- demo ----------------------------------------------------------------------------------


async def demo(options: DemoOptions, console: Console) -> int:
    """Run the demo's batch on an in-process tasks-extension server."""
    from fastmcp.client.transports import FastMCPTransport

    server = demo_server()
    notifications = TaskNotifications()
    view = TaskView(console, live=False if options.plain else None)
    transport = FastMCPTransport(server)
    async with transport.connect_session(**session_options(notifications)) as session:
        await session.discover()
        tasks = ExtensionTasks(session, notifications=notifications)
        await run_demo(tasks, _extension_reading(tasks), demo_batch(options), view)
    return 0


# -- serve ---------------------------------------------------------------------------------


async def serve(options: ServeOptions, console: Console) -> int:
    """Serve the demo's tasks-extension server over Streamable HTTP on 127.0.0.1."""
    app = demo_server().http_app(path="/mcp")
    return await serve_app(
        app,
        options=options,
        console=console,
        what="the tasks extension (io.modelcontextprotocol/tasks; mcp 2.x, fastmcp-tasks)",
        tools=["work", "quick", "slow", "fail", "wait_cancel", "ask", "echo (no task)"],
        example="--tool work --args '{\"steps\": 5}'",
        lifespan="on",  # the app's startup starts the task backend
    )


# -- watch ---------------------------------------------------------------------------------


@asynccontextmanager
async def _connect(
    url: str, timeout_ms: float
) -> AsyncGenerator[tuple[TaskAdapter[Any], Reading[Any]]]:
    """Open a session to ``url``; the adapter for the server's kind of tasks, and its reading."""
    from mcp.client.streamable_http import streamable_http_client

    notifications = TaskNotifications()
    # The SDK refuses an SSE event over 1 MiB, which ends the session: a server's long
    # status message is cut by the view instead (still bounded, against a runaway server).
    async with streamable_http_client(url, max_sse_event_size=_MAX_EVENT_BYTES) as (read, write):
        # Our own dispatcher: CoreTasks creates 2025-11-25 tasks through it (see its docs).
        dispatcher = JSONRPCDispatcher(read, write)
        async with ClientSession(
            dispatcher=dispatcher, **session_options(notifications)
        ) as session:
            try:
                await session.discover()  # 2026-07-28, where the extension lives
            except MCPError:
                await session.initialize()  # a server of an earlier revision
            capabilities = session.server_capabilities
            if capabilities is not None and TASKS_EXTENSION in (capabilities.extensions or {}):
                extension = ExtensionTasks(
                    session, notifications=notifications, read_timeout_ms=timeout_ms
                )
                yield extension, _extension_reading(extension)
            elif capabilities is not None and capabilities.tasks is not None:
                tasks = CoreTasks(
                    session,
                    notifications=notifications,
                    dispatcher=dispatcher,
                    read_timeout_ms=timeout_ms,
                )
                yield tasks, _core_reading(tasks)
            else:
                raise CommandError(
                    f"{url} supports no tasks: it declares neither the tasks extension"
                    f" ({TASKS_EXTENSION}) nor 2025-11-25 tasks"
                )


async def watch(options: WatchOptions, console: Console, progress: WatchProgress) -> int:
    """Call the tool as a task on the server at ``options.url`` and watch it to its end."""
    view = TaskView(console, live=False if options.plain else None)
    async with _connect(options.url, options.request_timeout_ms) as (tasks, reading):
        return await run_watch(tasks, reading, options, view, progress)


def explain(error: BaseException, options: Options) -> str | None:
    """Return the one-line explanation of an error the user can act on, else None."""
    server = where(options)
    for leaf in leaves(error):
        shared = explain_task_error(leaf, options)
        if shared is not None:
            return shared
        if isinstance(leaf, httpx2.ConnectError | httpx2.ConnectTimeout):
            return f"cannot connect to {server}: {leaf}"
        if isinstance(leaf, httpx2.HTTPStatusError):
            return f"{server} answered HTTP {leaf.response.status_code}; is it an MCP endpoint?"
        if isinstance(leaf, httpx2.HTTPError):
            return f"the connection to {server} failed: {leaf!r}"
        unusable = _unusable(leaf, server)
        if unusable is not None:
            return unusable
    return None


def _unusable(leaf: BaseException, server: str) -> str | None:
    """Say why the server could not be used, if ``leaf`` tells."""
    if isinstance(leaf, MCPError):
        if leaf.code == mcp_types.REQUEST_TIMEOUT:
            return f"no answer from {server}: {leaf.message}"
        return f"{server} answered an error: {leaf.message} (code {leaf.code})"
    if isinstance(leaf, InvalidResultError):
        return f"{server} cannot be used: {leaf}"
    if isinstance(leaf, ValidationError):
        return f"{server} answered a malformed result: {leaf.error_count()} problem(s)"
    if isinstance(leaf, TimeoutError):
        return f"no answer from {server} in time"
    return None
