"""rxtasks.mcp.sdk2.TasksExtension against real fastmcp-tasks servers.

The extension resolves a tasked ``tools/call`` inside the SDK's own ``call_tool``. The
in-process tests talk to a fresh fastmcp-tasks server through a ``ClientSession``
(fastmcp's ``FastMCPTransport``) or fastmcp's ``Client``; fastmcp-tasks' backend (Docket)
runs on asyncio only, so they run on asyncio. The SDK's ``mcp.client.Client`` is driven on
asyncio and on trio against the same servers over Streamable HTTP, served by a thread with
its own asyncio loop. The server-side hooks (a ``tasks/get`` that fails once) live in the
server's process, in the test.

These tests talk to real servers on real clocks: they assert order and content, not times.
The server's view of a task (``tasks/get`` after the call) says whether ``tasks/cancel``
went out.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import pytest

import rxtasks
from rxtasks import (
    PollPolicy,
    PollTimeoutError,
    Retry,
    TaskCancelledError,
    TaskFailedError,
    TaskInputError,
)

pytest.importorskip("mcp_types", reason="needs mcp 2.x")
pytest.importorskip("fastmcp_tasks", reason="needs fastmcp-tasks")

import fastmcp
import fastmcp_tasks
import mcp_types
from fastmcp import FastMCP
from fastmcp.client.transports import FastMCPTransport
from fastmcp.utilities.tasks import TaskConfig
from mcp.client import Client
from mcp.shared.exceptions import MCPError

from rxtasks.mcp import is_transient
from rxtasks.mcp._server_sdk2 import build_extension_server
from rxtasks.mcp.sdk2 import ExtensionTask, ExtensionTasks, TasksExtension

from ._cli import serve_http

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Iterator

    from fastmcp_tasks.models import GetTaskParams, GetTaskResult
    from mcp.client.context import ClientRequestContext
    from mcp.client.session import ClientSession
    from mcp.server.context import ServerRequestContext

pytestmark = pytest.mark.mcp2

E = TypeVar("E", bound=BaseException)


@pytest.fixture
def anyio_backend() -> str:
    """fastmcp-tasks' backend (Docket) runs on asyncio only, on the real clock."""
    return "asyncio"


# -- helpers -------------------------------------------------------------------------------


class Answers:
    """An elicitation callback that answers 42 and notes each question."""

    def __init__(self) -> None:
        self.questions: list[str] = []

    async def __call__(
        self, context: ClientRequestContext, params: mcp_types.ElicitRequestParams
    ) -> mcp_types.ElicitResult:
        """Answer one question."""
        self.questions.append(params.message)
        return mcp_types.ElicitResult(action="accept", content={"answer": "42"})


class Seen:
    """The states an extension reported (`TasksExtension.updates`), and a wait for one."""

    def __init__(self, extension: TasksExtension) -> None:
        self.states: list[ExtensionTask] = []
        self._changed = anyio.Event()
        extension.updates.subscribe(self._note)

    def _note(self, state: ExtensionTask) -> None:
        self.states.append(state)
        self._changed.set()
        self._changed = anyio.Event()

    async def until(self, wanted: Callable[[ExtensionTask], bool]) -> ExtensionTask:
        """Return the first state reported that is ``wanted``, waiting for it if need be."""
        while True:
            for state in self.states:
                if wanted(state):
                    return state
            await self._changed.wait()

    @property
    def statuses(self) -> list[tuple[str, str | None]]:
        """Each state's status and status message, in order."""
        return [(s.status, s.status_message) for s in self.states]

    @property
    def task_ids(self) -> list[str]:
        """The tasks reported, in the order of their first state."""
        return list(dict.fromkeys(s.task_id for s in self.states))


def texts(result: mcp_types.CallToolResult) -> list[str]:
    """The text blocks of a tool result."""
    return [c.text for c in result.content if isinstance(c, mcp_types.TextContent)]


def also(error: object, kind: type[E]) -> E:
    """The same error, as the other class it also is (type checkers see no such class)."""
    assert isinstance(error, kind), f"{type(error).__mro__} is no {kind.__name__}"
    return error


def ticking(state: ExtensionTask) -> bool:
    """A polled state of a running tool: it reports its progress (the created state does not)."""
    return state.status == "working" and state.status_message is not None


@asynccontextmanager
async def session_to(
    extension: TasksExtension, server: FastMCP[Any] | None = None, **options: Any
) -> AsyncGenerator[ClientSession]:
    """A ClientSession to a fresh in-process server (the demo's by default), discovered."""
    transport = FastMCPTransport(server or build_extension_server())
    async with transport.connect_session(**extension.session_options(), **options) as session:
        await session.discover()  # 2026-07-28: where the extension's claim applies
        yield session


