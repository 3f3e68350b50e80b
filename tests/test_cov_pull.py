"""iterate()'s pull scheduler: work handed over by other threads, timers that move, errors."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import Subject

import rxtasks
from rxtasks import IteratorBusyError
from rxtasks.testing import FakeTaskServer, Step, steps

from ._helpers import in_thread

if TYPE_CHECKING:
    from .conftest import VirtualClock


def now() -> float:
    """The loop's time, to the microsecond."""
    return round(anyio.current_time(), 6)


def late(seconds: float, value: str) -> reactivex.Observable[str]:
    """One item after ``seconds``: work on iterate()'s scheduler that keeps it waiting."""
    return reactivex.timer(seconds).pipe(ops.map(lambda _: value))


async def test_timers_scheduled_from_another_thread_fire_on_time(
    virtual_time: VirtualClock,
) -> None:
    """A source that schedules from a thread: its timers wake the consumer's longer wait."""

    def subscribe(
        observer: abc.ObserverBase[str], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        assert scheduler is not None

        def emit(value: str, *, last: bool = False) -> abc.ScheduledAction[Any]:
            def action(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
                observer.on_next(value)
                if last:
                    observer.on_completed()

            return action

        def schedule() -> None:
            scheduler.schedule_relative(0.5, emit("early"))
            scheduler.schedule_relative(3.0, emit("later", last=True))

        in_thread(schedule)
        return Disposable()

    source = reactivex.merge(reactivex.create(subscribe), late(2.0, "late"))
    seen = [(item, now()) async for item in rxtasks.iterate(source)]
    assert seen == [("early", 0.5), ("late", 2.0), ("later", 3.0)]


async def test_a_poll_subscribed_in_another_thread_runs_in_the_consumer(
    virtual_time: VirtualClock,
) -> None:
    """A poll subscribed from a thread hands its first call over; the consumer makes it."""
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=100)})
    loop_thread = threading.get_ident()
    call_threads: list[int] = []

    async def get_task(task_id: str) -> Any:
        call_threads.append(threading.get_ident())
        return await server.get_task(task_id)

    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return in_thread(
            lambda: rxtasks.poll(get_task, "t").subscribe(observer, scheduler=scheduler)
        )

    source = reactivex.merge(reactivex.create(subscribe), late(2.0, "late"))
    seen = [(getattr(item, "status", item), now()) async for item in rxtasks.iterate(source)]
    assert seen == [("working", 0.0), ("completed", 0.1), ("late", 2.0)]
    assert call_threads == [loop_thread, loop_thread]


async def test_a_timer_replaced_during_the_wait_is_skipped(virtual_time: VirtualClock) -> None:
    """A debounce drops the timer the consumer waits for and queues a later one: that fires."""
    subject = Subject[str]()

    async def produce() -> None:
        await anyio.sleep(0.1)
        subject.on_next("a")
        await anyio.sleep(0.5)
        subject.on_next("b")

    source = reactivex.merge(subject, late(5.0, "end")).pipe(ops.debounce(1.0), ops.take(1))
    seen: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        seen += [(item, now()) async for item in rxtasks.iterate(source)]
    assert seen == [("b", 1.6)]


class Boom(Exception):
    """An action's error."""


async def test_action_error_during_a_call_is_raised_unwrapped(virtual_time: VirtualClock) -> None:
    """A timer action that raises while a call is in flight comes out of anext as itself."""
    server = FakeTaskServer({"t": [Step("working", latency_ms=10_000)]})

    def subscribe(
        _observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        assert scheduler is not None

        def explode(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
            raise Boom

        return scheduler.schedule_relative(1.0, explode)

    source = reactivex.merge(rxtasks.poll(server.get_task, "t"), reactivex.create(subscribe))
    with pytest.raises(Boom):
        await anext(rxtasks.iterate(source))
    assert now() == 1.0
    assert [call.cancelled for call in server.calls] == [True]


async def test_a_second_reader_of_iterate_is_refused(virtual_time: VirtualClock) -> None:
    """Two tasks cannot drive one iterate() iterator at once; the first keeps reading."""
    items = rxtasks.iterate(late(1.0, "one"))
    got: list[str] = []

    async def first_reader() -> None:
        got.append(await anext(items))

    async with anyio.create_task_group() as tg:
        tg.start_soon(first_reader)
        await anyio.sleep(0.5)
        with pytest.raises(IteratorBusyError, match="being read by another task"):
            await anext(items)
    assert got == ["one"]


async def test_aclose_before_the_first_item_subscribes_nothing() -> None:
    """Closing an iterator never read subscribes nothing; reading it then just stops."""
    subscribed: list[bool] = []

    def subscribe(
        _observer: abc.ObserverBase[int], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        subscribed.append(True)
        return Disposable()

    items = rxtasks.iterate(reactivex.create(subscribe))
    await items.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(items)
    assert subscribed == []


async def test_items_from_a_thread_after_aclose_are_dropped() -> None:
    """An item a thread emitted that lands after aclose() is never delivered."""

    def subscribe(
        observer: abc.ObserverBase[int], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        observer.on_next(1)
        in_thread(lambda: observer.on_next(2))
        return Disposable()

    items = rxtasks.iterate(reactivex.create(subscribe))
    assert await anext(items) == 1
    await items.aclose()
    await anyio.wait_all_tasks_blocked()  # the thread's hand-over has landed
    with pytest.raises(StopAsyncIteration):
        await anext(items)


def test_a_timer_handed_over_after_the_loop_ended_is_dropped(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    """A thread scheduling on iterate()'s scheduler after its loop ended: nothing runs or raises."""
    backend, options = anyio_backend
    schedulers: list[abc.SchedulerBase] = []

    def subscribe(
        observer: abc.ObserverBase[int], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        assert scheduler is not None
        schedulers.append(scheduler)
        observer.on_next(1)
        observer.on_completed()
        return Disposable()

    async def main() -> list[int]:
        return [item async for item in rxtasks.iterate(reactivex.create(subscribe))]

    assert anyio.run(main, backend=backend, backend_options=options) == [1]
    ran: list[bool] = []
    [scheduler] = schedulers

    def action(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        ran.append(True)

    timer = in_thread(lambda: scheduler.schedule_relative(0.1, action))
    timer.dispose()
    timer.dispose()
    assert ran == []


async def test_aclose_from_another_task_ends_the_reader_after_its_call(
    virtual_time: VirtualClock,
) -> None:
    """aclose() during a call that nothing can interrupt ends the reader once the call returns."""
    server = FakeTaskServer({"t": [Step("working", latency_ms=1000)]})
    items = rxtasks.iterate(rxtasks.poll(server.get_task, "t"))
    ended: list[float] = []

    async def reader() -> None:
        with pytest.raises(StopAsyncIteration):
            await anext(items)
        ended.append(now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.5)
        await items.aclose()
    assert ended == [1.0]
    assert [(call.cancelled, call.finished) for call in server.calls] == [(False, 1.0)]
