"""The commands on mcp 1.23-1.30: tasks of protocol revision 2025-11-25.

``demo`` serves `rxtasks.mcp._server_sdk1` in process over the SDK's memory streams
(asyncio or trio). ``watch`` talks Streamable HTTP to a server with 2025-11-25 tasks.
"""

from __future__ import annotations

from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from mcp import types
from mcp.client.session import ClientSession
from mcp.shared.exceptions import McpError

from .._core._errors import InvalidResultError, TaskError
from ..mcp import is_transient
from ..mcp.sdk1 import CoreTasks, TaskNotifications, demo_server
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

    from anyio.abc import TaskGroup
    from mcp.shared.context import RequestContext
    from rich.console import Console


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

BACKENDS = {"demo": ("asyncio", "trio"), "watch": ("asyncio", "trio"), "serve": ("asyncio",)}
BACKENDS_WHY = {"demo": "", "watch": "", "serve": "it serves HTTP with uvicorn, on asyncio"}

#: Commands after which `rxtasks.cli.run` ends the process without finalizing: none here.
SKIP_FINALIZATION: tuple[str, ...] = ()

#: Loggers the commands silence unless --verbose: closed SSE streams, and a warning
#: (on the root logger) for each answer to a task's question.
NOISY_LOGGERS = ("mcp",)

# The demo's server has one `work` tool; the poll interval it suggests is an argument.
_TOOL_FOR: dict[str, tuple[str, dict[str, Any]]] = {
    "work": ("work", {"interval_ms": 250}),
    "quick": ("work", {"interval_ms": 100}),
    "slow": ("work", {"interval_ms": 750}),
}


def _text(result: types.CallToolResult) -> str:
    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    return " ".join(texts) or "(no text)"


async def _answer(
    context: RequestContext[ClientSession, Any], params: types.ElicitRequestParams
) -> types.ElicitResult:
    """The demo's elicitation callback: every question gets `DEMO_ANSWER`."""
    return types.ElicitResult(action="accept", content={"answer": DEMO_ANSWER})


def _reading(tasks: CoreTasks, task_group: TaskGroup) -> Reading[types.Task]:
    """How 2025-11-25 task states read from mcp 1.x.

    Args:
        tasks: The adapter.
        task_group: Where the ``tasks/result`` calls that deliver a task's questions run.
    """
    asked: set[str] = set()

    def state(task: types.Task) -> State:
        pushed = isinstance(task, types.TaskStatusNotificationParams)
        message = task.statusMessage
        return State(task.status, None if message is None else str(message), pushed=pushed)

    async def respond(task_id: str, _: types.Task) -> None:
        # The server delivers its questions over tasks/result, which blocks until the
        # task ends: call it once, on the transition (MCP Inspector #1174), in the
        # background; the session's elicitation callback answers.
        if task_id not in asked:
            asked.add(task_id)
            task_group.start_soon(_result, tasks, task_id)

    async def outcome(task_id: str, final: types.Task) -> Outcome:
        # The final status decides, whatever tasks/result answers: a failed task whose
        # result has content still failed.
        if final.status == "completed":
            try:
                result = await tasks.result(task_id)
            except McpError as exc:
                if is_transient(exc):
                    raise  # the server, not the task: exit 2
                # tasks/result carries the request's own error: the tool call failed.
                why = f"tasks/result answered an error: {exc.error.message} ({exc.error.code})"
                return Outcome("failed", why)
            return Outcome("completed", _text(result), tool_error=bool(result.isError))
        if final.statusMessage:
            return Outcome(final.status, str(final.statusMessage))
        return Outcome(final.status, await _why(tasks, task_id) or final.status)

    return Reading(state=state, outcome=outcome, respond=respond, immediate=_immediate)


def _immediate(result: object) -> Outcome:
    assert isinstance(result, types.CallToolResult)
    return Outcome("completed", _text(result), tool_error=bool(result.isError))


async def _result(tasks: CoreTasks, task_id: str) -> None:
    with suppress(TaskError):  # the poll shows how the task ended
        await tasks.result(task_id)