async def status_of(session: ClientSession, task_id: str) -> str:
    """What the server says of a task now."""
    return (await ExtensionTasks(session).get_task(task_id)).status


class FlakyTasks(fastmcp_tasks.TasksExtension):
    """fastmcp-tasks whose first ``failures`` tasks/get fail with -32603 (transient)."""

    def __init__(self, failures: int) -> None:
        super().__init__(url="memory://", minimum_check_interval=timedelta(milliseconds=10))
        self.failures = failures
        self.gets = 0

    async def _handle_get(
        self, ctx: ServerRequestContext[Any, Any], params: GetTaskParams
    ) -> GetTaskResult:
        self.gets += 1
        if self.gets <= self.failures:
            raise MCPError(code=mcp_types.INTERNAL_ERROR, message="busy, try again")
        return await super()._handle_get(ctx, params)


def flaky_server(failures: int) -> tuple[FastMCP[Any], FlakyTasks]:
    """A tasks server whose ``quick`` tool runs as a task, with a flaky tasks/get."""
    server: FastMCP[Any] = FastMCP("flaky")
    tasks = FlakyTasks(failures)
    server.add_extension(tasks)

    @server.tool(task=TaskConfig(mode="required", poll_interval=timedelta(milliseconds=100)))
    async def quick(steps: int = 2, step_ms: int = 50) -> str:
        """Sleep ``steps`` times, then complete."""
        for _ in range(steps):
            await anyio.sleep(step_ms / 1000)
        return f"done after {steps} steps"

    return server, tasks


# -- outcomes --------------------------------------------------------------------------------


async def test_completed_returns_the_tools_result(caplog: pytest.LogCaptureFixture) -> None:
    """A tasked call returns the tool's own result; updates start from the created task.

    fastmcp-tasks pushes nothing: the subscriptions/listen is refused, logged at INFO,
    and the polls finish the job.
    """
    extension = TasksExtension()
    seen = Seen(extension)
    with caplog.at_level(logging.INFO, logger="rxtasks.mcp"):
        async with session_to(extension) as session:
            # Steps of 300 ms against polls every 100 ms: some poll sees step 1 (at
            # 100 ms a poll can come before the step's message, as it did once in CI).
            result = await extension.call_tool(session, "quick", {"steps": 2, "step_ms": 300})
    assert texts(result) == ["done after 2 steps"]
    assert result.structured_content == {"result": "done after 2 steps"}
    assert not result.is_error
    assert len(seen.task_ids) == 1
    created, *_, final = seen.states
    assert (created.status, created.poll_interval_ms) == ("working", 100)  # no tasks/get yet
    assert final.status == "completed"
    assert ("working", "step 1/2") in seen.statuses
    assert "pushes no task statuses" in caplog.text


async def test_a_tool_answered_at_once_is_returned_as_is() -> None:
    """A tool the server does not run as a task: its result, no task, no update."""
    extension = TasksExtension()
    seen = Seen(extension)
    async with session_to(extension) as session:
        result = await extension.call_tool(session, "echo", {"text": "hi"})
    assert texts(result) == ["hi"]
    assert seen.states == []


async def test_failed_raises_the_tasks_error_as_mcp_error() -> None:
    """A failed task: MCPError with its inlined JSON-RPC error, also a TaskFailedError."""
    extension = TasksExtension()
    async with session_to(extension) as session:
        with pytest.raises(MCPError) as info:
            await extension.call_tool(session, "fail", {"after_ms": 100, "message": "disk full"})
    error = info.value
    assert (error.code, error.message, error.data) == (-32603, "disk full", {"tool": "fail"})
    assert str(error) == "disk full"
    failed = also(error, TaskFailedError)
    assert isinstance(failed.final, ExtensionTask)
    assert failed.final.status == "failed"
    assert failed.task_id == failed.final.task_id


async def test_cancelled_on_the_server_raises() -> None:
    """A task cancelled by someone else while the call waits: MCPError, TaskCancelledError."""
    extension = TasksExtension()
    seen = Seen(extension)
    errors: list[MCPError] = []
    async with session_to(extension) as session:

        async def call() -> None:
            try:
                await extension.call_tool(session, "wait_cancel", {"tick_ms": 50})
            except MCPError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(call)
            await ExtensionTasks(session).cancel_task((await seen.until(ticking)).task_id)
    [error] = errors
    assert also(error, TaskCancelledError).task_id == seen.task_ids[0]
    assert error.code == mcp_types.INTERNAL_ERROR
    assert str(error) == f"task {seen.task_ids[0]} was cancelled"
    assert seen.statuses[-1][0] == "cancelled"


