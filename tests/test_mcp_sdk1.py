"""rxtasks.mcp.sdk1 against a real mcp 1.30 task server, in process (2025-11-25 revision)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import rxtasks
from rxtasks import TaskFailedError

pytest.importorskip("mcp", reason="needs mcp>=1.23,<2")
if find_spec("mcp_types") is not None:
    pytest.skip("needs mcp 1.x; mcp 2.x is installed", allow_module_level=True)

from mcp import types
from mcp.shared.exceptions import McpError

from rxtasks.mcp import TaskRef
from rxtasks.mcp._server_sdk1 import build_core_server, in_process_session
from rxtasks.mcp.sdk1 import CoreTasks, TaskNotifications

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from mcp.client.session import ClientSession
    from mcp.shared.context import RequestContext

    from .conftest import VirtualClock

pytestmark = pytest.mark.mcp1


class Counting(CoreTasks):
    """CoreTasks that counts its tasks/get calls, and notes when each went out."""

    gets: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent_at: list[float] = []

    async def get_task(self, task_id: str) -> types.GetTaskResult:
        """Count, then ask the server."""
        self.gets += 1
        self.sent_at.append(anyio.current_time())
        return await super().get_task(task_id)


async def answer(
    context: RequestContext[ClientSession, Any], params: types.ElicitRequestParams
) -> types.ElicitResult:
    """The client's elicitation callback: answers every question with 42."""
    return types.ElicitResult(action="accept", content={"answer": "42"})


@asynccontextmanager
async def connect() -> AsyncGenerator[Counting]:
    """An mcp 1.30 client session to a fresh in-process task server."""
    server = build_core_server()
    notifications = TaskNotifications()
    async with in_process_session(
        server, message_handler=notifications.message_handler, elicitation_callback=answer
    ) as session:
        yield Counting(session, notifications=notifications)


def summary(task: types.Task) -> tuple[str, str | None]:
    """A task state as (status, message)."""
    return task.status, task.statusMessage


async def test_completed(virtual_time: VirtualClock) -> None:
    """A task that completes: every state polled, then the tool's result."""
    async with connect() as tasks:
        task_id = await tasks.start("work", {"steps": 3, "step_ms": 100, "interval_ms": 150})
        states = [summary(t) async for t in rxtasks.iterate(tasks.poll(task_id))]
        result = await tasks.result(task_id)
    assert states[-1] == ("completed", "step 3/3")
    assert all(status == "working" for status, _ in states[:-1])
    assert result.content == [types.TextContent(type="text", text="done after 3 steps")]


async def test_poll_interval_is_the_servers(virtual_time: VirtualClock) -> None:
    """Without pushes, tasks/get is called at the interval the server suggests."""
    async with connect() as tasks:
        task_id = await tasks.start("work", {"steps": 2, "step_ms": 1000, "interval_ms": 400})
        source = rxtasks.poll(tasks.get_task, task_id)  # no notifications
        times = [anyio.current_time() async for _ in rxtasks.iterate(source)]
    gaps = {round(b - a, 6) for a, b in pairwise(times)}
    assert gaps == {0.4}


async def test_the_first_tasks_get_waits_the_created_tasks_hint(
    virtual_time: VirtualClock,
) -> None:
    """create() then poll(created): the created state at once, no tasks/get before its hint."""
    async with connect() as tasks:
        created = await tasks.create("work", {"steps": 2, "step_ms": 1000, "interval_ms": 400})
        start = anyio.current_time()
        seen = [
            (round(anyio.current_time() - start, 6), task.status)
            async for task in rxtasks.iterate(tasks.poll(created))
        ]
    assert created.pollInterval == 400
    assert seen[0] == (0.0, "working")
    assert [round(at - start, 6) for at in tasks.sent_at][:2] == [0.4, 0.8]
    assert tasks.gets < len(seen)  # the created state cost no request (the rest: pushes)


async def test_failed_with_its_message(virtual_time: VirtualClock) -> None:
    """A failed task ends the poll with `failed` and its message; result() raises it."""
    async with connect() as tasks:
        task_id = await tasks.start("fail", {"after_ms": 200, "message": "disk full"})
        states = [summary(t) async for t in rxtasks.iterate(tasks.poll(task_id))]
        with pytest.raises(TaskFailedError, match="disk full") as info:
            await tasks.result(task_id)
    assert states[-1] == ("failed", "disk full")
    assert info.value.task_id == task_id


