"""poll and from_async as observables, on every kind of scheduler."""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any, cast

import anyio
import pytest
import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.notification import Notification
from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.testing import ReactiveTest, TestScheduler

import rxtasks
from rxtasks import AnyioScheduler, SchedulerError
from rxtasks.testing import FakeTaskServer, Step, Task, steps

if TYPE_CHECKING:
    from .conftest import AnyioBackend, VirtualClock

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


class Recorder(abc.ObserverBase[Any]):
    """An observer that records (time, kind, value) and signals the end."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, Any]] = []
        self.done = anyio.Event()

    def on_next(self, value: Any) -> None:
        """Record an item."""
        self.events.append((anyio.current_time(), "next", value))

    def on_error(self, error: Exception) -> None:
        """Record the error; the end."""
        self.events.append((anyio.current_time(), "error", error))
        self.done.set()

    def on_completed(self) -> None:
        """Record completion; the end."""
        self.events.append((anyio.current_time(), "completed", None))
        self.done.set()

    def kinds(self) -> list[tuple[float, str, object]]:
        """Events with times rounded to the microsecond and results reduced to statuses."""
        return [
            (round(t, 6), kind, value.status if isinstance(value, Task) else value)
            for t, kind, value in self.events
        ]


def summary(notification: object) -> tuple[str, object]:
    """A recorded notification as (kind, status or error)."""
    assert isinstance(notification, Notification)
    value = cast("Any", notification)
    if value.kind == "N":
        return "N", status_of(value.value)
    if value.kind == "E":
        return "E", value.exception
    return "C", None


def status_of(result: Any) -> object:
    """The status of a result."""
    return result.status


# -- reactivex TestScheduler (virtual time, marbles) -----------------------------------------


def test_poll_on_test_scheduler() -> None:
    """Results at the server's pace in virtual time; completes after the terminal one."""
    scheduler = TestScheduler()
    server = FakeTaskServer(
        {"t": [Step("working", 250), Step("input_required", 500), Step("completed")]},
        clock=lambda: scheduler.clock,
    )
    observer = scheduler.start(lambda: rxtasks.poll(server.get_task, "t"))
    assert [(m.time, *summary(m.value)) for m in observer.messages] == [
        (200.0, "N", "working"),
        (200.25, "N", "input_required"),
        (200.75, "N", "completed"),
        (200.75, "C", None),
    ]


def test_poll_marbles() -> None:
    """The marble picture of poll: one result per interval, then completion."""
    scheduler = TestScheduler()
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=1000)},
        clock=lambda: scheduler.clock,
    )
    statuses = rxtasks.poll(server.get_task, "t").pipe(ops.map(status_of))
    observer = scheduler.start(lambda: statuses)
    assert observer.messages == [
        on_next(200, "working"),
        on_next(201, "working"),
        on_next(202, "completed"),
        on_completed(202),
    ]


def test_poll_dispose_on_test_scheduler() -> None:
    """Disposed subscriptions call nothing more and emit nothing more."""
    scheduler = TestScheduler()
    server = FakeTaskServer(
        {"t": steps("working", "working", "working", "completed", interval_ms=1000)},
        clock=lambda: scheduler.clock,
    )
    observer = scheduler.start(lambda: rxtasks.poll(server.get_task, "t"), disposed=201.5)
    assert [m.time for m in observer.messages] == [200.0, 201.0]
    assert len(server.calls) == 2


def test_poll_error_on_test_scheduler() -> None:
    """An error of get_task is on_error, unchanged."""
    error = OSError("gone")
    scheduler = TestScheduler()
    server = FakeTaskServer(
        {"t": [Step("working", 1000), Step(error=error)]}, clock=lambda: scheduler.clock
    )
    observer = scheduler.start(lambda: rxtasks.poll(server.get_task, "t"))
    assert observer.messages[-1] == on_error(201, error)


def test_suspending_get_task_on_test_scheduler_is_a_clear_error() -> None:
    """A virtual-time scheduler has no event loop: a get_task that waits is refused."""

    async def get_task(task_id: str) -> dict[str, str]:
        await asyncio.sleep(0)  # suspends: yields to an event loop that is not there
        return {"status": "working"}

    scheduler = TestScheduler()
    observer = scheduler.start(lambda: rxtasks.poll(get_task, "t"))
    [message] = observer.messages
    kind, error = summary(message.value)
    assert kind == "E"
    assert isinstance(error, SchedulerError)
    assert "virtual-time scheduler" in str(error)