# -- input -----------------------------------------------------------------------------------


async def test_input_is_answered_once_through_the_elicitation_callback() -> None:
    """input_required: the client's elicitation callback, once; tasks/update; the result.

    Answered, the tool works 600 ms more: polls at its 250 ms interval see it working
    again ("answered"), and nothing asks the question a second time.
    """
    extension = TasksExtension()
    seen = Seen(extension)
    answers = Answers()
    async with session_to(extension, elicitation_callback=answers) as session:
        result = await extension.call_tool(session, "ask", {"question": "name?", "then_ms": 600})
    assert texts(result) == ["answer: 42"]
    assert answers.questions == ["name?"]
    statuses = [status for status, _ in seen.statuses]
    asked = statuses.index("input_required")
    assert ("working", "answered") in seen.statuses[asked:]
    assert statuses[-1] == "completed"


async def test_input_the_client_cannot_give_ends_the_call() -> None:
    """No elicitation callback: TaskInputError (an MCPError), and the task is cancelled."""
    extension = TasksExtension()
    seen = Seen(extension)
    async with session_to(extension) as session:
        with pytest.raises(TaskInputError) as info:
            await extension.call_tool(session, "ask", {"question": "name?"})
        task_id = info.value.task_id
        after = await status_of(session, task_id)
    error = info.value
    assert also(error, MCPError).code == mcp_types.INVALID_REQUEST  # the SDK's default answer
    assert isinstance(error.final, ExtensionTask)
    assert error.final.input_requests is not None
    assert error.request == error.final.input_requests[error.key]  # the server mints keys
    assert error.status == "input_required"
    assert "'elicitation/create' request" in str(error)
    assert "elicitation_callback answered with an error: Elicitation not supported" in str(error)
    assert seen.statuses[-1][0] == "input_required"
    assert after == "cancelled"


# -- policy ------------------------------------------------------------------------------------


async def test_a_transient_tasks_get_error_is_retried() -> None:
    """The server's first tasks/get fails (-32603); the policy's retry carries on."""
    server, hooks = flaky_server(failures=1)
    retry = Retry(attempts=2, backoff_ms=20, jitter=0, retry_on=is_transient)
    extension = TasksExtension(policy=PollPolicy(retry=retry))
    async with session_to(extension, server) as session:
        result = await extension.call_tool(session, "quick")
    assert texts(result) == ["done after 2 steps"]
    assert hooks.gets >= 2  # the failed one, then the ones that answered


async def test_a_tasks_get_error_without_retry_ends_the_call() -> None:
    """Without a retry the same error ends the call unchanged; the task is cancelled."""
    server, _ = flaky_server(failures=1)
    extension = TasksExtension()
    seen = Seen(extension)
    async with session_to(extension, server) as session:
        with pytest.raises(MCPError) as info:
            await extension.call_tool(session, "quick", {"steps": 5, "step_ms": 200})
        after = await status_of(session, seen.task_ids[0])
    assert (info.value.code, info.value.message) == (-32603, "busy, try again")
    assert not isinstance(info.value, rxtasks.RxTasksError)
    assert after == "cancelled"


async def test_the_policys_deadline() -> None:
    """timeout_ms passes: MCPError REQUEST_TIMEOUT, also a PollTimeoutError; cancelled.

    ``slow`` suggests polling every 750 ms; the deadline (300 ms) comes first, so the
    last state known is the created one.
    """
    extension = TasksExtension(policy=PollPolicy(timeout_ms=300))
    seen = Seen(extension)
    async with session_to(extension) as session:
        with pytest.raises(TimeoutError) as info:
            await extension.call_tool(session, "slow")
        after = await status_of(session, seen.task_ids[0])
    assert also(info.value, MCPError).code == mcp_types.REQUEST_TIMEOUT
    error = also(info.value, PollTimeoutError)
    assert error.timeout_ms == 300
    assert error.task_id == seen.task_ids[0]
    assert error.last_result is seen.states[0]
    assert isinstance(error.__cause__, PollTimeoutError)
    assert after == "cancelled"


async def test_the_calls_read_timeout_is_the_deadline_and_detach_keeps_the_task() -> None:
    """No policy: read_timeout_seconds is the deadline; detached, the task runs on."""
    extension = TasksExtension(detach=True)
    seen = Seen(extension)
    async with session_to(extension) as session:
        with pytest.raises(PollTimeoutError) as info:
            await extension.call_tool(session, "slow", read_timeout_seconds=0.3)
        after = await status_of(session, seen.task_ids[0])
    assert info.value.timeout_ms == 300
    assert after == "working"


