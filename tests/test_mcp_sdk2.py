"""rxtasks.mcp.sdk2 against real servers: fastmcp-tasks (the tasks extension) and mcp 1.30.

fastmcp-tasks runs on asyncio only, so the in-process extension tests run on asyncio; the
same adapter is also driven on trio against the server in a subprocess over stdio. An mcp
2.x client against a 2025-11-25 server needs an mcp 1.x server, which lives in another
environment (``RXTASKS_MCP1_PYTHON``, set by ``nox -s tests_mcp2``) and runs over stdio.
These tests talk to real processes and clocks: they assert order and content, not times.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, Self

import anyio
import pytest

import rxtasks
from rxtasks import TaskCancelledError, TaskFailedError, TaskNotCreatedError

pytest.importorskip("mcp_types", reason="needs mcp 2.x")
pytest.importorskip("fastmcp_tasks", reason="needs fastmcp-tasks")

import mcp_types
from fastmcp.client.transports import FastMCPTransport
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher

from rxtasks.mcp._server_sdk2 import build_extension_server
from rxtasks.mcp.sdk2 import (
    CoreTasks,
    ExtensionTask,
    ExtensionTasks,
    TaskNotifications,
    session_options,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from types import TracebackType

    from mcp.client.context import ClientRequestContext
    from mcp.shared.message import SessionMessage

pytestmark = pytest.mark.mcp2

MCP1_PYTHON = os.environ.get("RXTASKS_MCP1_PYTHON")


@pytest.fixture
def anyio_backend() -> str:
    """fastmcp-tasks' backend (Docket) runs on asyncio only, on the real clock."""
    return "asyncio"


@asynccontextmanager
async def extension_tasks() -> AsyncGenerator[ExtensionTasks]:
    """An mcp 2.x session to a fresh in-process fastmcp-tasks server."""
    notifications = TaskNotifications()
    transport = FastMCPTransport(build_extension_server())
    async with transport.connect_session(**session_options(notifications)) as session:
        await session.discover()
        yield ExtensionTasks(session, notifications=notifications)


async def states(tasks: ExtensionTasks, task_id: str) -> list[ExtensionTask]:
    """Poll a task to its end."""
    return [state async for state in rxtasks.iterate(tasks.poll(task_id))]


async def test_extension_completed() -> None:
    """A task runs to `completed`; its inlined result is the tool's."""
    async with extension_tasks() as tasks:
        task_id = await tasks.start("quick", {"steps": 2, "step_ms": 150})
        seen = await states(tasks, task_id)
    assert [s.status for s in seen][-1] == "completed"
    assert {s.status for s in seen[:-1]} <= {"working"}
    assert {s.poll_interval_ms for s in seen} == {100}
    result = tasks.outcome(seen[-1])
    assert result.content == [mcp_types.TextContent(type="text", text="done after 2 steps")]


