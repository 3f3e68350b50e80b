"""poll with pushed notifications raced against the timer, and the opt-in cancel_task."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import reactivex
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import rxtasks
from rxtasks import AnyioScheduler
from rxtasks.testing import FakeTaskServer, Step, Task, steps

if TYPE_CHECKING:
    from .conftest import VirtualClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pushed(task_id: str, status: str, updated_s: float, interval_ms: int | None = None) -> Task:
    """A result as a server pushes it in notifications/tasks/status."""
    return Task(task_id, status, interval_ms, None, T0, T0 + timedelta(seconds=updated_s))


async def push_at(subject: Subject[Any], *events: tuple[float, Any]) -> None:
    """Push each result at its virtual time."""
    for at, result in events:
        await anyio.sleep_until(at)
        subject.on_next(result)


async def run_poll(
    server: FakeTaskServer, subject: Subject[Any], *events: tuple[float, Any]
) -> list[tuple[float, object, object]]:
    """Poll task t with notifications on an AnyioScheduler; return (time, status, message)."""
    seen: list[tuple[float, object, object]] = []
    async with AnyioScheduler() as scheduler:
        scheduler.schedule_await(lambda: push_at(subject, *events), lambda _: None, _raise)
        rxtasks.poll(server.get_task, "t", notifications=subject).subscribe(
            lambda r: seen.append((round(anyio.current_time(), 6), r.status, r.statusMessage)),
            scheduler=scheduler,
        )
    return seen


def _raise(error: Exception) -> None:
    raise error


async def test_push_is_emitted_at_once_and_reschedules(virtual_time: VirtualClock) -> None:
    """A pushed status arrives before the next poll would; the next poll is due after it."""
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=1000)}, epoch=T0
    )
    subject = Subject[Any]()
    seen = await run_poll(server, subject, (0.4, pushed("t", "input_required", 0.4, 500)))
    assert [(t, s) for t, s, _ in seen] == [
        (0.0, "working"),
        (0.4, "input_required"),
        (0.9, "working"),
        (1.9, "completed"),
    ]
    assert [c.started for c in server.calls] == [0.0, 0.9, 1.9]


async def test_terminal_push_ends_without_another_call(virtual_time: VirtualClock) -> None:
    """A terminal push completes the stream and cancels the call in flight."""
    server = FakeTaskServer(
        {"t": [Step("working", 100), Step("working", latency_ms=10000)]}, epoch=T0
    )
    subject = Subject[Any]()
    seen = await run_poll(server, subject, (0.5, pushed("t", "completed", 0.5)))
    assert [(t, s) for t, s, _ in seen] == [(0.0, "working"), (0.5, "completed")]
    assert [(c.started, c.cancelled) for c in server.calls] == [(0.0, False), (0.1, True)]
    assert not subject.observers  # the notification subscription was disposed too


async def test_pushes_for_other_tasks_are_ignored(virtual_time: VirtualClock) -> None:
    """Only this task's id counts; a notification stream is shared by all tasks."""
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=1000)}, epoch=T0)
    subject = Subject[Any]()
    seen = await run_poll(server, subject, (0.5, pushed("other", "completed", 0.5)))
    assert [(t, s) for t, s, _ in seen] == [(0.0, "working"), (1.0, "completed")]


async def test_stale_push_is_not_emitted(virtual_time: VirtualClock) -> None:
    """A push older than what was emitted (lastUpdatedAt) is dropped."""
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=1000)}, epoch=T0
    )
    subject = Subject[Any]()
    seen = await run_poll(
        server,
        subject,
        (0.2, pushed("t", "input_required", 0.2)),
        (0.3, pushed("t", "working", 0.1)),  # delivered late: older than the push at 0.2
    )
    assert [(t, s) for t, s, _ in seen] == [
        (0.0, "working"),
        (0.2, "input_required"),
        (0.7, "working"),  # the default interval after the push (it has no hint)
        (1.7, "completed"),
    ]


async def test_silent_server_is_polled_as_without_notifications(virtual_time: VirtualClock) -> None:
    """Polling stays the fallback: no pushes, same calls at the same times."""
    server = FakeTaskServer(
        {"t": steps("working", "input_required", "completed", interval_ms=250)}, epoch=T0
    )
    seen = await run_poll(server, Subject[Any]())
    assert [c.started for c in server.calls] == [0.0, 0.25, 0.5]
    assert len(seen) == 3


