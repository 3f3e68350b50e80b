"""poll's rarer paths: stale polled results, odd pushes, replayed pushes, custom retry rules."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from reactivex.subject import BehaviorSubject, ReplaySubject, Subject

import rxtasks
from rxtasks import AnyioScheduler, PollPolicy, Retry
from rxtasks.testing import FakeTaskServer, Step, Task, steps

if TYPE_CHECKING:
    from .conftest import VirtualClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def now() -> float:
    """The loop's time, to the microsecond."""
    return round(anyio.current_time(), 6)


def pushed(status: str, updated_s: float, interval_ms: int | None = None) -> Task:
    """A result for task t as a server pushes it, last updated ``updated_s`` after T0."""
    return Task("t", status, interval_ms, None, T0, T0 + timedelta(seconds=updated_s))


def starts(server: FakeTaskServer) -> list[float]:
    """The call times, to the microsecond."""
    return [round(call.started, 6) for call in server.calls]


async def poll_with_push_at(
    server: FakeTaskServer, at_s: float, push: Task
) -> list[tuple[float, object]]:
    """Poll task t with ``iterate``; push ``push`` at ``at_s``; return (time, status)."""
    subject = Subject[Any]()
    seen: list[tuple[float, object]] = []

    async def send() -> None:
        await anyio.sleep(at_s)
        subject.on_next(push)

    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        source = rxtasks.poll(server.get_task, "t", notifications=subject)
        seen += [(now(), r.status) async for r in rxtasks.iterate(source)]
    return seen


async def test_polled_results_older_than_a_push_are_not_emitted(
    virtual_time: VirtualClock,
) -> None:
    """Polls that answer older than a push already emitted are skipped; polling goes on."""
    script = [*steps("working", "working", "working", interval_ms=100), Step("completed")]
    server = FakeTaskServer({"t": script}, epoch=T0)
    # The push says 0.3 at 0.05: the server's clock runs ahead.
    seen = await poll_with_push_at(server, 0.05, pushed("working", 0.3, 100))
    assert seen == [(0.0, "working"), (0.05, "working"), (0.35, "completed")]
    assert starts(server) == [0.0, 0.15, 0.25, 0.35]


async def test_a_stale_terminal_result_is_not_the_end(virtual_time: VirtualClock) -> None:
    """A polled terminal result older than a push emitted is skipped; its hint paces on."""
    script = [*steps("working", interval_ms=100), *steps("completed", "completed", interval_ms=50)]
    server = FakeTaskServer({"t": script}, epoch=T0)
    seen = await poll_with_push_at(server, 0.05, pushed("working", 0.2, 100))
    # 0.15: completed, updated at 0.15 < 0.2: not emitted, the next call 50 ms later.
    assert seen == [(0.0, "working"), (0.05, "working"), (0.2, "completed")]
    assert starts(server) == [0.0, 0.15, 0.2]


async def test_a_replayed_terminal_push_ends_the_poll_before_any_call(
    virtual_time: VirtualClock,
) -> None:
    """A terminal push replayed as the poll subscribes ends it; get_task is never awaited."""
    server = FakeTaskServer({"t": steps("working")}, epoch=T0)
    replay = BehaviorSubject[Any](pushed("completed", 1.0))
    source = rxtasks.poll(server.get_task, "t", notifications=replay)
    seen = [r.status async for r in rxtasks.iterate(source)]
    assert seen == ["completed"]
    assert server.calls == []


async def test_a_replayed_push_replaces_the_queued_first_call(virtual_time: VirtualClock) -> None:
    """A push replayed right after subscription drops the first call before it was made."""
    server = FakeTaskServer({"t": steps("completed")}, epoch=T0)
    replay = ReplaySubject[Any]()
    replay.on_next(pushed("working", 0.0, 100))
    source = rxtasks.poll(server.get_task, "t", notifications=replay)
    seen = [(now(), r.status) async for r in rxtasks.iterate(source)]
    assert seen == [(0.0, "working"), (0.1, "completed")]
    assert starts(server) == [0.1]