class Timed(ExtensionTasks):
    """ExtensionTasks that notes when each tasks/get went out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_at: list[float] = []

    async def get_task(self, task_id: str) -> ExtensionTask:
        """Note the time, then ask the server."""
        self.sent_at.append(anyio.current_time())
        return await super().get_task(task_id)


async def test_extension_first_tasks_get_waits_the_created_hint() -> None:
    """create() then poll(created): the created state first; no tasks/get before its hint."""
    notifications = TaskNotifications()
    transport = FastMCPTransport(build_extension_server())
    async with transport.connect_session(**session_options(notifications)) as session:
        await session.discover()
        tasks = Timed(session, notifications=notifications)
        created = await tasks.create("quick", {"steps": 2, "step_ms": 150})
        start = anyio.current_time()
        seen = [state async for state in rxtasks.iterate(tasks.poll(created))]
    assert created.poll_interval_ms == 100
    assert seen[0] is created
    assert seen[-1].status == "completed"
    assert len(tasks.sent_at) == len(seen) - 1  # the created state cost no request
    # A lower bound, not a tolerance: asyncio may run a timer up to its clock's
    # resolution (1 ms at most here) before the time asked for.
    assert tasks.sent_at[0] - start >= 0.1 - 0.001


async def test_extension_failed_with_its_message() -> None:
    """A failed task carries its JSON-RPC error; outcome() raises it."""
    async with extension_tasks() as tasks:
        task_id = await tasks.start("fail", {"after_ms": 100, "message": "disk full"})
        seen = await states(tasks, task_id)
    assert seen[-1].status == "failed"
    assert seen[-1].status_message == "disk full"
    with pytest.raises(TaskFailedError, match="disk full") as info:
        tasks.outcome(seen[-1])
    assert info.value.code == -32603
    assert info.value.data == {"tool": "fail"}


async def test_extension_cancelled_while_polling() -> None:
    """tasks/cancel during the poll: the stream ends with `cancelled`."""
    async with extension_tasks() as tasks:
        task_id = await tasks.start("wait_cancel", {"tick_ms": 50})
        seen: list[str] = []
        async with rxtasks.open_stream(tasks.poll(task_id)) as updates:
            async for state in updates:
                seen.append(state.status)
                if len(seen) == 2:
                    await tasks.cancel_task(task_id)
        with pytest.raises(TaskCancelledError):
            await tasks.result(task_id)
    assert seen[-1] == "cancelled"


async def test_extension_input_required_answered_with_update() -> None:
    """input_required lists its requests; tasks/update answers them once; working; done.

    Answered, the tool works for 2 s (status message "answered"): at the 250 ms interval
    the server suggests, polls see it working again before it completes.
    """
    answers: list[list[str]] = []
    async with extension_tasks() as tasks:
        task_id = await tasks.start("ask", {"question": "answer?", "then_ms": 2000})
        seen: list[tuple[str, str | None]] = []
        final: ExtensionTask | None = None
        async for state in rxtasks.iterate(tasks.poll(task_id, default_interval_ms=50)):
            final = state
            seen.append((state.status, state.status_message))
            new = tasks.new_input_requests(state)
            if new:
                answers.append(list(new))
                reply = mcp_types.ElicitResult(action="accept", content={"answer": "42"})
                await tasks.update(task_id, dict.fromkeys(new, reply))
                assert tasks.new_input_requests(state) == {}  # answered: not asked again
        assert final is not None
        result = tasks.outcome(final)
    statuses = [status for status, _ in seen]
    asked = statuses.index("input_required")
    assert ("working", "answered") in seen[asked:]
    assert statuses[-1] == "completed"
    assert len(answers) == 1
    assert result.content == [mcp_types.TextContent(type="text", text="answer: 42")]


async def test_extension_unknown_task_id() -> None:
    """An unknown id: the SDK's MCPError (-32602) ends the stream unchanged."""
    async with extension_tasks() as tasks:
        with pytest.raises(MCPError) as info:
            await states(tasks, "no-such-task")
    assert info.value.code == mcp_types.INVALID_PARAMS


async def test_extension_tool_that_is_not_a_task() -> None:
    """A tool answered at once is a clear TaskNotCreatedError carrying the answer."""
    async with extension_tasks() as tasks:
        with pytest.raises(TaskNotCreatedError) as info:
            await tasks.start("echo", {"text": "hi"})
    assert isinstance(info.value.result, mcp_types.CallToolResult)


async def test_extension_listen_falls_back_to_polling(caplog: pytest.LogCaptureFixture) -> None:
    """fastmcp-tasks pushes nothing; asking is logged and polling finishes the job."""
    async with extension_tasks() as tasks:
        task_id = await tasks.start("quick", {"steps": 1, "step_ms": 50})
        with caplog.at_level("INFO", logger="rxtasks.mcp"):
            async with tasks.listen([task_id]):
                seen = await states(tasks, task_id)
    assert seen[-1].status == "completed"
    assert "pushes no task statuses" in caplog.text


# -- over stdio, on both backends ------------------------------------------------------------