async def test_failed_notifications_leave_polling_on(
    virtual_time: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An error in the notification stream is logged; polling goes on."""
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=1000)}, epoch=T0)
    notifications: reactivex.Observable[Any] = reactivex.throw(OSError("stream closed"))
    seen: list[object] = []
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        async with AnyioScheduler() as scheduler:
            rxtasks.poll(server.get_task, "t", notifications=notifications).subscribe(
                lambda r: seen.append(r.status), scheduler=scheduler
            )
    assert seen == ["working", "completed"]
    assert "notifications failed" in caplog.text


async def test_push_wakes_the_pull_bridge(virtual_time: VirtualClock) -> None:
    """With async for, a push from another task is delivered before the timer fires."""
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=1000)}, epoch=T0
    )
    subject = Subject[Any]()
    seen: list[tuple[float, object]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(push_at, subject, (0.3, pushed("t", "input_required", 0.3, 200)))
        source = rxtasks.poll(server.get_task, "t", notifications=subject)
        seen.extend(
            [(round(anyio.current_time(), 6), r.status) async for r in rxtasks.iterate(source)]
        )
    assert seen == [(0.0, "working"), (0.3, "input_required"), (0.5, "working"), (1.5, "completed")]


# -- cancel_task ---------------------------------------------------------------------------


class Canceller:
    """A cancel_task that records its calls."""

    def __init__(self, *, error: Exception | None = None, hang: bool = False) -> None:
        self.calls: list[tuple[str, float]] = []
        self.error = error
        self.hang = hang

    async def __call__(self, task_id: str) -> None:
        """Record the call; fail or hang if asked to."""
        self.calls.append((task_id, anyio.current_time()))
        await anyio.sleep(0.01)
        if self.hang:
            await anyio.sleep_forever()
        if self.error is not None:
            raise self.error


async def test_cancel_sent_when_leaving_open_stream(virtual_time: VirtualClock) -> None:
    """Leaving the block before the task ends sends tasks/cancel once, shielded."""
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=1000)}, epoch=T0
    )
    cancel = Canceller()
    source = rxtasks.poll(server.get_task, "t", cancel_task=cancel)
    async with rxtasks.open_stream(source) as results:
        await anext(results)
    assert cancel.calls == [("t", 0.0)]
    assert anyio.current_time() == pytest.approx(0.01, abs=0)  # the block waited for it


async def test_no_cancel_after_terminal_or_error(virtual_time: VirtualClock) -> None:
    """A stream that ended by itself cancels nothing."""
    cancel = Canceller()
    done = FakeTaskServer({"t": steps("working", "completed", interval_ms=10)}, epoch=T0)
    failing = FakeTaskServer({"t": [Step("working", 10), Step(error=OSError("gone"))]}, epoch=T0)
    for server in (done, failing):
        async with AnyioScheduler() as scheduler:
            subscription = rxtasks.poll(server.get_task, "t", cancel_task=cancel).subscribe(
                on_error=lambda _: None, scheduler=scheduler
            )
        subscription.dispose()
    assert cancel.calls == []


async def test_cancel_on_aclose_and_cancellation_not_on_break(virtual_time: VirtualClock) -> None:
    """The pull bridge sends it on aclose() and when cancelled; a bare break cannot."""
    server = FakeTaskServer(
        {"t": [Step("working", 100), Step("working", 100, latency_ms=5000)]}, epoch=T0
    )
    cancel = Canceller()
    async with rxtasks.iterate(rxtasks.poll(server.get_task, "t", cancel_task=cancel)) as items:
        await anext(items)
    assert cancel.calls == [("t", 0.0)]

    with anyio.move_on_after(1):
        async for _ in rxtasks.iterate(rxtasks.poll(server.get_task, "t", cancel_task=cancel)):
            pass
    assert [t for _, t in cancel.calls] == [0.0, 1.01]

    async for _ in rxtasks.iterate(rxtasks.poll(server.get_task, "t", cancel_task=cancel)):
        break
    assert len(cancel.calls) == 2


async def test_failing_or_hanging_cancel_is_logged_not_raised(
    virtual_time: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Best effort: an error is logged; a hang is abandoned after CANCEL_TIMEOUT_MS."""
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        for cancel in (Canceller(error=OSError("no route")), Canceller(hang=True)):
            server = FakeTaskServer(
                {"t": steps("working", "completed", interval_ms=1000)}, epoch=T0
            )
            start = anyio.current_time()
            async with rxtasks.open_stream(
                rxtasks.poll(server.get_task, "t", cancel_task=cancel)
            ) as results:
                await anext(results)
            assert cancel.calls
        assert anyio.current_time() - start == rxtasks.CANCEL_TIMEOUT_MS / 1000
    assert "cancel_task failed: OSError('no route')" in caplog.text
    assert "abandoned" in caplog.text


@pytest.mark.parametrize("bridge", ["subscribe", "iterate", "test_scheduler"])
async def test_a_push_from_on_next_paces_the_next_call_alone(
    virtual_time: VirtualClock, bridge: str
) -> None:
    """A push that an observer's on_next causes is emitted, and it alone sets the next call.

    The emission it interrupted schedules nothing more: one call per interval, not a
    second one right after the first (the pull bridge and TestScheduler made one).
    """
    test_scheduler = TestScheduler()
    clock = (lambda: test_scheduler.clock) if bridge == "test_scheduler" else anyio.current_time
    script = [*steps("working", "working", "working", interval_ms=100), Step("completed")]
    server = FakeTaskServer({"t": script}, epoch=T0, clock=clock)
    subject = Subject[Any]()
    seen: list[tuple[float, object]] = []

    def on_next(result: Any) -> None:
        seen.append((round(clock(), 6), result.status))
        if len(seen) == 1:
            subject.on_next(pushed("t", "input_required", 0.01, 100))

    source = rxtasks.poll(server.get_task, "t", notifications=subject).pipe(ops.do_action(on_next))
    if bridge == "subscribe":
        async with AnyioScheduler() as scheduler:
            source.subscribe(scheduler=scheduler)
    elif bridge == "iterate":
        async for _ in rxtasks.iterate(source):
            pass
    else:
        source.subscribe(scheduler=test_scheduler)
        test_scheduler.start()
    assert seen == [
        (0.0, "working"),
        (0.0, "input_required"),
        (0.1, "working"),
        (0.2, "working"),
        (0.3, "completed"),
    ]
    assert [round(call.started, 6) for call in server.calls] == [0.0, 0.1, 0.2, 0.3]