# -- the caller's cancellation ----------------------------------------------------------------


@pytest.mark.parametrize(("detach", "expected"), [(False, "cancelled"), (True, "working")])
async def test_cancelling_the_caller(detach: bool, expected: str) -> None:
    """The caller is cancelled mid-task: tasks/cancel goes out, unless detached.

    The task (2 s of steps) ends by itself: the server waits for its running tasks when
    it shuts down, and fastmcp-tasks does not always stop a task cancelled late.
    """
    extension = TasksExtension(detach=detach)
    seen = Seen(extension)
    async with session_to(extension) as session:
        async with anyio.create_task_group() as tg:
            tg.start_soon(extension.call_tool, session, "work", {"steps": 8, "step_ms": 250})
            await seen.until(ticking)
            tg.cancel_scope.cancel()
        after = await status_of(session, seen.task_ids[0])
    assert after == expected
    assert seen.statuses[-1][0] == "working"  # the call heard of no end


# -- progress ----------------------------------------------------------------------------------


async def test_updates_carry_every_call_and_survive_a_failing_observer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two calls, two tasks, each from its created state to its end; a bad observer is logged."""
    extension = TasksExtension()
    seen = Seen(extension)

    def broken(_: ExtensionTask) -> None:
        raise RuntimeError("observer bug")

    extension.updates.subscribe(broken)
    with caplog.at_level(logging.ERROR, logger="rxtasks.mcp"):
        async with session_to(extension) as session:
            first = await extension.call_tool(session, "quick", {"steps": 1, "step_ms": 50})
            second = await extension.call_tool(session, "work", {"steps": 1, "step_ms": 50})
    assert texts(first) == texts(second) == ["done after 1 steps"]
    one, two = seen.task_ids
    by_task = [[s for s in seen.states if s.task_id == task] for task in (one, two)]
    assert seen.states == [*by_task[0], *by_task[1]]  # the first call's states, then the second's
    assert [states[0].poll_interval_ms for states in by_task] == [100, 250]  # created first
    assert [states[-1].status for states in by_task] == ["completed", "completed"]
    assert "an observer of TasksExtension.updates raised" in caplog.text


# -- fastmcp's Client --------------------------------------------------------------------------


async def test_fastmcp_client_uses_the_extension_passed_to_it() -> None:
    """fastmcp-tasks' own resolver is dropped for a Client given TasksExtension.

    Same server, same call: without the extension fastmcp-tasks resolves it (rxtasks
    hears nothing); with it, rxtasks follows the task, and a failed task is the
    MCPError described in TasksExtension, not fastmcp's ToolError.
    """
    server = build_extension_server()
    extension = TasksExtension()
    seen = Seen(extension)
    async with fastmcp.Client(FastMCPTransport(server)) as theirs:
        result = await theirs.call_tool("quick", {"steps": 1, "step_ms": 50})
    assert result.data == "done after 1 steps"
    assert seen.states == []

    async with fastmcp.Client(FastMCPTransport(server), extensions=[extension]) as ours:
        result = await ours.call_tool("quick", {"steps": 1, "step_ms": 50})
        assert result.data == "done after 1 steps"
        assert [s.status for s in seen.states][-1] == "completed"
        with pytest.raises(MCPError, match="disk full") as info:
            await ours.call_tool("fail", {"after_ms": 50, "message": "disk full"})
    assert also(info.value, TaskFailedError).status == "failed"
    assert len(seen.task_ids) == 2


# -- arguments -------------------------------------------------------------------------------


def test_arguments_are_checked() -> None:
    """A policy that is not a PollPolicy, a detach that is not a bool: refused by name."""
    with pytest.raises(rxtasks.ArgumentTypeError, match="`policy`"):
        TasksExtension(policy=5000)  # type: ignore[arg-type]
    with pytest.raises(rxtasks.ArgumentTypeError, match="`detach`"):
        TasksExtension(detach="yes")  # type: ignore[arg-type]


def test_the_sessions_options_declare_claim_and_bind() -> None:
    """session_options: the extension's ad, its claim of "task", notifications/tasks."""
    extension = TasksExtension()
    options = extension.session_options()
    assert options["extensions"] == {"io.modelcontextprotocol/tasks": {}}
    [claim] = options["result_claims"]["io.modelcontextprotocol/tasks"]
    assert (claim.result_type, claim.method) == ("task", "tools/call")
    assert [b.method for b in options["notification_bindings"]] == ["notifications/tasks"]