async def _why(tasks: CoreTasks, task_id: str) -> str | None:
    """The text of a failed task's stored result, if the server gives one."""
    try:
        with anyio.fail_after((tasks.read_timeout_ms or 10_000) / 1000):
            result = await tasks.result(task_id)
    except (TaskError, McpError, TimeoutError):
        return None
    return _text(result)


# -- demo ----------------------------------------------------------------------------------


async def demo(options: DemoOptions, console: Console) -> int:
    """Run the demo's batch on an in-process 2025-11-25 task server."""
    from ..mcp._server_sdk1 import in_process_session

    notifications = TaskNotifications()
    view = TaskView(console, live=False if options.plain else None)
    async with (
        in_process_session(
            demo_server(),
            message_handler=notifications.message_handler,
            elicitation_callback=_answer,
        ) as session,
        anyio.create_task_group() as results,
    ):
        tasks = CoreTasks(session, notifications=notifications)
        await run_demo(tasks, _reading(tasks, results), demo_batch(options, _TOOL_FOR), view)
    return 0


# -- serve ---------------------------------------------------------------------------------


class _Endpoint:
    """The session manager as a raw ASGI endpoint: Starlette calls an object as an app.

    (A plain function would be taken for a request handler that answers GET only.)
    """

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.manager.handle_request(scope, receive, send)


async def serve(options: ServeOptions, console: Console) -> int:
    """Serve the demo's 2025-11-25 task server over Streamable HTTP on 127.0.0.1."""
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Route

    from ..mcp._server_sdk1 import build_core_server

    # Task ids any session may use: a watch that crashed can be resumed by another.
    manager = StreamableHTTPSessionManager(app=build_core_server(resumable=True))
    app = Starlette(routes=[Route("/mcp", endpoint=_Endpoint(manager))])
    return await serve_app(
        app,
        options=options,
        console=console,
        what="2025-11-25 tasks (mcp 1.x)",
        tools=["work", "fail", "wait_cancel", "ask"],
        example='--tool work --args \'{"steps": 5, "step_ms": 400}\'',
        around=manager.run,
    )


# -- watch ---------------------------------------------------------------------------------


@asynccontextmanager
async def _connect(
    url: str, timeout_ms: float
) -> AsyncGenerator[tuple[CoreTasks, Reading[types.Task]]]:
    """Open a session to the 2025-11-25 task server at ``url``."""
    from mcp.client.streamable_http import streamable_http_client

    notifications = TaskNotifications()
    async with (
        streamable_http_client(url) as (read, write, _),
        ClientSession(read, write, message_handler=notifications.message_handler) as session,
    ):
        initialized = await session.initialize()
        if initialized.capabilities.tasks is None:
            raise CommandError(
                f"{url} declares no 2025-11-25 tasks (protocol {initialized.protocolVersion});"
                ' for servers with the tasks extension install "rxtasks[mcp]" (mcp 2.x;'
                ' from a checkout: pip install ".[mcp]")'
            )
        tasks = CoreTasks(session, notifications=notifications, read_timeout_ms=timeout_ms)
        async with anyio.create_task_group() as tg:
            yield tasks, _reading(tasks, tg)
            tg.cancel_scope.cancel()


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
        if isinstance(leaf, httpx.ConnectError | httpx.ConnectTimeout):
            return f"cannot connect to {server}: {leaf}"
        if isinstance(leaf, httpx.HTTPStatusError):
            return f"{server} answered HTTP {leaf.response.status_code}; is it an MCP endpoint?"
        if isinstance(leaf, httpx.HTTPError):
            return f"the connection to {server} failed: {leaf!r}"
        if isinstance(leaf, McpError):
            if leaf.error.code == 408:  # mcp 1.x times a request out with HTTP's code
                return f"no answer from {server}: {leaf.error.message}"
            return f"{server} answered an error: {leaf.error.message} (code {leaf.error.code})"
        if isinstance(leaf, InvalidResultError):
            return f"{server} cannot be used: {leaf}"
        if isinstance(leaf, TimeoutError):
            return f"no answer from {server} in time"
    return None