async def test_cancelled_while_polling(virtual_time: VirtualClock) -> None:
    """Cancelling during the poll: the stream ends with `cancelled`."""
    async with connect() as tasks:
        task_id = await tasks.start("wait_cancel", {"tick_ms": 100})
        seen: list[str] = []
        async with rxtasks.open_stream(tasks.poll(task_id)) as states:
            async for state in states:
                seen.append(state.status)
                if len(seen) == 2:
                    await tasks.cancel_task(task_id)
        with pytest.raises(rxtasks.TaskCancelledError):
            await tasks.result(task_id)
    assert seen[-1] == "cancelled"
    assert set(seen[:-1]) == {"working"}


async def test_cancel_on_dispose(virtual_time: VirtualClock) -> None:
    """cancel_on_dispose sends tasks/cancel when the consumer leaves early."""
    async with connect() as tasks:
        task_id = await tasks.start("wait_cancel", {"tick_ms": 100})
        async with rxtasks.open_stream(tasks.poll(task_id, cancel_on_dispose=True)) as states:
            await anext(states)
        final = await tasks.get_task(task_id)
        await anyio.sleep(0.3)  # let the server's work notice and end
    assert final.status == "cancelled"


async def test_input_required_then_answered(virtual_time: VirtualClock) -> None:
    """input_required; tasks/result delivers the question; pushed working again; done."""
    results: list[types.CallToolResult] = []
    statuses: list[str] = []
    seen: list[tuple[str, str | None]] = []
    async with connect() as tasks, anyio.create_task_group() as tg:
        task_id = await tasks.start("ask", {"question": "answer?"})

        async def fetch_result() -> None:
            results.append(await tasks.result(task_id))

        async for state in rxtasks.iterate(tasks.poll(task_id, default_interval_ms=50)):
            if state.status == "input_required" and "input_required" not in statuses:
                tg.start_soon(fetch_result)  # once, on the transition
            statuses.append(state.status)
            seen.append(summary(state))
    # The server pushes "answered" (working) before it completes the task.
    assert ("working", "answered") in seen[statuses.index("input_required") :]
    assert statuses[-1] == "completed"
    assert results[0].content == [types.TextContent(type="text", text="answer: 42")]


async def test_unknown_task_id_surfaces_the_sdk_error(virtual_time: VirtualClock) -> None:
    """An unknown id: the SDK's McpError (-32602) ends the stream, unchanged."""
    async with connect() as tasks:
        with pytest.raises(McpError) as info:
            async for _ in rxtasks.iterate(tasks.poll("no-such-task")):
                pass
    assert info.value.error.code == types.INVALID_PARAMS
    assert "not found" in info.value.error.message.lower()


async def test_pushed_statuses_beat_the_timer(virtual_time: VirtualClock) -> None:
    """Pushes arrive before the next poll would; a terminal push ends it, no more gets."""
    async with connect() as tasks:
        task_id = await tasks.start("work", {"steps": 3, "step_ms": 100, "interval_ms": 10_000})
        start = anyio.current_time()
        async with rxtasks.open_stream(tasks.poll(task_id)) as states:
            seen = [(round(anyio.current_time() - start, 6), *summary(s)) async for s in states]
        await anyio.sleep(20)
        gets = tasks.gets
    assert seen == [
        (0.0, "working", None),
        (0.1, "working", "step 1/3"),
        (0.2, "working", "step 2/3"),
        (0.3, "working", "step 3/3"),
        (0.3, "completed", "step 3/3"),
    ]
    assert gets == 1  # only the first poll: every later state was pushed


async def test_poll_many_through_the_adapter(virtual_time: VirtualClock) -> None:
    """The adapter's poll_many polls a batch with the session's pushes wired in."""
    async with connect() as tasks:
        ids = [
            await tasks.start("work", {"steps": 2, "step_ms": 100, "interval_ms": 10_000})
            for _ in range(3)
        ]
        finals: dict[str, str] = {}
        async for state in rxtasks.iterate(tasks.poll_many(ids, max_in_flight=2)):
            finals[state.taskId] = state.status
        gets = tasks.gets
    assert finals == dict.fromkeys(ids, "completed")
    assert gets == 3  # one poll each: the rest came as pushes
    assert "pushed statuses" in repr(tasks)


# -- reading answers leniently ------------------------------------------------------------


RAW = {
    "taskId": "t",
    "status": "working",
    "createdAt": "2026-01-01T00:00:00Z",
    "lastUpdatedAt": "2026-01-01T00:00:01Z",
    "ttl": 60000,
}


@pytest.mark.parametrize("hint", [0, True, "abc", 0.5, 1e308, "250", 250.0, 10**30])
def test_a_hint_reaches_the_reader_as_sent(hint: object) -> None:
    """Mcp 1.x's model would reject 250.0, "abc" or true; the reader gets them as sent."""
    from rxtasks.mcp._common import read_task

    task = read_task(types.GetTaskResult, {**RAW, "pollInterval": hint}, request="tasks/get")
    assert task.pollInterval == hint
    assert type(task.pollInterval) is type(hint)
    assert (task.taskId, task.status) == ("t", "working")