# -- mcp.client.Client, on asyncio and trio, over Streamable HTTP ------------------------------


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    """The demo server over Streamable HTTP, in a thread with its own asyncio loop."""
    app = build_extension_server().http_app(path="/mcp")
    with serve_http(app, lifespan="on") as url:  # the lifespan starts the task backend
        yield url


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    """Both backends, real clocks."""
    return str(request.param)


def test_client_outcomes(backend: str, demo_url: str) -> None:
    """Client(extensions=[...]).call_tool: completed, input answered, failed."""
    extension = TasksExtension()
    seen = Seen(extension)
    answers = Answers()
    outcomes: dict[str, object] = {}

    async def main() -> None:
        async with Client(demo_url, extensions=[extension], elicitation_callback=answers) as c:
            outcomes["quick"] = texts(await c.call_tool("quick", {"steps": 2, "step_ms": 50}))
            outcomes["ask"] = texts(await c.call_tool("ask", {"then_ms": 100}))
            with pytest.raises(TaskFailedError) as info:
                await c.call_tool("fail", {"after_ms": 50, "message": "disk full"})
            outcomes["fail"] = (also(info.value, MCPError).code, str(info.value))

    anyio.run(main, backend=backend)
    assert outcomes == {
        "quick": ["done after 2 steps"],
        "ask": ["answer: 42"],
        "fail": (-32603, "disk full"),
    }
    assert answers.questions == ["What is your name?"]
    finals = [[s for s in seen.states if s.task_id == t][-1].status for t in seen.task_ids]
    assert finals == ["completed", "completed", "failed"]


def test_client_deadline_and_cancellation(backend: str, demo_url: str) -> None:
    """The call's read_timeout_seconds is the deadline; a cancelled caller cancels the task."""
    extension = TasksExtension()
    seen = Seen(extension)
    outcomes: dict[str, object] = {}

    async def main() -> None:
        async with Client(demo_url, extensions=[extension]) as client:
            with pytest.raises(PollTimeoutError) as info:
                await client.call_tool("slow", read_timeout_seconds=0.3)
            code = also(info.value, MCPError).code
            outcomes["deadline"] = (code, await status_of(client.session, info.value.task_id))
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "work", {"steps": 8, "step_ms": 250})
                await seen.until(ticking)
                tg.cancel_scope.cancel()
            outcomes["cancelled"] = await status_of(client.session, seen.task_ids[-1])

    anyio.run(main, backend=backend)
    assert outcomes == {
        "deadline": (mcp_types.REQUEST_TIMEOUT, "cancelled"),
        "cancelled": "cancelled",
    }


@pytest.fixture
def flaky_url() -> Iterator[tuple[str, FlakyTasks]]:
    """A server whose first tasks/get fails, over Streamable HTTP in a thread."""
    server, hooks = flaky_server(failures=1)
    with serve_http(server.http_app(path="/mcp"), lifespan="on") as url:
        yield url, hooks


def test_client_retries_a_transient_error(backend: str, flaky_url: tuple[str, FlakyTasks]) -> None:
    """The policy's retry, through Client.call_tool, against a server that fails once."""
    url, hooks = flaky_url
    retry = Retry(attempts=2, backoff_ms=20, jitter=0, retry_on=is_transient)
    extension = TasksExtension(policy=PollPolicy(retry=retry))
    results: list[list[str]] = []

    async def main() -> None:
        async with Client(url, extensions=[extension]) as client:
            results.append(texts(await client.call_tool("quick")))

    anyio.run(main, backend=backend)
    assert results == [["done after 2 steps"]]
    assert hooks.gets >= 2


@pytest.fixture(scope="module")
def pushing_url() -> Iterator[str]:
    """The demo server with pushes (subscriptions/listen), over Streamable HTTP."""
    app = build_extension_server(pushes=True).http_app(path="/mcp")
    with serve_http(app, lifespan="on") as url:
        yield url


def test_client_hears_pushes(backend: str, pushing_url: str) -> None:
    """On asyncio and trio: the server's pushes reach the call, its result comes back."""
    extension = TasksExtension()
    pushed: list[str] = []
    extension.pushed.observable.subscribe(lambda task: pushed.append(task.status))
    outcomes: dict[str, object] = {}

    async def main() -> None:
        async with Client(pushing_url, extensions=[extension]) as client:
            outcomes["work"] = texts(await client.call_tool("work", {"steps": 2, "step_ms": 200}))

    anyio.run(main, backend=backend)
    assert outcomes == {"work": ["done after 2 steps"]}
    # The listen stream opens with the task's state, then pushes each change (whether
    # the end comes by push or by poll first is the machine's timing).
    assert pushed, "no push reached the call"
    assert set(pushed) <= {"working", "completed"}, pushed
