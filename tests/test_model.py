"""The model, public: server_timer (a timer the server drives) and until_terminal."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import reactivex
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

import rxtasks
from rxtasks import InvalidResultError, PollPolicy
from rxtasks.testing import MISSING, FakeTaskServer, Step, steps

if TYPE_CHECKING:
    from .conftest import VirtualClock


def now() -> float:
    """The virtual time, to the microsecond."""
    return round(anyio.current_time(), 6)


def status_of(task: Any) -> object:
    """A result's status."""
    return task.status


async def test_server_timer_never_ends_by_itself(virtual_time: VirtualClock) -> None:
    """One call per tick, the next due the hint after the response; on past terminal."""
    server = FakeTaskServer({"t": [Step("working", 100), Step("completed", 300)]})
    ticks = rxtasks.server_timer(server.get_task, "t").pipe(ops.take(4), ops.map(status_of))
    seen = [(now(), s) async for s in rxtasks.iterate(ticks)]
    assert seen == [(0.0, "working"), (0.1, "completed"), (0.4, "completed"), (0.7, "completed")]


async def test_until_terminal_ends_after_the_first_terminal(virtual_time: VirtualClock) -> None:
    """server_timer piped through until_terminal is a poll: it stops calling."""
    server = FakeTaskServer({"t": steps("working", "input_required", "failed", interval_ms=50)})
    model = rxtasks.server_timer(server.get_task, "t").pipe(rxtasks.until_terminal())
    assert [s async for s in rxtasks.iterate(model.pipe(ops.map(status_of)))] == [
        "working",
        "input_required",
        "failed",
    ]
    assert [round(c.started, 6) for c in server.calls] == [0.0, 0.05, 0.1]


async def test_the_policy_clamps_the_interval(virtual_time: VirtualClock) -> None:
    """Only the floor and the cap apply to the timer."""
    server = FakeTaskServer({"t": [Step("working", 0), Step("working", 10**9), Step("completed")]})
    policy = PollPolicy(min_interval_ms=100, max_interval_ms=300)
    model = rxtasks.server_timer(server.get_task, "t", policy=policy).pipe(rxtasks.until_terminal())
    async for _ in rxtasks.iterate(model):
        pass
    assert [round(c.started, 6) for c in server.calls] == [0.0, 0.1, 0.4]


def test_marbles_on_the_test_scheduler() -> None:
    """On reactivex's TestScheduler, in virtual ticks (seconds here)."""
    scheduler = TestScheduler()
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=10_000)},
        clock=lambda: scheduler.clock,
    )
    model = rxtasks.server_timer(server.get_task, "t").pipe(
        rxtasks.until_terminal(), ops.map(status_of)
    )
    observer = scheduler.start(lambda: model)  # subscribed at 200
    assert observer.messages == [
        ReactiveTest.on_next(200, "working"),
        ReactiveTest.on_next(210, "working"),
        ReactiveTest.on_next(220, "completed"),
        ReactiveTest.on_completed(220),
    ]


async def test_a_result_without_status_is_an_error(anyio_backend: Any) -> None:
    """until_terminal reads the status as poll does: none at all is InvalidResultError."""
    server = FakeTaskServer({"t": [Step(MISSING)]})
    model = rxtasks.server_timer(server.get_task, "t").pipe(rxtasks.until_terminal())
    with pytest.raises(InvalidResultError):
        async for _ in rxtasks.iterate(model):
            pass


async def test_unknown_statuses_and_bad_hints_warn_once(
    virtual_time: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Per subscription: one warning per problem, not one per poll."""
    script = [Step("paused", -1)] * 3 + [Step("completed")]
    server = FakeTaskServer({"t": script})
    model = rxtasks.server_timer(server.get_task, "t", 100).pipe(rxtasks.until_terminal())
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        assert len([r async for r in rxtasks.iterate(model)]) == 4
    assert caplog.text.count("unknown status") == 1
    assert caplog.text.count("invalid poll interval hint") == 1


async def test_disposal_cancels_the_call_and_the_timer(virtual_time: VirtualClock) -> None:
    """Leaving the stream cancels the call in flight; nothing is called afterwards."""
    server = FakeTaskServer({"t": [Step("working", 100), Step("working", latency_ms=5000)]})
    async with rxtasks.open_stream(rxtasks.server_timer(server.get_task, "t")) as results:
        await anext(results)
        await anyio.sleep(1)
    await anyio.sleep(10)
    assert [(round(c.started, 6), c.cancelled) for c in server.calls] == [
        (0.0, False),
        (0.1, True),
    ]


def test_until_terminal_is_an_operator_for_any_source() -> None:
    """It works on any observable of results, raw JSON included."""
    results = [{"status": "working"}, {"status": "completed"}, {"status": "working"}]
    seen: list[object] = []
    reactivex.from_iterable(results).pipe(rxtasks.until_terminal()).subscribe(seen.append)
    assert seen == results[:2]