def test_an_unknown_status_and_odd_fields_are_kept() -> None:
    """Only the id and the status must be strings; the rest is kept as sent."""
    from rxtasks.mcp._common import read_task

    raw = {**RAW, "status": "weird", "statusMessage": 5, "createdAt": "yesterday"}
    task = read_task(types.GetTaskResult, raw, request="tasks/get")
    kept: tuple[object, ...] = (task.status, task.statusMessage, task.createdAt)
    assert kept == ("weird", 5, "yesterday")


@pytest.mark.parametrize("status", [None, 5, ["working"]])
def test_an_answer_without_a_string_status_is_a_clear_error(status: object) -> None:
    """InvalidResultError names the request and the field."""
    from rxtasks.mcp._common import read_task

    with pytest.raises(rxtasks.InvalidResultError, match="tasks/get with a malformed task"):
        read_task(types.GetTaskResult, {**RAW, "status": status}, request="tasks/get")


async def test_resume_waits_for_the_reference_s_next_poll(virtual_time: VirtualClock) -> None:
    """resume(ref): nothing before ref.next_poll_at (30 s ahead on the wall clock), then poll."""
    async with connect() as tasks:
        created = await tasks.create("work", {"steps": 2, "step_ms": 100, "interval_ms": 100})
        ref = tasks.ref(created, server="in-process")
        ahead = TaskRef(
            server=ref.server,
            protocol=ref.protocol,
            task_id=ref.task_id,
            status=ref.status,
            next_poll_at=datetime.now(UTC) + timedelta(seconds=30),
        )
        restored = TaskRef.from_json(ahead.to_json())
        start = anyio.current_time()
        seen = [task.status async for task in rxtasks.iterate(tasks.resume(restored))]
    assert seen == ["completed"]
    first = tasks.sent_at[0] - start
    # 30 s less the wall-clock time this test took between making the ref and resuming.
    assert 29.9 < first <= 30, first


@pytest.mark.parametrize("expired", [False, True])
async def test_resume_of_a_task_the_server_does_not_know(
    virtual_time: VirtualClock, expired: bool
) -> None:
    """An unknown task: TaskNotFoundError, or TaskExpiredError past its ttl; both name it."""
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    ref = TaskRef(
        server="in-process",
        protocol="2025-11-25",
        task_id="no-such-task",
        status="working",
        next_poll_at=long_ago,
        created_at=long_ago if expired else None,
        ttl_ms=60_000 if expired else None,
    )
    async with connect() as tasks:
        with pytest.raises((rxtasks.TaskExpiredError, rxtasks.TaskNotFoundError)) as caught:
            async for _ in rxtasks.iterate(tasks.resume(ref)):
                pass
    error = caught.value
    wanted = rxtasks.TaskExpiredError if expired else rxtasks.TaskNotFoundError
    assert type(error) is wanted
    assert isinstance(error, rxtasks.TaskExpiredError | rxtasks.TaskNotFoundError)
    assert error.task_id == "no-such-task"
    assert "no-such-task" in str(error)
    assert isinstance(error.__cause__, McpError)


async def test_resume_refuses_a_reference_of_the_other_revision(virtual_time: VirtualClock) -> None:
    """A tasks-extension reference cannot be resumed through 2025-11-25's adapter."""
    ref = TaskRef(
        server="x",
        protocol="2026-07-28",
        task_id="t",
        status="working",
        next_poll_at=datetime.now(UTC),
    )
    async with connect() as tasks:
        with pytest.raises(rxtasks.ArgumentError, match="2026-07-28"):
            tasks.resume(ref)


async def test_resume_waits_the_policy_cap_at_most(virtual_time: VirtualClock) -> None:
    """A reference due in a year (a wrong clock) waits max_interval_ms, not a year."""
    async with connect() as tasks:
        created = await tasks.create("work", {"steps": 1, "step_ms": 100, "interval_ms": 100})
        ref = TaskRef(
            server="in-process",
            protocol="2025-11-25",
            task_id=created.taskId,
            status="working",
            next_poll_at=datetime.now(UTC) + timedelta(days=365),
        )
        start = anyio.current_time()
        policy = rxtasks.PollPolicy(max_interval_ms=2000)
        seen = [task.status async for task in rxtasks.iterate(tasks.resume(ref, policy=policy))]
    assert seen == ["completed"]
    assert [round(at - start, 6) for at in tasks.sent_at] == [2.0]
