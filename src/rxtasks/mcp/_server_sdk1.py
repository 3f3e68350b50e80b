"""A 2025-11-25 task server on the mcp 1.x low-level ``Server``, for tests and demos.

Tools, all run as tasks:

- ``work(steps, step_ms, interval_ms)``: reports ``step i/n`` every ``step_ms`` (each a
  ``notifications/tasks/status``), suggests ``interval_ms`` as its poll interval, then
  completes with a text result.
- ``fail(after_ms, message)``: fails with ``message``.
- ``wait_cancel(tick_ms)``: works until it is cancelled.
- ``ask(question)``: needs input (an elicitation, delivered over ``tasks/result``), then
  completes with the answer.

The SDK's task runtime (mcp 1.23-1.30) has sharp edges: ``tasks/cancel`` does not stop
the work, and work that ends after a cancel without refreshing its context crashes
``server.run``. `_finish` guards every tool against that.
"""

from __future__ import annotations

import warnings
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import anyio
from mcp import types
from mcp.client.session import ClientSession
from mcp.server.lowlevel import Server
from mcp.shared.experimental.tasks.helpers import is_terminal
from mcp.shared.experimental.tasks.in_memory_task_store import InMemoryTaskStore

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable

    from mcp.client.session import ElicitationFnT, MessageHandlerFnT
    from mcp.server.experimental.task_context import ServerTaskContext

    #: A tool's work, as the SDK's ``run_task`` takes it.
    _Work = Callable[[ServerTaskContext], Awaitable[types.CallToolResult]]

__all__ = ["build_core_server", "in_process_session"]

_interval_ms: ContextVar[int | None] = ContextVar("rxtasks_interval_ms", default=None)


class _IntervalStore(InMemoryTaskStore):
    """The SDK's in-memory store, but with a poll interval chosen per task.

    The SDK's store always suggests 500 ms. Through its public methods only, this one
    remembers the interval the tool asked for and puts it in every task it hands out.
    """

    def __init__(self) -> None:
        super().__init__()
        self._intervals: dict[str, int] = {}

    def _with_interval(self, task: types.Task) -> types.Task:
        interval = self._intervals.get(task.taskId)
        return task if interval is None else task.model_copy(update={"pollInterval": interval})

    async def create_task(
        self, metadata: types.TaskMetadata, task_id: str | None = None
    ) -> types.Task:
        task = await super().create_task(metadata, task_id)
        interval = _interval_ms.get()
        if interval is not None:
            self._intervals[task.taskId] = interval
        return self._with_interval(task)

    async def get_task(self, task_id: str) -> types.Task | None:
        task = await super().get_task(task_id)
        return None if task is None else self._with_interval(task)

    async def update_task(
        self,
        task_id: str,
        status: types.TaskStatus | None = None,
        status_message: str | None = None,
    ) -> types.Task:
        return self._with_interval(await super().update_task(task_id, status, status_message))


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


def _tool(name: str, description: str, properties: dict[str, Any]) -> types.Tool:
    return types.Tool(
        name=name,
        description=description,
        inputSchema={"type": "object", "properties": properties},
        execution=types.ToolExecution(taskSupport=types.TASK_REQUIRED),
    )


_TOOLS = [
    _tool(
        "work",
        "Reports progress every step_ms, then completes.",
        {
            "steps": {"type": "integer", "default": 3},
            "step_ms": {"type": "integer", "default": 100},
            "interval_ms": {"type": "integer", "default": 200},
        },
    ),
    _tool(
        "fail",
        "Fails with a message.",
        {"after_ms": {"type": "integer", "default": 100}, "message": {"type": "string"}},
    ),
    _tool("wait_cancel", "Works until cancelled.", {"tick_ms": {"type": "integer", "default": 50}}),
    _tool("ask", "Asks the client a question, then completes.", {"question": {"type": "string"}}),
]


async def _finish(
    task: ServerTaskContext,
    store: InMemoryTaskStore,
    work: _Work,
) -> types.CallToolResult:
    """Run the work; if the task ended from outside meanwhile (cancelled), end quietly.

    ``run_task`` completes or fails the task from its context's cached state; after an
    outside cancel that state is stale, and completing a cancelled task crashes the
    server. A message-only update refreshes the cache without changing the status.
    """
    try:
        result = await work(task)
        error: Exception | None = None
    except Exception as exc:  # noqa: BLE001 -- re-raised below unless the task already ended
        result, error = None, exc
    current = await store.get_task(task.task_id)
    if current is not None and is_terminal(current.status):
        await task.update_status(current.statusMessage or current.status, notify=False)
        return result or _text(current.status)
    if error is not None:
        raise error
    assert result is not None
    return result


