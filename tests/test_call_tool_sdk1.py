"""CoreTasks.call_tool against a real mcp 1.30 task server, in process (2025-11-25 revision).

The server is the demo one (`rxtasks.mcp._server_sdk1`), with its request handlers
wrapped to record what reaches it: the requests are counted where they arrive, on the
server, in virtual time.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import rxtasks
from rxtasks import PollPolicy, PollTimeoutError, Retry

pytest.importorskip("mcp", reason="needs mcp>=1.23,<2")
if find_spec("mcp_types") is not None:
    pytest.skip("needs mcp 1.x; mcp 2.x is installed", allow_module_level=True)

from mcp import types
from mcp.server.experimental.task_context import ServerTaskContext

from rxtasks.mcp._server_sdk1 import build_core_server, in_process_session
from rxtasks.mcp.sdk1 import CoreTasks, TaskNotifications

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable

    from mcp.client.session import ClientSession, ElicitationFnT
    from mcp.server.lowlevel import Server
    from mcp.shared.context import RequestContext

    from .conftest import VirtualClock

pytestmark = pytest.mark.mcp1

RELATED_TASK = "io.modelcontextprotocol/related-task"
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}


@dataclass
class Wire:
    """The requests the server received, each with its virtual time."""

    requests: list[tuple[str, float]] = field(default_factory=list[tuple[str, float]])

    def count(self, method: str) -> int:
        """How many requests of this method arrived."""
        return sum(1 for name, _ in self.requests if name == method)

    def times(self, method: str) -> list[float]:
        """When the requests of this method arrived."""
        return [at for name, at in self.requests if name == method]


_RECORDED: dict[type[Any], str] = {
    types.CallToolRequest: "tools/call",
    types.GetTaskRequest: "tasks/get",
    types.GetTaskPayloadRequest: "tasks/result",
    types.CancelTaskRequest: "tasks/cancel",
}


def record(server: Server[Any, Any], wire: Wire, result_delay_s: float = 0.0) -> None:
    """Wrap the server's handlers so that every request is noted on arrival.

    ``result_delay_s``: tasks/result starts its work (sending the questions) that late.
    """
    for kind, method in _RECORDED.items():
        handler = server.request_handlers[kind]
        delay_s = result_delay_s if method == "tasks/result" else 0.0

        async def noted(
            request: Any,
            handler: Callable[[Any], Awaitable[types.ServerResult]] = handler,
            method: str = method,
            delay_s: float = delay_s,
        ) -> types.ServerResult:
            wire.requests.append((method, anyio.current_time()))
            await anyio.sleep(delay_s)
            return await handler(request)

        server.request_handlers[kind] = noted


def add_ask_twice(server: Server[Any, Any]) -> None:
    """Add a tool ``ask_twice`` to the demo server: two questions, one after the other."""
    original = server.request_handlers[types.CallToolRequest]

    async def work(task: ServerTaskContext) -> types.CallToolResult:
        answers: list[str] = []
        for question in ("first?", "second?"):
            answer = await task.elicit(message=question, requestedSchema=ANSWER_SCHEMA)
            answers.append(str((answer.content or {}).get("answer")))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=" / ".join(answers))]
        )

    async def call_tool(request: types.CallToolRequest) -> types.ServerResult:
        if request.params.name != "ask_twice":
            return await original(request)
        created = await server.request_context.experimental.run_task(work)
        return types.ServerResult(created)

    server.request_handlers[types.CallToolRequest] = call_tool


class Counting(CoreTasks):
    """CoreTasks that notes when each of its tasks/get went out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_at: list[float] = []

    async def get_task(self, task_id: str) -> types.GetTaskResult:
        """Note the time, then ask the server."""
        self.sent_at.append(anyio.current_time())
        return await super().get_task(task_id)


class Flaky(Counting):
    """A fault injector on the client side: the first tasks/get fails with ConnectionError."""

    failed = False

    async def get_task(self, task_id: str) -> types.GetTaskResult:
        """Fail once, then ask the server."""
        if not self.failed:
            self.failed = True
            self.sent_at.append(anyio.current_time())
            raise ConnectionError("connection reset by peer")
        return await super().get_task(task_id)