def _stdio(module: str, python: str = sys.executable) -> StdioServerParameters:
    return StdioServerParameters(command=python, args=["-m", module])


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_extension_over_stdio_on_both_backends(backend: str) -> None:
    """The extension adapter is anyio code: on trio too, with the server in a subprocess."""
    outcome: list[str] = []

    async def main() -> None:
        notifications = TaskNotifications()
        async with (
            stdio_client(_stdio("rxtasks.mcp._server_sdk2")) as (read, write),
            ClientSession(read, write, **session_options(notifications)) as session,
        ):
            await session.discover()
            tasks = ExtensionTasks(session, notifications=notifications)
            task_id = await tasks.start("quick", {"steps": 2, "step_ms": 50})
            result = await tasks.result(task_id)
            outcome.extend(c.text for c in result.content if isinstance(c, mcp_types.TextContent))

    anyio.run(main, backend=backend)
    assert outcome == ["done after 2 steps"]


# -- mcp 2.x client, 2025-11-25 server (mcp 1.30 in its own environment) ----------------------


async def answer(
    context: ClientRequestContext, params: mcp_types.ElicitRequestParams
) -> mcp_types.ElicitResult:
    """The elicitation callback: answers every question with 42."""
    return mcp_types.ElicitResult(action="accept", content={"answer": "42"})


class Sends(Protocol):
    """What a client transport's write stream offers (the SDK's protocol is private)."""

    async def send(self, item: SessionMessage, /) -> None:
        """Write one message."""

    async def aclose(self) -> None:
        """Close the stream."""


class Written:
    """A client's write stream that remembers the method of every message it passes on."""

    def __init__(self, stream: Sends) -> None:
        self.stream = stream
        self.methods: list[str] = []
        self._wrote = anyio.Event()

    async def send(self, item: SessionMessage, /) -> None:
        """Pass the message on, then note its method."""
        await self.stream.send(item)
        method = getattr(item.message, "method", None)
        if isinstance(method, str):
            self.methods.append(method)
            self._wrote.set()
            self._wrote = anyio.Event()

    async def written(self, method: str) -> None:
        """Return once a message of ``method`` has been written."""
        while method not in self.methods:
            await self._wrote.wait()

    async def aclose(self) -> None:
        """Close the wrapped stream."""
        await self.stream.aclose()

    async def __aenter__(self) -> Self:
        """Nothing to open."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """Close the wrapped stream."""
        await self.aclose()


@asynccontextmanager
async def core_tasks(written: list[Written] | None = None) -> AsyncGenerator[CoreTasks]:
    """An mcp 2.x session to an mcp 1.30 task server in a subprocess.

    ``written``, if given, receives the session's recording write stream.
    """
    if MCP1_PYTHON is None:
        pytest.skip("set RXTASKS_MCP1_PYTHON to a Python with mcp>=1.23,<2 (nox does)")
    notifications = TaskNotifications()
    async with stdio_client(_stdio("rxtasks.mcp._server_sdk1", MCP1_PYTHON)) as (read, write):
        recorder = Written(write)
        if written is not None:
            written.append(recorder)
        dispatcher = JSONRPCDispatcher(read, recorder)
        async with ClientSession(
            dispatcher=dispatcher,
            notification_bindings=notifications.bindings,
            elicitation_callback=answer,
        ) as session:
            await session.initialize()
            yield CoreTasks(session, notifications=notifications, dispatcher=dispatcher)


@pytest.fixture(params=["asyncio", "trio"])
def core_backend(request: pytest.FixtureRequest) -> str:
    """Both backends, real clocks."""
    return str(request.param)


def run(backend: str, test: Any) -> None:
    """Run an async test body on a backend."""
    anyio.run(test, backend=backend)


def test_core_completed_and_pushed(core_backend: str) -> None:
    """Created through the dispatcher, polled with pushes raced in, result fetched."""
    seen: list[tuple[str, str | None]] = []
    texts: list[str] = []

    async def body() -> None:
        async with core_tasks() as tasks:
            task_id = await tasks.start("work", {"steps": 3, "step_ms": 100, "interval_ms": 5000})
            seen.extend(
                [(s.status, s.status_message) async for s in rxtasks.iterate(tasks.poll(task_id))]
            )
            result = await tasks.result(task_id)
            texts.extend(c.text for c in result.content if isinstance(c, mcp_types.TextContent))

    run(core_backend, body)
    # The server suggests polling every 5 s: the steps can only have come as pushes.
    assert seen[-1] == ("completed", "step 3/3")
    assert ("working", "step 2/3") in seen
    assert texts == ["done after 3 steps"]


def test_core_failed_cancelled_and_unknown(core_backend: str) -> None:
    """Failed with its message; cancelled while polling; an unknown id's -32602."""
    outcomes: dict[str, object] = {}

    async def body() -> None:
        async with core_tasks() as tasks:
            failing = await tasks.start("fail", {"after_ms": 100, "message": "disk full"})
            final = [s async for s in rxtasks.iterate(tasks.poll(failing))][-1]
            outcomes["failed"] = (final.status, final.status_message)
            with pytest.raises(TaskFailedError, match="disk full"):
                await tasks.result(failing)

            waiting = await tasks.start("wait_cancel", {"tick_ms": 50})
            asked = False
            async with rxtasks.open_stream(tasks.poll(waiting, 100)) as updates:
                async for state in updates:
                    # Once: a second `working` (pushed or polled before the cancel landed)
                    # would ask again, and cancelling a cancelled task is an error.
                    if state.status == "working" and not asked:
                        asked = True
                        await tasks.cancel_task(waiting)
                    outcomes["cancelled"] = state.status

            with pytest.raises(MCPError) as info:
                await tasks.get_task("no-such-task")
            outcomes["unknown"] = info.value.code

    run(core_backend, body)
    assert outcomes == {
        "failed": ("failed", "disk full"),
        "cancelled": "cancelled",
        "unknown": mcp_types.INVALID_PARAMS,
    }


