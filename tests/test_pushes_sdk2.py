"""Pushed task states from a real server: ``subscriptions/listen``, ``notifications/tasks``.

fastmcp-tasks pushes nothing; rxtasks' demo server can (``build_extension_server(
pushes=True)``, `serve_pushes`). Its tools here suggest polling every few seconds, far
longer than they run: a task that ends with few or no ``tasks/get`` ended on pushes. The
server counts the ``tasks/get`` it answers (its own reads, for the pushes, are not
requests). fastmcp-tasks' backend (Docket) runs on asyncio only, so these tests do too.
They assert order, content and counts, not times.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import rxtasks

pytest.importorskip("mcp_types", reason="needs mcp 2.x")
pytest.importorskip("fastmcp_tasks", reason="needs fastmcp-tasks")

import fastmcp
import fastmcp_tasks
import mcp_types
from fastmcp import Context, FastMCP
from fastmcp.client.transports import FastMCPTransport
from fastmcp.utilities.tasks import TaskConfig

from rxtasks.mcp._server_sdk2 import TaskPushes, build_extension_server, serve_pushes
from rxtasks.mcp.sdk2 import (
    ExtensionTask,
    ExtensionTasks,
    TaskNotifications,
    TasksExtension,
    session_options,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from fastmcp_tasks.models import GetTaskParams, GetTaskResult
    from mcp.client.context import ClientRequestContext
    from mcp.server.context import ServerRequestContext

pytestmark = pytest.mark.mcp2

#: The poll interval the patient server's tools suggest: no test waits that long.
PATIENT_MS = 5000


@pytest.fixture
def anyio_backend() -> str:
    """fastmcp-tasks' backend (Docket) runs on asyncio only, on the real clock."""
    return "asyncio"


class CountingTasks(fastmcp_tasks.TasksExtension):
    """fastmcp-tasks that counts the ``tasks/get`` requests it answers."""

    def __init__(self) -> None:
        super().__init__(url="memory://", minimum_check_interval=timedelta(milliseconds=10))
        self.gets = 0

    async def _handle_get(
        self, ctx: ServerRequestContext[Any, Any], params: GetTaskParams
    ) -> GetTaskResult:
        self.gets += 1
        return await super()._handle_get(ctx, params)


def patient_server() -> tuple[FastMCP[Any], CountingTasks]:
    """A pushing server whose tools suggest polling every PATIENT_MS, with its counter."""
    server: FastMCP[Any] = FastMCP("patient")
    tasks = CountingTasks()
    server.add_extension(tasks)
    serve_pushes(server)
    patient = TaskConfig(mode="required", poll_interval=timedelta(milliseconds=PATIENT_MS))

    @server.tool(task=patient)
    async def steps(ctx: Context, steps: int = 3, step_ms: int = 50) -> str:
        """Report progress every step_ms, then complete."""
        for i in range(1, steps + 1):
            await anyio.sleep(step_ms / 1000)
            await ctx.report_progress(i, steps, f"step {i}/{steps}")  # the status message
        return f"done after {steps} steps"

    @server.tool(task=patient)
    async def ask(ctx: Context) -> str | mcp_types.InputRequiredResult:
        """Ask for an answer, then report "answered" and complete with it."""
        answers: dict[str, Any] = dict(ctx.input_responses or {})
        if "answer" in answers:
            content: dict[str, Any] = getattr(answers["answer"], "content", None) or {}
            await ctx.report_progress(1, 1, "answered")
            await anyio.sleep(0.2)
            return f"answer: {content.get('answer')}"
        schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
        question = mcp_types.ElicitRequestFormParams(message="Name?", requested_schema=schema)
        return mcp_types.InputRequiredResult(
            input_requests={"answer": mcp_types.ElicitRequest(params=question)}
        )

    return server, tasks


class Pushed:
    """The task states a session was pushed (`TaskNotifications`), in order."""

    def __init__(self) -> None:
        self.notifications = TaskNotifications()
        self.states: list[ExtensionTask] = []
        self.notifications.observable.subscribe(self.states.append)

    @property
    def statuses(self) -> list[tuple[str, str | None]]:
        """Each pushed state's status and status message."""
        return [(s.status, s.status_message) for s in self.states]