def _work(
    arguments: dict[str, Any],
) -> _Work:
    steps = int(arguments.get("steps", 3))
    step_ms = int(arguments.get("step_ms", 100))

    async def work(task: ServerTaskContext) -> types.CallToolResult:
        for i in range(1, steps + 1):
            await anyio.sleep(step_ms / 1000)
            await task.update_status(f"step {i}/{steps}")
            if is_terminal(task.task.status):  # cancelled meanwhile
                return _text("stopped")
        return _text(f"done after {steps} steps")

    return work


def _fail(
    arguments: dict[str, Any],
) -> _Work:
    after_ms = int(arguments.get("after_ms", 100))
    message = str(arguments.get("message", "it broke"))

    async def work(task: ServerTaskContext) -> types.CallToolResult:
        await anyio.sleep(after_ms / 1000)
        raise RuntimeError(message)  # run_task fails the task with this message

    return work


def _wait_cancel(
    arguments: dict[str, Any],
) -> _Work:
    tick_ms = int(arguments.get("tick_ms", 50))

    async def work(task: ServerTaskContext) -> types.CallToolResult:
        tick = 0
        while not is_terminal(task.task.status):
            await anyio.sleep(tick_ms / 1000)
            tick += 1
            await task.update_status(f"tick {tick}")  # also refreshes task.task
        return _text("cancelled")

    return work


def _ask(
    arguments: dict[str, Any],
) -> _Work:
    question = str(arguments.get("question", "What is your name?"))

    async def work(task: ServerTaskContext) -> types.CallToolResult:
        await task.update_status("asking")
        answer = await task.elicit(
            message=question,
            requestedSchema={
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
            },
        )
        await task.update_status("answered")
        value = (answer.content or {}).get("answer") if answer.action == "accept" else None
        return _text(f"answer: {value}")

    return work


#: Each tool's work, made from its arguments.
_WORKS = {"work": _work, "fail": _fail, "wait_cancel": _wait_cancel, "ask": _ask}


def build_core_server(
    name: str = "rxtasks-demo-2025-11-25", *, resumable: bool = False
) -> Server[Any, Any]:
    """Build a low-level mcp 1.x server with tasks enabled and the tools above.

    Use one server per connection: the SDK's task runtime keeps one task group per
    ``Server``, and a second concurrent ``server.run`` breaks the first's task creation.

    The SDK (1.30) scopes the ids it gives tasks to the session that created them: no
    other session may get, cancel or resume them. With ``resumable`` the server names
    its tasks itself (random ids, unscoped), so that a client that crashed can pick its
    tasks up again from a new session (``rxtasks resume``); whoever has the id has the
    task, which is why the SDK deprecates it. ``rxtasks serve`` (on 127.0.0.1) does so.
    """
    server: Server[Any, Any] = Server(name)
    store = _IntervalStore()
    with warnings.catch_warnings():
        # mcp 1.28+ deprecates the experimental tasks API this server is built on.
        warnings.simplefilter("ignore", DeprecationWarning)
        server.experimental.enable_tasks(store=store)  # pyright: ignore[reportDeprecated]

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return _TOOLS

    @server.call_tool()
    async def call_tool(name: str, arguments: dict[str, Any]) -> types.CreateTaskResult:
        ctx = server.request_context
        ctx.experimental.validate_task_mode(types.TASK_REQUIRED)
        make = _WORKS.get(name)
        if make is None:
            raise ValueError(f"unknown tool {name!r}")
        work = make(arguments)
        interval = int(arguments.get("interval_ms", 200)) if name == "work" else None

        async def guarded(task: ServerTaskContext) -> types.CallToolResult:
            return await _finish(task, store, work)

        token = _interval_ms.set(interval)
        try:
            if not resumable:
                created: types.CreateTaskResult = await ctx.experimental.run_task(guarded)
                return created
            with warnings.catch_warnings():  # an explicit id: deprecated, on purpose here
                warnings.simplefilter("ignore", DeprecationWarning)
                named: types.CreateTaskResult = await ctx.experimental.run_task(
                    guarded, task_id=uuid4().hex
                )
                return named
        finally:
            _interval_ms.reset(token)

    return server


@asynccontextmanager
async def in_process_session(
    server: Server[Any, Any],
    *,
    message_handler: MessageHandlerFnT | None = None,
    elicitation_callback: ElicitationFnT | None = None,
) -> AsyncGenerator[ClientSession]:
    """An initialized client session to ``server``, run in this process over memory streams.

    The server runs for as long as the block, and stops with it.
    """
    from mcp.shared.memory import create_client_server_memory_streams

    async with (
        create_client_server_memory_streams() as (client_streams, server_streams),
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(lambda: server.run(*server_streams, server.create_initialization_options()))
        async with ClientSession(
            *client_streams,
            message_handler=message_handler,
            elicitation_callback=elicitation_callback,
        ) as session:
            await session.initialize()
            yield session
        tg.cancel_scope.cancel()  # the server


async def _serve_stdio() -> None:
    from mcp.server.stdio import stdio_server

    server = build_core_server()
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":  # a stdio server, for clients of other SDK versions (tests)
    anyio.run(_serve_stdio)