def test_core_input_required_over_tasks_result(core_backend: str) -> None:
    """input_required; tasks/result carries the question; pushed working again; done."""
    seen: list[tuple[str, str | None]] = []
    texts: list[str] = []

    async def body() -> None:
        async with core_tasks() as tasks, anyio.create_task_group() as tg:
            task_id = await tasks.start("ask", {"question": "answer?"})

            async def fetch() -> None:
                result = await tasks.result(task_id)
                texts.extend(c.text for c in result.content if isinstance(c, mcp_types.TextContent))

            async for state in rxtasks.iterate(tasks.poll(task_id, 50)):
                if state.status == "input_required" and "input_required" not in dict(seen):
                    tg.start_soon(fetch)
                seen.append((state.status, state.status_message))

    run(core_backend, body)
    statuses = [status for status, _ in seen]
    # The server pushes "answered" (working) before it completes the task.
    assert ("working", "answered") in seen[statuses.index("input_required") :]
    assert statuses[-1] == "completed"
    assert texts == ["answer: 42"]


def test_core_abandoned_get_sends_no_cancel(core_backend: str) -> None:
    """A tasks/get given up by its caller is not followed by notifications/cancelled.

    An mcp 1.x server can lose the session to a cancellation that arrives while it
    answers (python-sdk#2149): the watch of a task whose terminal push beat an
    in-flight poll then failed with "Session not found".
    """
    written: list[Written] = []
    states: list[str] = []

    async def body() -> None:
        async with core_tasks(written) as tasks:
            task_id = await tasks.start("work", {"steps": 1, "step_ms": 50})
            async with anyio.create_task_group() as tg:
                tg.start_soon(tasks.get_task, task_id)
                await written[0].written("tasks/get")
                tg.cancel_scope.cancel()  # the response cannot have come back yet
            states.extend([s.status async for s in rxtasks.iterate(tasks.poll(task_id, 50))])

    run(core_backend, body)
    assert "notifications/cancelled" not in written[0].methods
    assert written[0].methods.count("tasks/get") >= 2
    assert states[-1] == "completed"


