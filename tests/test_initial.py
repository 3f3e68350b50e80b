"""Polling from a known state (the created task): no ``get_task`` before its interval.

Exact in virtual time (trio's MockClock, asyncio's looptime): the created state is the
first result, at once; the first call is due the created state's hint after it; an
unusable hint falls back to the default; a terminal created state is the only result.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from reactivex import operators as ops

import rxtasks
from rxtasks.testing import FakeTaskServer, Step, Task

from .test_properties import run_on

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BACKENDS = ["trio", "asyncio"]


def created(task_id: str, hint: object, status: str = "working") -> Task:
    """What tools/call answered: the task, with its first interval hint."""
    return Task(task_id, status, hint, None, T0, T0)


def now() -> float:
    """The virtual time, rounded to the microsecond."""
    return round(anyio.current_time(), 6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("hint", "first_call"), [(250, 0.25), (0, 0.0), (None, 0.5), (-1, 0.5), ("x", 0.5)]
)
def test_the_first_call_waits_the_created_hint(
    backend: str, hint: object, first_call: float
) -> None:
    """poll(initial=): the created state at 0, the first tasks/get at its hint (or default)."""
    seen: list[tuple[float, object]] = []
    calls: list[float] = []

    async def main() -> None:
        server = FakeTaskServer({"t": (Step("working", 100), Step("completed"))}, epoch=T0)
        async with rxtasks.AnyioScheduler() as scheduler:
            rxtasks.poll(server.get_task, "t", initial=created("t", hint)).subscribe(
                lambda task: seen.append((now(), task.status)), scheduler=scheduler
            )
        calls.extend(round(call.started, 6) for call in server.calls)

    run_on(backend, main)
    assert calls == [first_call, round(first_call + 0.1, 6)]
    assert seen == [
        (0.0, "working"),
        (first_call, "working"),
        (round(first_call + 0.1, 6), "completed"),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_terminal_created_state_is_the_only_result(backend: str) -> None:
    """A task already completed when created: emitted, completed, never polled."""
    seen: list[object] = []

    async def main() -> None:
        server = FakeTaskServer({"t": (Step("completed"),)}, epoch=T0)
        initial = created("t", 100, "completed")
        seen.extend(
            [
                task.status
                async for task in rxtasks.iterate(
                    rxtasks.poll(server.get_task, "t", initial=initial)
                )
            ]
        )
        seen.extend(
            [
                task.status
                async for task in rxtasks.poll_until_terminal(server.get_task, "t", initial=initial)
            ]
        )
        assert server.calls == []

    run_on(backend, main)
    assert seen == ["completed", "completed"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_poll_until_terminal_from_the_created_state(backend: str) -> None:
    """The pull iterator: the created state first, its first call at the hint."""
    seen: list[tuple[float, object]] = []

    async def main() -> None:
        server = FakeTaskServer({"t": (Step("completed"),)}, epoch=T0)
        initial = created("t", 300)
        tasks = rxtasks.poll_until_terminal(server.get_task, "t", initial=initial)
        seen.extend([(now(), task.status) async for task in tasks])
        assert [round(call.started, 6) for call in server.calls] == [0.3]

    run_on(backend, main)
    assert seen == [(0.0, "working"), (0.3, "completed")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_poll_many_takes_created_states(backend: str) -> None:
    """poll_many of created states and ids: each state's first call waits its own hint."""
    first_calls: dict[str, float] = {}
    seen: list[tuple[float, str, object]] = []

    async def main() -> None:
        script = (Step("completed"),)
        server = FakeTaskServer({"a": script, "b": script, "c": script}, epoch=T0)
        items: list[Any] = [created("a", 200), created("b", 700), "c"]
        async with rxtasks.open_stream(rxtasks.poll_many(server.get_task, items)) as results:
            seen.extend([(now(), task.taskId, task.status) async for task in results])
        for call in server.calls:
            first_calls.setdefault(call.task_id, round(call.started, 6))

    run_on(backend, main)
    assert first_calls == {"a": 0.2, "b": 0.7, "c": 0.0}
    assert sorted(seen) == [
        (0.0, "a", "working"),
        (0.0, "b", "working"),
        (0.0, "c", "completed"),
        (0.2, "a", "completed"),
        (0.7, "b", "completed"),
    ]


def test_poll_many_rejects_a_state_without_a_task_id() -> None:
    """An item that is neither an id nor a state with a string taskId: a clear error."""
    errors: list[Exception] = []

    async def main() -> None:
        server = FakeTaskServer({}, epoch=T0)
        async with rxtasks.AnyioScheduler() as scheduler:
            rxtasks.poll_many(server.get_task, [{"status": "working"}]).subscribe(
                on_error=errors.append, scheduler=scheduler
            )

    run_on("trio", main)
    assert len(errors) == 1
    assert isinstance(errors[0], rxtasks.ArgumentTypeError)
    assert "taskId" in str(errors[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_disposed_before_the_first_call_calls_nothing(backend: str) -> None:
    """take(1) of a poll from the created state: the state, then no tasks/get at all."""

    async def main() -> None:
        server = FakeTaskServer({"t": (Step("completed"),)}, epoch=T0)
        first = rxtasks.poll(server.get_task, "t", initial=created("t", 100)).pipe(ops.take(1))
        assert [task.status async for task in rxtasks.iterate(first)] == ["working"]
        await anyio.sleep(1)
        assert server.calls == []

    run_on(backend, main)


@pytest.mark.parametrize("backend", BACKENDS)
def test_iterate_yields_the_created_state_at_once(backend: str) -> None:
    """iterate(poll(initial=)): the state emitted on subscription is yielded before any wait."""
    seen: list[tuple[float, object]] = []

    async def main() -> None:
        server = FakeTaskServer({"t": (Step("working", 100), Step("completed"))}, epoch=T0)
        source = rxtasks.poll(server.get_task, "t", initial=created("t", 400))
        seen.extend([(now(), task.status) async for task in rxtasks.iterate(source)])

    run_on(backend, main)
    assert seen == [(0.0, "working"), (0.4, "working"), (0.5, "completed")]
