"""poll_many fed from other threads, and notifications that fail."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import anyio
from reactivex import abc
from reactivex.subject import Subject

import rxtasks
from rxtasks import AnyioScheduler
from rxtasks.testing import FakeTaskServer, Step, Task, steps

from ._helpers import in_thread

if TYPE_CHECKING:
    import pytest

    from .conftest import VirtualClock


class Recorder(abc.ObserverBase[Any]):
    """Records statuses by task, the end, and the threads it was called in."""

    def __init__(self) -> None:
        self.items: list[tuple[str, object]] = []
        self.end: list[object] = []
        self.threads: set[int] = set()
        self.done = anyio.Event()

    def on_next(self, value: Any) -> None:
        """Record an item."""
        self.items.append((value.taskId, value.status))
        self.threads.add(threading.get_ident())

    def on_error(self, error: Exception) -> None:
        """Record the error."""
        self.end.append(error)
        self.threads.add(threading.get_ident())
        self.done.set()

    def on_completed(self) -> None:
        """Record the end."""
        self.end.append("completed")
        self.threads.add(threading.get_ident())
        self.done.set()


async def test_ids_and_their_end_from_another_thread(virtual_time: VirtualClock) -> None:
    """Ids and the completion of the ids arriving from a thread are handled in the loop."""
    server = FakeTaskServer({t: steps("working", "completed", interval_ms=100) for t in "ab"})
    ids = Subject[str]()
    recorder = Recorder()

    def feed() -> None:
        ids.on_next("a")
        ids.on_next("b")
        ids.on_completed()

    async with AnyioScheduler() as scheduler:
        rxtasks.poll_many(server.get_task, ids).subscribe(recorder, scheduler=scheduler)
        in_thread(feed)
        await recorder.done.wait()
    assert sorted(recorder.items) == [
        ("a", "completed"),
        ("a", "working"),
        ("b", "completed"),
        ("b", "working"),
    ]
    assert recorder.end == ["completed"]
    assert recorder.threads == {threading.get_ident()}


async def test_ids_error_from_another_thread_ends_everything() -> None:
    """An error of the ids from a thread ends the stream in the loop and cancels every call."""
    calling = anyio.Event()
    cancelled: list[str] = []

    async def get_task(task_id: str) -> Task:
        calling.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(task_id)
        return Task(task_id, "never")  # sleep_forever only ends by cancellation

    ids = Subject[str]()
    recorder = Recorder()
    failure = ConnectionError("ids broke")
    async with AnyioScheduler() as scheduler:
        rxtasks.poll_many(get_task, ids).subscribe(recorder, scheduler=scheduler)
        ids.on_next("a")
        await calling.wait()
        in_thread(lambda: ids.on_error(failure))
        await recorder.done.wait()
    assert recorder.end == [failure]
    assert recorder.threads == {threading.get_ident()}
    assert cancelled == ["a"]


async def test_ids_from_a_thread_landing_after_dispose_are_ignored() -> None:
    """Ids and an error a thread sent just before the stream was disposed change nothing."""
    server = FakeTaskServer({"a": steps("completed")})
    ids = Subject[str]()
    recorder = Recorder()
    async with AnyioScheduler() as scheduler:
        subscription = rxtasks.poll_many(server.get_task, ids).subscribe(
            recorder, scheduler=scheduler
        )

        def feed_then_fail() -> None:
            ids.on_next("a")
            ids.on_error(ConnectionError("too late"))

        in_thread(feed_then_fail)
        subscription.dispose()  # before the hand-overs land
        await anyio.wait_all_tasks_blocked()  # now they have
    assert server.calls == []
    assert (recorder.items, recorder.end) == ([], [])


async def test_pushes_from_another_thread_reach_their_task(virtual_time: VirtualClock) -> None:
    """A push from a thread is routed to its task in the loop, ending it without another call."""
    server = FakeTaskServer({t: steps("working", "completed", interval_ms=60_000) for t in "ab"})
    pushes = Subject[Any]()
    recorder = Recorder()
    async with AnyioScheduler() as scheduler:
        rxtasks.poll_many(server.get_task, "ab", notifications=pushes).subscribe(
            recorder, scheduler=scheduler
        )
        await anyio.sleep(1)  # both answered "working"; their next polls are a minute away
        in_thread(lambda: pushes.on_next(Task("a", "completed")))
        in_thread(lambda: pushes.on_next(Task("b", "completed")))
        await recorder.done.wait()
    assert recorder.items == [
        ("a", "working"),
        ("b", "working"),
        ("a", "completed"),
        ("b", "completed"),
    ]
    assert recorder.end == ["completed"]
    assert anyio.current_time() == 1
    assert len(server.calls) == 2


async def test_failing_notifications_leave_every_poll_on(
    virtual_time: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """poll_many's notifications failing is logged; every task is polled to its end as before."""
    server = FakeTaskServer({t: steps("working", "completed", interval_ms=100) for t in "ab"})
    pushes = Subject[Any]()
    recorder = Recorder()
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        async with AnyioScheduler() as scheduler:
            rxtasks.poll_many(server.get_task, "ab", notifications=pushes).subscribe(
                recorder, scheduler=scheduler
            )
            pushes.on_error(ConnectionError("stream lost"))
    assert sorted(recorder.items) == [
        ("a", "completed"),
        ("a", "working"),
        ("b", "completed"),
        ("b", "working"),
    ]
    assert recorder.end == ["completed"]
    assert "notifications failed" in caplog.text
    assert "stream lost" in caplog.text


async def test_a_bounded_poll_many_takes_work_from_other_threads(
    virtual_time: VirtualClock,
) -> None:
    """With max_in_flight, ids from a thread still go through the loop, one call at a time."""
    server = FakeTaskServer({t: [Step("completed", latency_ms=100)] for t in "abc"})
    ids = Subject[str]()
    recorder = Recorder()

    def feed() -> None:
        for task_id in "abc":
            ids.on_next(task_id)
        ids.on_completed()

    async with AnyioScheduler() as scheduler:
        rxtasks.poll_many(server.get_task, ids, max_in_flight=1).subscribe(
            recorder, scheduler=scheduler
        )
        in_thread(feed)
        await recorder.done.wait()
    assert recorder.items == [("a", "completed"), ("b", "completed"), ("c", "completed")]
    assert server.max_in_flight == 1
    assert [round(call.started, 6) for call in server.calls] == [0.0, 0.1, 0.2]