@asynccontextmanager
async def extension_tasks(server: FastMCP[Any], pushed: Pushed) -> AsyncGenerator[ExtensionTasks]:
    """An mcp 2.x session to the server, discovered, with the pushes bound."""
    transport = FastMCPTransport(server)
    async with transport.connect_session(**session_options(pushed.notifications)) as session:
        await session.discover()
        yield ExtensionTasks(session, notifications=pushed.notifications)


def stepped(statuses: list[tuple[str, str | None]]) -> bool:
    """Whether a running ``steps`` task's progress is among these statuses.

    Each progress message stands 100 ms; the server reads the task every 20 ms.
    """
    return any(
        status == "working" and (message or "").startswith("step ") for status, message in statuses
    )


def texts(result: mcp_types.CallToolResult) -> list[str]:
    """The text blocks of a tool result."""
    return [c.text for c in result.content if isinstance(c, mcp_types.TextContent)]


# -- ExtensionTasks.poll in listen -----------------------------------------------------------


async def test_poll_in_listen_ends_on_pushes_without_a_get() -> None:
    """Pushed states reach the poll; the terminal push ends it, no ``tasks/get`` needed.

    Polled from the created task, the first ``tasks/get`` is due PATIENT_MS later: the
    task runs for about 300 ms, so each state after the created one was pushed.
    """
    server, counter = patient_server()
    pushed = Pushed()
    async with extension_tasks(server, pushed) as tasks:
        created = await tasks.create("steps", {"steps": 3, "step_ms": 100})
        assert created.poll_interval_ms == PATIENT_MS
        async with tasks.listen([created.task_id]):
            seen = [s async for s in rxtasks.iterate(tasks.poll(created))]
    assert counter.gets == 0
    assert seen[0] is created
    assert seen[1:] == pushed.states  # each pushed state, as it came (no duplicates)
    assert pushed.statuses[0][0] == "working"  # the state when the listen began
    assert stepped(pushed.statuses)
    assert pushed.statuses[-1] == ("completed", None)
    assert {s.task_id for s in pushed.states} == {created.task_id}
    assert texts(tasks.outcome(seen[-1])) == ["done after 3 steps"]


async def test_poll_by_id_reads_once_then_hears_pushes() -> None:
    """Polled by id, the poll reads the task once; the pushes do the rest."""
    server, counter = patient_server()
    pushed = Pushed()
    async with extension_tasks(server, pushed) as tasks:
        task_id = await tasks.start("steps", {"steps": 2, "step_ms": 50})
        async with tasks.listen([task_id]):
            seen = [s async for s in rxtasks.iterate(tasks.poll(task_id))]
    assert counter.gets == 1  # without the pushes: one more, PATIENT_MS later
    assert seen[-1].status == "completed"
    assert pushed.statuses[-1] == ("completed", None)


async def test_the_demo_server_pushes(caplog: pytest.LogCaptureFixture) -> None:
    """``build_extension_server(pushes=True)`` accepts the listen and pushes to the end."""
    pushed = Pushed()
    with caplog.at_level(logging.INFO, logger="rxtasks.mcp"):
        async with extension_tasks(build_extension_server(pushes=True), pushed) as tasks:
            task_id = await tasks.start("quick", {"steps": 2, "step_ms": 50})
            async with tasks.listen([task_id]):
                seen = [s async for s in rxtasks.iterate(tasks.poll(task_id))]
    assert seen[-1].status == "completed"
    assert pushed.statuses[-1] == ("completed", None)
    assert "pushes no task statuses" not in caplog.text


