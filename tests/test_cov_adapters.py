"""reactivex's own schedulers under a poll: AsyncIOScheduler and threads, TestScheduler's edges."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from reactivex import abc
from reactivex import operators as ops
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler

import rxtasks
from rxtasks.testing import FakeTaskServer, Task, steps

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed


class Recorder(abc.ObserverBase[Any]):
    """An observer that records what it gets, and the thread it gets it in."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.threads: set[int] = set()
        # Bound to the loop that first waits on them (asyncio only).
        self.first = asyncio.Event()
        self.done = asyncio.Event()

    def on_next(self, value: Any) -> None:
        """Record an item."""
        self.events.append(("next", value))
        self.threads.add(threading.get_ident())
        self.first.set()

    def on_error(self, error: Exception) -> None:
        """Record the error."""
        self.events.append(("error", error))
        self.threads.add(threading.get_ident())
        self.done.set()

    def on_completed(self) -> None:
        """Record the end."""
        self.events.append(("completed", None))
        self.threads.add(threading.get_ident())
        self.done.set()


# -- AsyncIOScheduler: subscribed from outside its loop --------------------------------------


def test_asyncio_scheduler_subscribed_outside_its_loop_hands_the_call_over() -> None:
    """A poll subscribed where its loop does not run calls get_task on that loop, in order."""
    loop = asyncio.new_event_loop()
    try:
        answers = [Task("t", "working", 0), Task("t", "completed")]
        call_threads: list[int] = []

        async def get_task(_task_id: str) -> Task:
            call_threads.append(threading.get_ident())
            return answers.pop(0)

        recorder = Recorder()
        rxtasks.poll(get_task, "t").subscribe(recorder, scheduler=AsyncIOScheduler(loop))
        assert recorder.events == []  # nothing runs until the loop does
        loop.run_until_complete(asyncio.wait_for(recorder.done.wait(), 5))
    finally:
        loop.close()
    assert [kind for kind, _ in recorder.events] == ["next", "next", "completed"]
    assert call_threads == [threading.get_ident()] * 2


def test_asyncio_scheduler_on_a_closed_loop_calls_nothing() -> None:
    """A poll on the AsyncIOScheduler of a closed loop never calls get_task and raises nothing."""
    loop = asyncio.new_event_loop()
    loop.close()
    calls: list[str] = []

    async def get_task(task_id: str) -> Task:
        calls.append(task_id)
        return Task(task_id, "completed")

    recorder = Recorder()
    subscription = rxtasks.poll(get_task, "t").subscribe(recorder, scheduler=AsyncIOScheduler(loop))
    subscription.dispose()
    assert calls == []
    assert recorder.events == []


def test_asyncio_scheduler_push_from_another_thread_is_handled_on_the_loop() -> None:
    """A push from a thread reaches the observer in the loop's thread and ends the poll."""
    loop = asyncio.new_event_loop()
    subject = Subject[Any]()
    recorder = Recorder()

    async def get_task(task_id: str) -> Task:
        return Task(task_id, "working", 3_600_000)

    async def main() -> None:
        rxtasks.poll(get_task, "t", notifications=subject).subscribe(
            recorder, scheduler=AsyncIOScheduler(loop)
        )
        await asyncio.wait_for(recorder.first.wait(), 5)  # the next poll is due in an hour
        thread = threading.Thread(target=subject.on_next, args=(Task("t", "completed"),))
        thread.start()
        thread.join()
        await asyncio.wait_for(recorder.done.wait(), 5)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert [(kind, getattr(value, "status", None)) for kind, value in recorder.events] == [
        ("next", "working"),
        ("next", "completed"),
        ("completed", None),
    ]
    assert recorder.threads == {threading.get_ident()}


def test_asyncio_scheduler_call_disposed_before_it_starts_is_never_made() -> None:
    """Disposing before the loop starts the call's task: get_task is never called."""
    loop = asyncio.new_event_loop()
    calls: list[str] = []

    async def get_task(task_id: str) -> Task:
        calls.append(task_id)
        return Task(task_id, "completed")

    async def main() -> None:
        scheduler = AsyncIOScheduler(loop)
        subscription = rxtasks.poll(get_task, "disposed").subscribe(scheduler=scheduler)
        subscription.dispose()
        # Each call starts in a task of its own, in order: once a later poll has ended,
        # the disposed call's task has had its turn.
        done = asyncio.Event()
        rxtasks.poll(get_task, "later").subscribe(on_completed=done.set, scheduler=scheduler)
        await asyncio.wait_for(done.wait(), 5)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert calls == ["later"]


# -- TestScheduler: what get_task raises beyond Exception ------------------------------------


def test_cancelled_error_of_get_task_is_the_polls_error_on_test_scheduler() -> None:
    """Under virtual time nothing cancels the poll: a CancelledError is get_task's own error."""
    scheduler = TestScheduler()
    raised = asyncio.CancelledError("server-side cancel")

    async def get_task(_task_id: str) -> Task:
        raise raised

    recorder = Recorder()
    rxtasks.poll(get_task, "t").subscribe(recorder, scheduler=scheduler)
    scheduler.start()
    assert recorder.events == [("error", raised)]


class Abort(BaseException):
    """Neither an error nor a cancellation."""


def test_base_exception_of_get_task_propagates_on_test_scheduler() -> None:
    """A BaseException that is no cancellation leaves the scheduler; the poll emits nothing."""
    scheduler = TestScheduler()
    calls: list[str] = []

    async def get_task(task_id: str) -> Task:
        calls.append(task_id)
        raise Abort

    recorder = Recorder()
    rxtasks.poll(get_task, "t").subscribe(recorder, scheduler=scheduler)
    with pytest.raises(Abort):
        scheduler.start()
    assert calls == ["t"]
    assert recorder.events == []


def status_of(task: Any) -> object:
    """A result's status."""
    return task.status


def test_pushes_race_the_polls_on_test_scheduler() -> None:
    """Under virtual time too, a push ends the poll at once: no call is made for it."""
    scheduler = TestScheduler()
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=2000)},
        clock=lambda: scheduler.clock,
    )
    pushes = scheduler.create_hot_observable(on_next(201, Task("t", "completed")))
    statuses = rxtasks.poll(server.get_task, "t", notifications=pushes).pipe(ops.map(status_of))
    observer = scheduler.start(lambda: statuses)
    assert observer.messages == [
        on_next(200, "working"),
        on_next(201, "completed"),
        on_completed(201),
    ]
    assert [call.started for call in server.calls] == [200.0]