def test_poll_is_cold() -> None:
    """Each subscription polls independently, from its own first call."""
    scheduler = TestScheduler()
    server = FakeTaskServer(
        {"t": steps("working", "completed", interval_ms=1000)}, clock=lambda: scheduler.clock
    )
    source = rxtasks.poll(server.get_task, "t")
    first = scheduler.create_observer()
    second = scheduler.create_observer()

    def subscriber(observer: abc.ObserverBase[Any]) -> abc.ScheduledAction[None]:
        def action(_scheduler: abc.SchedulerBase, _state: None = None) -> None:
            source.subscribe(observer, scheduler=scheduler)

        return action

    scheduler.schedule_absolute(10.0, subscriber(first))
    scheduler.schedule_absolute(20.5, subscriber(second))
    scheduler.start()
    assert [m.time for m in first.messages] == [10.0, 11.0, 11.0]
    # The second subscription calls at once; the server has moved on to the terminal step.
    assert [m.time for m in second.messages] == [20.5, 20.5]
    assert [c.started for c in server.calls] == [10.0, 11.0, 20.5]


# -- AnyioScheduler (asyncio and trio) -------------------------------------------------------


async def test_poll_on_anyio_scheduler(virtual_time: VirtualClock) -> None:
    """The push observable on AnyioScheduler, exact in virtual time on both backends."""
    server = FakeTaskServer(
        {"t": [Step("working", 250, latency_ms=100), Step("completed", latency_ms=100)]}
    )
    recorder = Recorder()
    async with AnyioScheduler() as scheduler:
        rxtasks.poll(server.get_task, "t").subscribe(recorder, scheduler=scheduler)
    assert recorder.kinds() == [
        (0.1, "next", "working"),
        (0.45, "next", "completed"),
        (0.45, "completed", None),
    ]


async def test_dispose_during_call_cancels_it(virtual_time: VirtualClock) -> None:
    """Disposing while get_task is in flight cancels it; no callback follows."""
    server = FakeTaskServer({"t": [Step("working", 100), Step("completed", latency_ms=10000)]})
    recorder = Recorder()
    async with AnyioScheduler() as scheduler:
        subscription = rxtasks.poll(server.get_task, "t").subscribe(recorder, scheduler=scheduler)
        await anyio.sleep(5)
        subscription.dispose()
        assert scheduler.statistics().awaits_in_flight == 1  # until it has unwound
        await anyio.wait_all_tasks_blocked()
        assert scheduler.statistics().awaits_in_flight == 0
        await anyio.sleep(60)
        stats = scheduler.statistics()
        assert (stats.timers_pending, stats.awaits_in_flight) == (0, 0)
    assert [(c.started, c.cancelled) for c in server.calls] == [(0.0, False), (0.1, True)]
    assert recorder.kinds() == [(0.0, "next", "working")]


async def test_dispose_during_timer_drops_it(virtual_time: VirtualClock) -> None:
    """Disposing between polls drops the pending timer: nothing else is called."""
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=1000)})
    recorder = Recorder()
    async with AnyioScheduler() as scheduler:
        subscription = rxtasks.poll(server.get_task, "t").subscribe(recorder, scheduler=scheduler)
        await anyio.sleep(0.5)
        assert scheduler.statistics().timers_pending == 1
        subscription.dispose()
        assert scheduler.statistics().timers_pending == 0
    assert len(server.calls) == 1
    assert anyio.current_time() == 0.5  # leaving the block did not wait for the dropped timer


async def test_at_most_one_call_in_flight(virtual_time: VirtualClock) -> None:
    """Latency longer than the interval never overlaps calls."""
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=10, latency_ms=1000)}
    )
    async with AnyioScheduler() as scheduler:
        rxtasks.poll(server.get_task, "t").subscribe(scheduler=scheduler)
    spans = [(c.started, c.finished) for c in server.calls]
    assert all(f is not None and f <= s2 for (_, f), (s2, _) in itertools.pairwise(spans))
    assert [round(s, 6) for s, _ in spans] == [0.0, 1.01, 2.02]


async def test_timeout_operator_races_the_call(virtual_time: VirtualClock) -> None:
    """Reactivex's timeout runs on the same clock and cancels the hanging call."""
    server = FakeTaskServer({"t": [Step("working", 100), Step("completed", latency_ms=3600000)]})
    recorder = Recorder()
    async with AnyioScheduler() as scheduler:
        rxtasks.poll(server.get_task, "t").pipe(ops.timeout(2.0)).subscribe(
            recorder, scheduler=scheduler
        )
    (t0, _, _), (t1, kind, error) = recorder.events
    assert (t0, t1, kind) == (0.0, 2.0, "error")  # 2 s of silence after the first item
    assert isinstance(error, Exception)
    assert server.calls[-1].cancelled


