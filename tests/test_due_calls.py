"""``schedule_await_after``: a poll's next call is one object, a timer until due, then an await.

`AnyioScheduler` queues it in its timer queue; it counts as a pending timer until due,
then as an await in flight. These tests hold it to what a timer whose action calls
``schedule_await`` would do, and to the rule that the call being delivered, and only
that one, may be queued again instead of a new one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

import rxtasks
from rxtasks import AnyioScheduler, SchedulerError
from rxtasks._runtime import AwaitCall, Runtime

from ._helpers import in_thread

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import VirtualClock


def fetch(log: list[tuple[str, float]], name: str) -> Callable[[], Any]:
    """An awaitable factory that logs its start and returns the name."""

    async def run() -> str:
        log.append((name, anyio.current_time()))
        return name

    return run


def ignore(_: object) -> None:
    """An outcome nobody wants."""


async def test_a_due_call_starts_at_its_time(virtual_time: VirtualClock) -> None:
    """Due calls start at their due time, in due order, and deliver their result."""
    log: list[tuple[str, float]] = []
    results: list[object] = []
    async with AnyioScheduler() as scheduler:
        scheduler.schedule_await_after(0.5, fetch(log, "b"), results.append, ignore)
        scheduler.schedule_await_after(0.25, fetch(log, "a"), results.append, ignore)
        scheduler.schedule_await_after(0.0, fetch(log, "now"), results.append, ignore)
    assert log == [("now", 0), ("a", 0.25), ("b", 0.5)]
    assert results == ["now", "a", "b"]


@pytest.mark.parametrize("delay_s", [0.0, 1.0])
async def test_disposed_before_due_never_runs(virtual_time: VirtualClock, delay_s: float) -> None:
    """Disposed while it waits (immediate or in the heap): out of the queue, never started."""
    log: list[tuple[str, float]] = []
    async with AnyioScheduler() as scheduler:
        call = scheduler.schedule_await_after(delay_s, fetch(log, "x"), ignore, ignore)
        assert scheduler.statistics().timers_pending == 1
        call.dispose()
        assert call.settled
        assert scheduler.statistics().timers_pending == 0
    assert log == []
    assert anyio.current_time() == 0  # the block did not wait for the dropped timer


async def test_pending_counts_as_a_timer_then_as_an_await(virtual_time: VirtualClock) -> None:
    """Until due it is a pending timer; once started, an await in flight."""
    started = anyio.Event()
    release = anyio.Event()
    seen: list[rxtasks.SchedulerStatistics] = []

    async def slow() -> str:
        started.set()
        await release.wait()
        return "done"

    async with AnyioScheduler() as scheduler:
        scheduler.schedule_await_after(1.0, slow, ignore, ignore)
        seen.append(scheduler.statistics())
        await started.wait()
        seen.append(scheduler.statistics())
        release.set()
    assert [(s.timers_pending, s.awaits_in_flight) for s in seen] == [(1, 0), (0, 1)]


async def test_cancel_drops_calls_not_yet_due(virtual_time: VirtualClock) -> None:
    """cancel() forgets due calls like timers: never started, settled, the block ends."""
    log: list[tuple[str, float]] = []
    async with AnyioScheduler() as scheduler:
        later = scheduler.schedule_await_after(5.0, fetch(log, "later"), ignore, ignore)
        soon = scheduler.schedule_await_after(0.0, fetch(log, "soon"), ignore, ignore)
        scheduler.cancel()
    assert log == []
    assert later.settled
    assert soon.settled
    assert anyio.current_time() == 0


async def test_from_another_thread(virtual_time: VirtualClock) -> None:
    """Scheduled from another thread: handed over, then due its delay after it landed."""
    log: list[tuple[str, float]] = []
    async with AnyioScheduler() as scheduler:
        in_thread(lambda: scheduler.schedule_await_after(0.5, fetch(log, "t"), ignore, ignore))
        dropped = in_thread(
            lambda: scheduler.schedule_await_after(0.5, fetch(log, "gone"), ignore, ignore)
        )
        dropped.dispose()  # before it lands: it never reaches the queue
    assert log == [("t", 0.5)]


async def test_handed_over_as_the_block_ends_still_runs(virtual_time: VirtualClock) -> None:
    """The block waits for a hand-over that was on its way when it ended, then for the call."""
    log: list[tuple[str, float]] = []
    scheduler = AnyioScheduler()
    async with scheduler:
        # The loop is blocked in the join: the hand-over lands only once the block ends.
        in_thread(lambda: scheduler.schedule_await_after(0.25, fetch(log, "x"), ignore, ignore))
    assert log == [("x", 0.25)]


async def test_outside_the_block_is_refused() -> None:
    """Like schedule_relative: a SchedulerError, not a call that never runs."""
    scheduler = AnyioScheduler()
    with pytest.raises(SchedulerError):
        scheduler.schedule_await_after(0.0, fetch([], "x"), ignore, ignore)
    async with scheduler:
        pass
    with pytest.raises(SchedulerError):
        scheduler.schedule_await_after(0.0, fetch([], "x"), ignore, ignore)


async def test_only_the_call_being_delivered_is_reused(virtual_time: VirtualClock) -> None:
    """``reuse`` is honoured for the call whose result is being delivered, and no other."""
    log: list[tuple[str, float]] = []
    made: list[AwaitCall[str]] = []

    async with AnyioScheduler() as scheduler:
        first: list[AwaitCall[str]] = []

        def again(_: str) -> None:
            if len(made) < 3:
                made.append(
                    scheduler.schedule_await_after(0.0, fetch(log, "x"), again, ignore, first[0])
                )
                first[0] = made[-1]

        first.append(scheduler.schedule_await_after(0.0, fetch(log, "x"), again, ignore))
        # Not in a delivery: a call of its own, even when handed the one in flight.
        other = scheduler.schedule_await_after(1.0, fetch(log, "y"), ignore, ignore, first[0])
        assert other is not first[0]
    assert all(call is made[0] for call in made)  # the delivered call, queued again
    assert log == [("x", 0), ("x", 0), ("x", 0), ("x", 0), ("y", 1.0)]


async def test_runtimes_without_a_timer_queue_say_so() -> None:
    """The base contract: None, and the caller schedules a timer that calls schedule_await."""

    class Plain(Runtime):
        def schedule_await(self, func: Any, on_result: Any, on_error: Any, **_: Any) -> Any:
            raise AssertionError("not called")

    assert Plain().schedule_await_after(0.0, fetch([], "x"), ignore, ignore) is None