async def test_disposed_while_a_dropped_call_unwinds_no_call_follows(
    virtual_time: VirtualClock,
) -> None:
    """The next call waits for the call a push dropped; disposed meanwhile, it is never made."""
    calls: list[float] = []

    async def get_task(task_id: str) -> Task:
        calls.append(now())
        with anyio.CancelScope(shield=True):  # a call that takes its time to unwind
            await anyio.sleep(1)
        return Task(task_id, "working", 0)

    subject = Subject[Any]()
    seen: list[tuple[float, object]] = []
    async with AnyioScheduler() as scheduler:
        subscription = rxtasks.poll(get_task, "t", notifications=subject).subscribe(
            lambda r: seen.append((now(), r.status)), scheduler=scheduler
        )
        await anyio.sleep(0.1)
        subject.on_next(pushed("working", 0.1, 0))  # drops the call; the next is due now
        await anyio.sleep(0.4)
        subscription.dispose()
    assert seen == [(0.1, "working")]
    assert calls == [0.0]
    assert now() == 1.0


async def test_a_push_without_status_is_ignored_with_a_warning(
    virtual_time: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A pushed result with no status is logged and dropped; the poll keeps its pace."""
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=1000)}, epoch=T0)
    subject = Subject[Any]()
    seen: list[tuple[float, object]] = []

    async def push() -> None:
        await anyio.sleep(0.5)
        subject.on_next({"taskId": "t", "statusMessage": "no status here"})

    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        async with anyio.create_task_group() as tg:
            tg.start_soon(push)
            source = rxtasks.poll(server.get_task, "t", notifications=subject)
            seen += [(now(), r.status) async for r in rxtasks.iterate(source)]
    assert seen == [(0.0, "working"), (1.0, "completed")]
    assert "ignoring a pushed result without status" in caplog.text


async def test_results_without_update_times_are_never_stale(virtual_time: VirtualClock) -> None:
    """With pushes on, results that carry no lastUpdatedAt are all emitted."""
    answers: list[dict[str, object]] = [
        {"taskId": "t", "status": "working", "pollInterval": 100},
        {"taskId": "t", "status": "completed"},
    ]

    async def get_task(_task_id: str) -> dict[str, object]:
        return answers.pop(0)

    subject = Subject[Any]()
    source = rxtasks.poll(get_task, "t", notifications=subject)
    seen = [(now(), r["status"]) async for r in rxtasks.iterate(source)]
    assert seen == [(0.0, "working"), (0.1, "completed")]


async def test_retry_on_a_predicate(virtual_time: VirtualClock) -> None:
    """Retry's retry_on may be a predicate: what it accepts is retried, the rest ends the poll."""
    server = FakeTaskServer(
        {
            "t": [
                Step(error=KeyError("flaky")),
                Step("working", 100),
                Step(error=ValueError("fatal")),
            ]
        }
    )
    retry = Retry(attempts=3, backoff_ms=200, jitter=0, retry_on=lambda e: isinstance(e, KeyError))
    source = rxtasks.poll(server.get_task, "t", policy=PollPolicy(retry=retry))
    seen: list[object] = []

    async def drain() -> None:
        async for result in rxtasks.iterate(source):
            seen.append(result.status)  # noqa: PERF401 -- kept on error

    with pytest.raises(ValueError, match="fatal"):
        await drain()
    assert seen == ["working"]
    assert starts(server) == [0.0, 0.2, 0.3]


async def test_poll_many_cancel_task_bypasses_max_in_flight(virtual_time: VirtualClock) -> None:
    """Disposing poll_many sends each cancel_task at once, whatever max_in_flight allows."""
    server = FakeTaskServer({t: [Step("working", latency_ms=10_000)] for t in ("a", "b", "c")})
    cancelled: list[tuple[str, float]] = []

    async def cancel_task(task_id: str) -> None:
        cancelled.append((task_id, now()))

    async with AnyioScheduler() as scheduler:
        subscription = rxtasks.poll_many(
            server.get_task, "abc", max_in_flight=1, cancel_task=cancel_task
        ).subscribe(scheduler=scheduler)
        await anyio.sleep(1)
        assert server.in_flight == 1
        subscription.dispose()
    assert sorted(cancelled) == [("a", 1.0), ("b", 1.0), ("c", 1.0)]
    assert [call.task_id for call in server.calls] == ["a"]