async def test_error_after_dispose_is_not_delivered(virtual_time: VirtualClock) -> None:
    """A call that fails after its subscription was disposed reports nothing."""
    gate = anyio.Event()

    async def get_task(task_id: str) -> Task:
        with anyio.CancelScope(shield=True):
            await gate.wait()
        raise OSError("late")

    recorder = Recorder()
    async with AnyioScheduler() as scheduler:
        subscription = rxtasks.poll(get_task, "t").subscribe(recorder, scheduler=scheduler)
        await anyio.sleep(1)
        subscription.dispose()
        gate.set()
    assert recorder.events == []


# -- reactivex's AsyncIOScheduler, and no scheduler at all -----------------------------------


def asyncio_scheduler(anyio_backend: AnyioBackend) -> AsyncIOScheduler:
    """Return reactivex's AsyncIOScheduler on the running loop; skip the test on trio."""
    if anyio_backend[0] != "asyncio":
        pytest.skip("reactivex's AsyncIOScheduler needs asyncio")
    return AsyncIOScheduler(asyncio.get_running_loop())


async def test_poll_on_asyncio_scheduler(
    anyio_backend: AnyioBackend, virtual_time: VirtualClock
) -> None:
    """Existing asyncio Rx apps pass reactivex's AsyncIOScheduler."""
    server = FakeTaskServer({"t": [Step("working", 250), Step("completed")]})
    recorder = Recorder()
    scheduler = asyncio_scheduler(anyio_backend)
    rxtasks.poll(server.get_task, "t").subscribe(recorder, scheduler=scheduler)
    await recorder.done.wait()
    assert recorder.kinds() == [
        (0.0, "next", "working"),
        (0.25, "next", "completed"),
        (0.25, "completed", None),
    ]


async def test_dispose_on_asyncio_scheduler_cancels_the_call(
    anyio_backend: AnyioBackend, virtual_time: VirtualClock
) -> None:
    """On AsyncIOScheduler too, dispose cancels the in-flight call."""
    server = FakeTaskServer({"t": [Step("working", latency_ms=10000)]})
    recorder = Recorder()
    scheduler = asyncio_scheduler(anyio_backend)
    subscription = rxtasks.poll(server.get_task, "t").subscribe(recorder, scheduler=scheduler)
    await anyio.sleep(1)
    subscription.dispose()
    await anyio.sleep(20)
    assert [c.cancelled for c in server.calls] == [True]
    assert recorder.events == []


async def test_dispose_between_polls_on_asyncio_scheduler_makes_no_call(
    anyio_backend: AnyioBackend, virtual_time: VirtualClock
) -> None:
    """Disposed while the next call waits for its time: that call is never made.

    The next call waits in one loop callback (``call_later``); disposing cancels it.
    """
    server = FakeTaskServer({"t": [Step("working", 500), Step("working", 0), Step("completed")]})
    recorder = Recorder()
    scheduler = asyncio_scheduler(anyio_backend)
    subscription = rxtasks.poll(server.get_task, "t").subscribe(recorder, scheduler=scheduler)
    await anyio.sleep(0.25)
    subscription.dispose()
    await anyio.sleep(5)
    assert [round(c.started, 6) for c in server.calls] == [0.0]
    assert recorder.kinds() == [(0.0, "next", "working")]


async def test_interval_0_on_asyncio_scheduler_yields_between_polls(
    anyio_backend: AnyioBackend, virtual_time: VirtualClock
) -> None:
    """At interval 0 each call starts from a loop callback: other tasks run in between."""
    server = FakeTaskServer({"t": [*steps("working", "working", interval_ms=0), Step("completed")]})
    recorder = Recorder()
    seen_calls: list[int] = []  # how many calls another task saw at each of its turns

    async def other() -> None:
        while not recorder.done.is_set():
            seen_calls.append(len(server.calls))
            await asyncio.sleep(0)

    scheduler = asyncio_scheduler(anyio_backend)
    rxtasks.poll(server.get_task, "t").subscribe(recorder, scheduler=scheduler)
    await asyncio.gather(other(), recorder.done.wait())
    assert [status for _, kind, status in recorder.kinds() if kind == "next"] == [
        "working",
        "working",
        "completed",
    ]
    assert {1, 2} <= set(seen_calls)  # it ran after the first call and after the second