class Unanswered(Counting):
    """A server that never answers tasks/cancel, as the client sees it."""

    async def cancel_task(self, task_id: str) -> None:
        """Wait forever."""
        await anyio.sleep_forever()


@dataclass
class Elicitations:
    """The client's elicitation callback: answers each question, counting them."""

    delay_s: float = 0.0
    questions: list[str] = field(default_factory=list[str])

    async def __call__(
        self, context: RequestContext[ClientSession, Any], params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        """Answer ``42`` to the first question, ``43`` to the second..., after the delay."""
        self.questions.append(params.message)
        await anyio.sleep(self.delay_s)
        return types.ElicitResult(
            action="accept", content={"answer": str(41 + len(self.questions))}
        )


@dataclass
class Connected:
    """A client's adapter, and what its server received."""

    tasks: Counting
    wire: Wire


@asynccontextmanager
async def connect(
    adapter: type[Counting] = Counting,
    *,
    elicitation: ElicitationFnT | None = None,
    result_delay_s: float = 0.0,
) -> AsyncGenerator[Connected]:
    """An mcp 1.30 client session to a fresh in-process task server, recorded."""
    server = build_core_server()
    add_ask_twice(server)
    wire = Wire()
    record(server, wire, result_delay_s)
    notifications = TaskNotifications()
    async with in_process_session(
        server, message_handler=notifications.message_handler, elicitation_callback=elicitation
    ) as session:
        yield Connected(adapter(session, notifications=notifications), wire)


def text_of(result: types.CallToolResult) -> str:
    """The text of a tool result."""
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


# -- outcomes -----------------------------------------------------------------------------


async def test_completed(virtual_time: VirtualClock) -> None:
    """A task that completes: its result, from one tasks/result, after its terminal state."""
    statuses: list[str] = []
    async with connect() as c:
        result = await c.tasks.call_tool(
            "work",
            {"steps": 3, "step_ms": 100, "interval_ms": 150},
            on_status=lambda task: statuses.append(task.status),
        )
    assert result.content == [types.TextContent(type="text", text="done after 3 steps")]
    assert not result.isError
    assert statuses[0] == "working"
    assert statuses[-1] == "completed"
    assert c.wire.count("tools/call") == 1
    assert c.wire.count("tasks/result") == 1
    assert c.wire.count("tasks/cancel") == 0


async def test_failed_is_an_error_result(virtual_time: VirtualClock) -> None:
    """A failed task: a CallToolResult with isError and the message, as mcp 1.x does."""
    async with connect() as c:
        result = await c.tasks.call_tool("fail", {"after_ms": 200, "message": "disk full"})
        final = await c.tasks.get_task(task_of(result))
    assert result.isError
    assert result.content == [types.TextContent(type="text", text="disk full")]
    assert final.status == "failed"
    assert c.wire.count("tasks/cancel") == 0


def task_of(result: types.CallToolResult) -> str:
    """The task a result names in its _meta."""
    assert result.meta is not None
    task_id: str = result.meta[RELATED_TASK]["taskId"]
    return task_id


async def test_cancelled_on_the_server_is_an_error_result(virtual_time: VirtualClock) -> None:
    """A task cancelled by someone else: isError, saying so; call_tool cancels nothing."""
    ids: list[str] = []
    async with connect() as c, anyio.create_task_group() as tg:

        async def cancel_later() -> None:
            await anyio.sleep(0.3)
            await c.tasks.cancel_task(ids[0])

        tg.start_soon(cancel_later)
        result = await c.tasks.call_tool(
            "wait_cancel", {"tick_ms": 100}, on_status=lambda t: ids.append(t.taskId)
        )
        assert result.isError
        assert text_of(result).startswith(f"task {ids[0]} was cancelled")  # then its message
        assert task_of(result) == ids[0]
    assert c.wire.count("tasks/cancel") == 1  # the other party's only


async def test_not_a_task_returns_the_servers_answer(virtual_time: VirtualClock) -> None:
    """tools/call answered with a plain result (an unknown tool): that result, as is."""
    async with connect() as c:
        result = await c.tasks.call_tool("no_such_tool")
    assert result.isError
    assert "unknown tool 'no_such_tool'" in text_of(result)
    assert c.wire.count("tasks/get") == 0


# -- input --------------------------------------------------------------------------------


async def test_input_answered_once(virtual_time: VirtualClock) -> None:
    """input_required: one tasks/result, one question answered, the result it returned."""
    answer = Elicitations()
    statuses: list[str] = []
    async with connect(elicitation=answer) as c:
        result = await c.tasks.call_tool(
            "ask", {"question": "answer?"}, on_status=lambda task: statuses.append(task.status)
        )
    assert result.content == [types.TextContent(type="text", text="answer: 42")]
    assert answer.questions == ["answer?"]
    assert "input_required" in statuses
    assert c.wire.count("tasks/result") == 1  # reused as the result: not called twice


async def test_input_required_polled_again_is_asked_once(virtual_time: VirtualClock) -> None:
    """Polls keep seeing input_required until the question arrives: one tasks/result.

    The server sends its question 325 ms after tasks/result arrives; polled every 50 ms,
    the task reads input_required meanwhile: a client acting on every input_required
    would ask again on each (MCP Inspector #1174).
    """
    answer = Elicitations()
    statuses: list[str] = []
    # 325 ms: off the polls' 50 ms grid (on it, see
    # test_a_push_on_the_poll_grid_keeps_the_session).
    async with connect(elicitation=answer, result_delay_s=0.325) as c:
        result = await c.tasks.call_tool(
            "ask",
            {"question": "answer?"},
            policy=PollPolicy(max_interval_ms=50),  # the server suggests 500 ms
            on_status=lambda task: statuses.append(task.status),
        )
    assert text_of(result) == "answer: 42"
    assert statuses.count("input_required") >= 5
    assert answer.questions == ["answer?"]
    assert c.wire.count("tasks/result") == 1


@pytest.mark.parametrize("run", range(16))
async def test_a_push_on_the_poll_grid_keeps_the_session(
    virtual_time: VirtualClock, run: int
) -> None:
    """A push landing as a tasks/get answer arrives does not cost the session.

    The question comes 300 ms after tasks/result, on the 50 ms poll grid: pushes then
    make a tasks/get in flight moot just as its answer arrives. Cancelling that request
    ends mcp 1.30's session ("Connection closed", about 1 run in 4 on trio); CoreTasks
    lets it finish instead (``cancel_moot_calls=False``). Repeated: the order of the
    two is the scheduler's.
    """
    answer = Elicitations()
    async with connect(elicitation=answer, result_delay_s=0.3) as c:
        result = await c.tasks.call_tool(
            "ask", {"question": "answer?"}, policy=PollPolicy(max_interval_ms=50)
        )
    assert text_of(result) == "answer: 42"
    assert answer.questions == ["answer?"]


async def test_input_answered_slowly_is_asked_once(virtual_time: VirtualClock) -> None:
    """A user who takes a second to answer: one question, one tasks/result, the result."""
    answer = Elicitations(delay_s=1.0)
    async with connect(elicitation=answer) as c:
        start = anyio.current_time()
        result = await c.tasks.call_tool(
            "ask", {"question": "answer?"}, policy=PollPolicy(max_interval_ms=50)
        )
        took = anyio.current_time() - start
    assert text_of(result) == "answer: 42"
    assert answer.questions == ["answer?"]
    assert c.wire.count("tasks/result") == 1
    assert 1.0 < took < 1.2


async def test_two_input_requests_each_answered_once(virtual_time: VirtualClock) -> None:
    """Two questions in a row: both come over the one tasks/result, each answered once."""
    answer = Elicitations(delay_s=0.2)
    async with connect(elicitation=answer) as c:
        result = await c.tasks.call_tool("ask_twice", policy=PollPolicy(max_interval_ms=50))
    assert text_of(result) == "42 / 43"
    assert answer.questions == ["first?", "second?"]
    assert c.wire.count("tasks/result") == 1


async def test_input_impossible_without_a_callback(virtual_time: VirtualClock) -> None:
    """No elicitation callback: the server fails the task; a clear error result, no hang."""
    with anyio.fail_after(10):
        async with connect(elicitation=None) as c:
            result = await c.tasks.call_tool("ask", {"question": "answer?"})
    assert result.isError
    assert "does not support elicitation" in text_of(result)


async def test_input_impossible_when_the_server_asks_anyway(
    virtual_time: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that asks a client without the capability: refused once, error, no hang."""

    # The server skips its capability check, so the question reaches the client.
    def unchecked(self: ServerTaskContext) -> None:
        """No check: the question goes out whatever the client said it can do."""

    monkeypatch.setattr(ServerTaskContext, "_check_elicitation_capability", unchecked)
    statuses: list[str] = []
    with anyio.fail_after(10):
        async with connect(elicitation=None) as c:
            result = await c.tasks.call_tool(
                "ask", {"question": "answer?"}, on_status=lambda t: statuses.append(t.status)
            )
    assert "input_required" in statuses
    assert result.isError
    assert "Elicitation not supported" in text_of(result)
    assert c.wire.count("tasks/result") == 1


# -- policy -------------------------------------------------------------------------------


async def test_the_first_tasks_get_waits_the_created_hint(virtual_time: VirtualClock) -> None:
    """No tasks/get before the created task's pollInterval: exactly at it."""
    created_at: list[float] = []

    def note(task: types.Task) -> None:
        if not created_at:
            created_at.append(anyio.current_time())
            assert task.pollInterval == 400

    async with connect() as c:
        result = await c.tasks.call_tool(
            "work", {"steps": 2, "step_ms": 1000, "interval_ms": 400}, on_status=note
        )
    assert not result.isError
    (tools_call,) = c.wire.times("tools/call")
    assert round(created_at[0] - tools_call, 6) == 0.0
    assert round(c.wire.times("tasks/get")[0] - created_at[0], 6) == 0.4
    assert round(c.tasks.sent_at[0] - created_at[0], 6) == 0.4


async def test_a_transient_error_is_retried(virtual_time: VirtualClock) -> None:
    """The first tasks/get fails (ConnectionError): retried after the backoff, then done."""
    policy = PollPolicy(retry=Retry(attempts=2, backoff_ms=100, jitter=0))
    async with connect(Flaky) as c:
        start = anyio.current_time()
        result = await c.tasks.call_tool(
            "work", {"steps": 2, "step_ms": 1000, "interval_ms": 400}, policy=policy
        )
    assert text_of(result) == "done after 2 steps"
    assert [round(at - start, 6) for at in c.tasks.sent_at[:2]] == [0.4, 0.5]
    assert round(c.wire.times("tasks/get")[0] - start, 6) == 0.5  # the failed one never left
    assert c.wire.count("tasks/cancel") == 0


async def test_an_error_not_retried_cancels_the_task(virtual_time: VirtualClock) -> None:
    """Without a retry the error ends the call, and the task is cancelled at the server."""
    async with connect(Flaky) as c:
        ids: list[str] = []
        with pytest.raises(ConnectionError):
            # Ticks 10 s apart: no push restarts the timer before the first tasks/get.
            await c.tasks.call_tool(
                "wait_cancel", {"tick_ms": 10_000}, on_status=lambda t: ids.append(t.taskId)
            )
        final = await c.tasks.get_task(ids[0])
    assert final.status == "cancelled"
    assert c.wire.count("tasks/cancel") == 1


async def test_the_deadline_cancels_the_task(virtual_time: VirtualClock) -> None:
    """policy.timeout_ms: PollTimeoutError at the deadline, and tasks/cancel right then."""
    async with connect() as c:
        start = anyio.current_time()
        with pytest.raises(PollTimeoutError) as info:
            await c.tasks.call_tool(
                "wait_cancel", {"tick_ms": 100}, policy=PollPolicy(timeout_ms=1200)
            )
        ended = anyio.current_time()
        final = await c.tasks.get_task(info.value.task_id)
        await anyio.sleep(0.3)
    assert round(ended - start, 6) == 1.2
    assert [round(at - start, 6) for at in c.wire.times("tasks/cancel")] == [1.2]
    assert final.status == "cancelled"


async def test_the_deadline_with_detach_leaves_the_task(virtual_time: VirtualClock) -> None:
    """policy.timeout_ms with detach: PollTimeoutError, and the task runs on."""
    async with connect() as c:
        with pytest.raises(PollTimeoutError) as info:
            await c.tasks.call_tool(
                "work",
                {"steps": 5, "step_ms": 200, "interval_ms": 100},
                policy=PollPolicy(timeout_ms=300),
                detach=True,
            )
        task_id = info.value.task_id
        running = await c.tasks.get_task(task_id)
        await anyio.sleep(1)
        final = await c.tasks.get_task(task_id)
    assert running.status == "working"
    assert final.status == "completed"
    assert c.wire.count("tasks/cancel") == 0


# -- the caller cancelled -----------------------------------------------------------------


async def test_caller_cancelled_cancels_the_task(virtual_time: VirtualClock) -> None:
    """Cancelling the caller sends tasks/cancel at once; the server's task ends cancelled."""
    ids: list[str] = []
    async with connect() as c:
        start = anyio.current_time()
        with anyio.move_on_after(0.35) as scope:
            await c.tasks.call_tool(
                "wait_cancel", {"tick_ms": 100}, on_status=lambda t: ids.append(t.taskId)
            )
        ended = anyio.current_time()
        final = await c.tasks.get_task(ids[0])
        await anyio.sleep(0.3)
    assert scope.cancelled_caught
    assert round(ended - start, 6) == 0.35
    assert [round(at - start, 6) for at in c.wire.times("tasks/cancel")] == [0.35]
    assert final.status == "cancelled"


async def test_caller_cancelled_while_answering(virtual_time: VirtualClock) -> None:
    """Cancelled while the question is open: tasks/result dropped, the task cancelled."""
    answer = Elicitations(delay_s=10)
    ids: list[str] = []
    async with connect(elicitation=answer) as c:
        with anyio.move_on_after(2):
            await c.tasks.call_tool(
                "ask", {"question": "answer?"}, on_status=lambda t: ids.append(t.taskId)
            )
        final = await c.tasks.get_task(ids[0])
    assert answer.questions == ["answer?"]
    assert final.status == "cancelled"
    assert c.wire.count("tasks/cancel") == 1


async def test_caller_cancelled_with_detach_leaves_the_task(virtual_time: VirtualClock) -> None:
    """detach=True: nothing sent; the server's task runs on and completes."""
    ids: list[str] = []
    async with connect() as c:
        with anyio.move_on_after(0.25):
            await c.tasks.call_tool(
                "work",
                {"steps": 5, "step_ms": 100, "interval_ms": 100},
                detach=True,
                on_status=lambda t: ids.append(t.taskId),
            )
        running = await c.tasks.get_task(ids[0])
        await anyio.sleep(1)
        final = await c.tasks.get_task(ids[0])
    assert running.status == "working"
    assert final.status == "completed"
    assert c.wire.count("tasks/cancel") == 0


async def test_the_cancel_is_bounded(virtual_time: VirtualClock) -> None:
    """A tasks/cancel that gets no answer is abandoned after CANCEL_TIMEOUT_MS."""
    async with connect(Unanswered) as c:
        start = anyio.current_time()
        with anyio.move_on_after(0.3):
            await c.tasks.call_tool("wait_cancel", {"tick_ms": 100})
        ended = anyio.current_time()
    assert round(ended - start, 6) == 0.3 + rxtasks.CANCEL_TIMEOUT_MS / 1000