def test_core_read_timeout(core_backend: str) -> None:
    """read_timeout_ms bounds each tasks/get; it fails with MCPError, quietly."""
    written: list[Written] = []
    codes: list[int] = []

    async def body() -> None:
        async with core_tasks(written) as tasks:
            task_id = await tasks.start("work", {"steps": 1, "step_ms": 50})
            hasty = CoreTasks(tasks.session, dispatcher=tasks.dispatcher, read_timeout_ms=0.001)
            with pytest.raises(MCPError) as info:
                await hasty.get_task(task_id)  # a process round trip takes far longer
            codes.append(info.value.code)
            assert (await tasks.get_task(task_id)).task_id == task_id  # the session lives

    run(core_backend, body)
    assert codes == [mcp_types.REQUEST_TIMEOUT]
    assert "notifications/cancelled" not in written[0].methods


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        (True, TypeError),
        ("5", TypeError),
    ],
)
def test_core_read_timeout_must_be_a_positive_number(bad: object, error: type[Exception]) -> None:
    """A read timeout that is not a positive finite number is refused at once, by name."""
    send, receive = anyio.create_memory_object_stream[Any](1)
    with send, receive, pytest.raises(error, match="read_timeout_ms"):
        CoreTasks(ClientSession(receive, send), read_timeout_ms=bad)  # type: ignore[arg-type]


async def test_core_start_without_dispatcher_says_why() -> None:
    """Without the dispatcher, mcp 2.x cannot create 2025-11-25 tasks: a clear error."""
    send, receive = anyio.create_memory_object_stream[Any](1)
    with send, receive:
        tasks = CoreTasks(ClientSession(receive, send))  # never entered: start fails first
        with pytest.raises(rxtasks.ArgumentError, match="python-sdk#3161"):
            await tasks.start("work")


# -- reading answers leniently ------------------------------------------------------------


LEGACY = {
    "taskId": "t",
    "status": "working",
    "createdAt": "2026-01-01T00:00:00Z",
    "lastUpdatedAt": "2026-01-01T00:00:01Z",
    "ttl": 60000,
}
EXTENSION = {"taskId": "t", "status": "working", "resultType": "complete"}


@pytest.mark.parametrize("hint", [0, True, "abc", 0.5, 1e308, "250", 250.0, 10**30])
@pytest.mark.parametrize(
    ("model", "raw", "key", "attribute"),
    [
        (mcp_types.GetTaskResult, LEGACY, "pollInterval", "poll_interval"),
        (ExtensionTask, EXTENSION, "pollIntervalMs", "poll_interval_ms"),
    ],
)
def test_a_hint_reaches_the_reader_as_sent(
    model: Any, raw: dict[str, Any], key: str, attribute: str, hint: object
) -> None:
    """The SDK's model neither coerces (true -> 1) nor rejects (250.0) a hint."""
    from rxtasks.mcp._common import read_task

    task = read_task(model, {**raw, key: hint}, request="tasks/get")
    value = getattr(task, attribute)
    assert value == hint
    assert type(value) is type(hint)
    assert (task.task_id, task.status) == ("t", "working")


@pytest.mark.parametrize("model", [mcp_types.GetTaskResult, ExtensionTask])
def test_an_unknown_status_and_odd_fields_are_kept(model: Any) -> None:
    """Only the id and the status must be strings; the rest is kept as sent."""
    from rxtasks.mcp._common import read_task

    raw = {**LEGACY, "status": "weird", "statusMessage": 5, "ttl": "long"}
    task = read_task(model, raw, request="tasks/get")
    assert task.status == "weird"
    assert task.status_message == 5


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"status": None}, "`status` (None); it must be a string"),
        ({"status": 5}, "a int `status` (5); it must be a string"),
        ({"taskId": 7}, "a int `taskId` (7); it must be a string"),
    ],
)
def test_an_answer_without_a_string_id_or_status_is_a_clear_error(
    change: dict[str, Any], says: str
) -> None:
    """InvalidResultError names the request and the field; nothing deep inside fails."""
    from rxtasks.mcp._common import read_task

    raw = {**LEGACY, **change}
    with pytest.raises(rxtasks.InvalidResultError, match="malformed task") as info:
        read_task(mcp_types.GetTaskResult, raw, request="tasks/get", task_id="t")
    assert says in str(info.value)
    assert info.value.result == raw
    without = {k: v for k, v in LEGACY.items() if k != "status"}
    with pytest.raises(rxtasks.InvalidResultError, match="no `status`"):
        read_task(ExtensionTask, without, request="tasks/get")