async def test_a_listen_for_many_tasks_pushes_each_once_terminal() -> None:
    """One listen for two tasks (and an unknown id): each task's states, to its end."""
    server, _ = patient_server()
    pushed = Pushed()
    async with extension_tasks(server, pushed) as tasks:
        first = await tasks.start("steps", {"steps": 1, "step_ms": 50})
        second = await tasks.start("steps", {"steps": 2, "step_ms": 50})
        async with tasks.listen([first, second, "no-such-task"]):
            finals = [
                s
                async for s in rxtasks.iterate(tasks.poll_many([first, second]))
                if s.status == "completed"
            ]
    assert {s.task_id for s in finals} == {first, second}
    for task_id in (first, second):
        mine = [s.status for s in pushed.states if s.task_id == task_id]
        assert mine[-1] == "completed"
        assert mine.count("completed") == 1
    assert {s.task_id for s in pushed.states} == {first, second}


class ObservedPushes(TaskPushes):
    """The server's listen handler, noting the streams it opens and ends."""

    def __init__(self, server: FastMCP[Any]) -> None:
        super().__init__(server)
        self.opened = 0
        self.ended: anyio.Event | None = None

    async def __call__(
        self,
        ctx: ServerRequestContext[Any, Any],
        params: mcp_types.SubscriptionsListenRequestParams,
    ) -> mcp_types.SubscriptionsListenResult:
        """Serve one stream, noting it."""
        self.opened += 1
        self.ended = anyio.Event()
        try:
            return await super().__call__(ctx, params)
        finally:
            self.ended.set()


async def test_the_stream_ends_when_the_client_leaves_listen() -> None:
    """Leaving the listen block cancels the request: the server's stream ends."""
    server, _ = patient_server()
    pushes = ObservedPushes(server)
    serve_pushes(server, pushes)  # in place of the one patient_server serves
    pushed = Pushed()
    async with extension_tasks(server, pushed) as tasks:
        task_id = await tasks.start("steps", {"steps": 1, "step_ms": 50})
        async with tasks.listen([task_id]):
            seen = [s async for s in rxtasks.iterate(tasks.poll(task_id))]
            assert pushes.ended is not None
            assert not pushes.ended.is_set()  # the task is over; the stream stays open
        with anyio.fail_after(5):  # a guard against a hang, not a measure
            await pushes.ended.wait()
        assert (await tasks.get_task(task_id)).status == "completed"  # the session lives
    assert pushes.opened == 1
    assert seen[-1].status == "completed"


# -- TasksExtension ------------------------------------------------------------------------


async def test_call_tool_returns_on_the_terminal_push() -> None:
    """``call_tool`` returns the result once pushed, without one ``tasks/get``."""
    server, counter = patient_server()
    extension = TasksExtension()
    updates: list[ExtensionTask] = []
    extension.updates.subscribe(updates.append)
    async with fastmcp.Client(FastMCPTransport(server), extensions=[extension]) as client:
        result = await client.call_tool("steps", {"steps": 3, "step_ms": 100})
    assert result.data == "done after 3 steps"
    assert counter.gets == 0
    statuses = [(s.status, s.status_message) for s in updates]
    assert statuses[0] == ("working", None)  # the created task
    assert stepped(statuses)  # pushed: no tasks/get went out
    assert statuses[-1] == ("completed", None)


async def test_call_tool_answers_input_asked_in_a_push() -> None:
    """``input_required`` pushed: answered with ``tasks/update``; the rest pushed too."""
    server, counter = patient_server()
    extension = TasksExtension()
    updates: list[ExtensionTask] = []
    extension.updates.subscribe(updates.append)
    questions: list[str] = []

    async def answer(
        context: ClientRequestContext, params: mcp_types.ElicitRequestParams
    ) -> mcp_types.ElicitResult:
        questions.append(params.message)
        return mcp_types.ElicitResult(action="accept", content={"answer": "42"})

    transport = FastMCPTransport(server)
    async with transport.connect_session(
        **extension.session_options(), elicitation_callback=answer
    ) as session:
        await session.discover()
        result = await extension.call_tool(session, "ask")
    assert texts(result) == ["answer: 42"]
    assert questions == ["Name?"]
    assert counter.gets == 0
    statuses = [(s.status, s.status_message) for s in updates]
    assert statuses[-2:] == [("working", "answered"), ("completed", None)]
    assert "input_required" in [status for status, _ in statuses]