async def test_poll_without_scheduler(anyio_backend: AnyioBackend) -> None:
    """With no scheduler: the running asyncio loop, or a clear error on trio."""
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=10)})
    recorder = Recorder()
    rxtasks.poll(server.get_task, "t").subscribe(recorder)
    if anyio_backend[0] == "asyncio":
        await recorder.done.wait()
        assert [kind for _, kind, _ in recorder.events] == ["next", "next", "completed"]
    else:
        [(_, kind, error)] = recorder.events
        assert kind == "error"
        assert isinstance(error, SchedulerError)
        assert "AnyioScheduler" in str(error)


def test_poll_outside_any_loop_says_what_to_pass() -> None:
    """Subscribing with no scheduler and no loop fails with a message naming the fix."""
    server = FakeTaskServer({"t": steps("completed")})
    errors: list[Exception] = []
    rxtasks.poll(server.get_task, "t").subscribe(on_error=errors.append)
    [error] = errors
    assert isinstance(error, SchedulerError)
    assert "scheduler=" in str(error)
    assert "AnyioScheduler" in str(error)
    assert server.calls == []


def test_poll_on_a_scheduler_that_cannot_await() -> None:
    """A thread scheduler cannot run get_task: the error names it and the alternatives."""
    server = FakeTaskServer({"t": steps("completed")})
    errors: list[Exception] = []
    rxtasks.poll(server.get_task, "t").subscribe(
        on_error=errors.append, scheduler=TimeoutScheduler.singleton()
    )
    [error] = errors
    assert isinstance(error, SchedulerError)
    assert "TimeoutScheduler cannot await" in str(error)


async def test_poll_scheduler_argument_wins(virtual_time: VirtualClock) -> None:
    """poll(scheduler=...) overrides the scheduler given to subscribe."""
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=100)})
    recorder = Recorder()
    async with AnyioScheduler() as scheduler:
        rxtasks.poll(server.get_task, "t", scheduler=scheduler).subscribe(
            recorder, scheduler=TimeoutScheduler.singleton()
        )
    assert [kind for _, kind, _ in recorder.events] == ["next", "next", "completed"]


# -- from_async ----------------------------------------------------------------------------


async def test_from_async_awaits_once_per_subscription(virtual_time: VirtualClock) -> None:
    """Each subscription calls the function afresh; retry calls it again."""
    calls: list[float] = []

    async def flaky(x: int) -> int:
        calls.append(anyio.current_time())
        await anyio.sleep(1)
        if len(calls) < 3:
            raise OSError("try again")
        return x * 2

    source = rxtasks.from_async(flaky, 21).pipe(ops.retry(3))
    assert [x async for x in rxtasks.iterate(source)] == [42]
    assert calls == [0.0, 1.0, 2.0]


async def test_from_async_dispose_cancels(virtual_time: VirtualClock) -> None:
    """Disposing the subscription cancels the await."""
    cancelled = anyio.Event()

    async def slow() -> int:
        try:
            await anyio.sleep(100)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        return 1

    recorder = Recorder()
    async with AnyioScheduler() as scheduler:
        subscription = rxtasks.from_async(slow).subscribe(recorder, scheduler=scheduler)
        await anyio.sleep(1)
        subscription.dispose()
        await cancelled.wait()
    assert recorder.events == []


def test_from_async_on_test_scheduler() -> None:
    """from_async emits its result and completes, in virtual time."""

    async def answer() -> int:
        return 42

    scheduler = TestScheduler()
    observer = scheduler.start(lambda: rxtasks.from_async(answer))
    assert observer.messages == [on_next(200, 42), on_completed(200)]


async def test_zip_of_polls(virtual_time: VirtualClock) -> None:
    """Composition: reactivex.zip pairs the results of two polls."""
    server = FakeTaskServer(
        {
            "a": steps("working", "completed", interval_ms=100),
            "b": steps("working", "completed", interval_ms=300),
        }
    )
    pairs = reactivex.zip(rxtasks.poll(server.get_task, "a"), rxtasks.poll(server.get_task, "b"))
    async with rxtasks.open_stream(pairs) as items:
        assert [(a.status, b.status) async for a, b in items] == [
            ("working", "working"),
            ("completed", "completed"),
        ]


async def test_await_poll_gives_the_final_state(anyio_backend: AnyioBackend) -> None:
    """On asyncio, awaiting the observable (reactivex's own __await__) gives the end."""
    if anyio_backend[0] != "asyncio":
        pytest.skip("reactivex's Observable.__await__ is asyncio's")
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=10)})
    final = await rxtasks.poll(server.get_task, "t")
    assert final.status == "completed"
    assert len(server.calls) == 2
