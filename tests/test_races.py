"""Regression tests for the races and lifecycle gaps of issue 9 (its cases 1 to 16).

Each test names the case it covers (1 to 16). The timing of every race is forced with
explicit synchronisation (events, a server task, a thread handshake), never with sleeps
that let things settle; a hang on a virtual clock is cut short by ``anyio.fail_after``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import math
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.from_thread
import anyio.lowlevel
import pytest
import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import BehaviorSubject, ReplaySubject, Subject
from reactivex.testing import TestScheduler

import rxtasks
from rxtasks import AnyioScheduler, PollPolicy, TaskExpiredError
from rxtasks.testing import FakeTaskServer, Step, Task, TaskNotFound, steps

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence

    from .conftest import AnyioBackend, VirtualClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def now() -> float:
    """The virtual time, to the microsecond."""
    return round(anyio.current_time(), 6)


def pushed(task_id: str, status: str, updated_s: float, interval_ms: int | None = None) -> Task:
    """A result as a server pushes it in notifications/tasks/status."""
    return Task(task_id, status, interval_ms, None, T0, T0 + timedelta(seconds=updated_s))


async def push_at(subject: Subject[Any], *events: tuple[float, Any]) -> None:
    """Push each result at its virtual time."""
    for at, result in events:
        await anyio.sleep_until(at)
        subject.on_next(result)


def is_final(result: Any) -> bool:
    """Whether a result is terminal."""
    return rxtasks.is_terminal(result.status)


def is_working(result: Any) -> bool:
    """Whether a result is not terminal."""
    return not is_final(result)


def starts(server: FakeTaskServer, task_id: str) -> list[float]:
    """The call times of one task, to the microsecond."""
    return [round(call.started, 6) for call in server.calls_for(task_id)]


async def drain(items: AsyncIterator[Any], into: list[Any]) -> None:
    """Append every item to ``into`` as it comes, so that items before an error are kept."""
    async for item in items:
        into.append(item)  # noqa: PERF401 -- a comprehension would lose them on error


def _raise(error: Exception) -> None:
    raise error


class Canceller:
    """A cancel_task that records its calls (task id, loop time) and signals the first."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.sent = anyio.Event()

    async def __call__(self, task_id: str) -> None:
        """Record the call."""
        self.calls.append((task_id, round(anyio.current_time(), 6)))
        self.sent.set()


# -- case 1: disposing a call cancels that call only ------------------------------------------


class EagerPushServer:
    """A server that pushes a task's state right behind its own ``tasks/get`` answer.

    ``get_task`` first writes its request (a checkpoint, as writing to a transport is), then
    waits for the answer from the server task, which sends the answer and at once pushes
    the same state as a notification: the push reaches the poller before the caller's task
    has resumed with the answer. Use it in a ``with`` block, which closes its channel.
    """

    def __init__(self, scripts: Mapping[str, Sequence[Step]], pushes: Subject[Any]) -> None:
        self.fake = FakeTaskServer(scripts)
        self._pushes = pushes
        self._requests, self._inbox = anyio.create_memory_object_stream[tuple[anyio.Event, Any]](
            math.inf
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self._requests.close()
        self._inbox.close()

    async def get_task(self, task_id: str) -> Any:
        """Send ``tasks/get`` and wait for its answer."""
        await anyio.lowlevel.checkpoint()  # the request is written
        result = await self.fake.get_task(task_id)
        answered = anyio.Event()
        self._requests.send_nowait((answered, result))
        await answered.wait()
        return result

    async def serve(self) -> None:
        """Answer each request, then push the same state right behind the answer."""
        async for answered, result in self._inbox:
            answered.set()
            self._pushes.on_next(result)


async def test_push_right_behind_the_answer_loses_no_poll() -> None:
    """Case 1: a push racing its own answer cancels that call only; every task completes."""
    pushes = Subject[Any]()
    scripts = {f"t{i}": steps("working", "working", "completed", interval_ms=10) for i in range(8)}
    completed: list[str] = []
    with anyio.fail_after(2), EagerPushServer(scripts, pushes) as server:
        source = rxtasks.poll_many(server.get_task, list(scripts), notifications=pushes)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            async with rxtasks.open_stream(source) as results:
                completed += [r.taskId async for r in results if is_final(r)]
            tg.cancel_scope.cancel()  # stop serving
    assert sorted(completed) == sorted(scripts)


async def test_disposing_a_call_that_returned_spares_the_queued_calls() -> None:
    """Case 1: a call disposed after it returned, before its worker resumed, spares the rest."""
    results: list[str] = []
    started = anyio.Event()
    answered = anyio.Event()

    async def answer_a() -> str:
        started.set()
        await answered.wait()
        return "a"

    async def slow(name: str) -> str:
        await anyio.sleep(0.01)
        return name

    with anyio.fail_after(2):
        async with AnyioScheduler() as scheduler:
            call_a = scheduler.schedule_await(answer_a, results.append, _raise)
            await started.wait()
            answered.set()  # A's get_task can return now; its worker has not resumed yet
            call_a.dispose()
            # Two calls queued behind it: on trio, whichever worker runs first, A's worker
            # picks one of them up, so the race is decided the same way on every run.
            for name in "bc":
                scheduler.schedule_await(functools.partial(slow, name), results.append, _raise)
    assert sorted(results) == ["b", "c"]


# -- case 2: items from another thread inside reactivex.merge ----------------------------------


def test_thread_items_inside_merge_do_not_deadlock(anyio_backend: AnyioBackend) -> None:
    """Case 2: a thread emitting into merge while the loop emits too: all items, no deadlock.

    The loop runs in a thread of its own, since a deadlocked loop cannot time itself out.
    """
    backend, options = anyio_backend
    holding = threading.Event()  # set by the loop: the producer may go on
    producer_thread: list[threading.Thread] = []
    got: list[object] = []
    loop_thread: list[int] = []

    async def main() -> None:
        loop_thread.append(threading.get_ident())
        subject = Subject[object]()
        token = anyio.lowlevel.current_token()
        inside = anyio.Event()  # the producer holds merge's lock

        def produce() -> None:
            for i in range(5):
                subject.on_next(i)
            subject.on_completed()

        def hold(item: object) -> None:
            # Downstream of merge, so under its lock: the producer stays in there until
            # the loop is about to emit into merge itself.
            if threading.current_thread() in producer_thread and item == 0:
                anyio.from_thread.run_sync(inside.set, token=token)
                holding.wait(5)

        async def get_task(task_id: str) -> dict[str, str]:
            # merge has subscribed to both inputs by now: start the producer.
            thread = threading.Thread(target=produce, daemon=True)
            producer_thread.append(thread)
            thread.start()
            await inside.wait()
            holding.set()
            return {"taskId": task_id, "status": "completed"}

        source = reactivex.merge(subject, rxtasks.poll(get_task, "t")).pipe(ops.do_action(hold))
        async with rxtasks.open_stream(source) as items:
            await drain(items, got)

    failures: list[BaseException] = []

    def run() -> None:
        try:
            anyio.run(main, backend=backend, backend_options=options)
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the test's thread
            failures.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(3)
    assert not runner.is_alive(), "deadlock: the loop and the producer wait for each other"
    if failures:
        raise failures[0]
    assert [item for item in got if isinstance(item, int)] == [0, 1, 2, 3, 4]
    assert {"taskId": "t", "status": "completed"} in got


# -- case 3: iterate() and a timer added during its sleep --------------------------------------


async def test_earlier_timer_added_during_a_sleep_fires_on_time(virtual_time: VirtualClock) -> None:
    """Case 3: a push reschedules a task earlier than iterate() sleeps to; it is polled then."""
    server = FakeTaskServer(
        {t: steps("working", "completed", interval_ms=1000) for t in "ab"}, epoch=T0
    )
    subject = Subject[Any]()
    source = rxtasks.poll_many(server.get_task, "ab", notifications=subject).pipe(
        ops.filter(is_final)
    )
    done: list[tuple[float, str]] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            # Not terminal, so filtered out: nothing wakes the consumer's sleep toward 1.0.
            tg.start_soon(push_at, subject, (0.3, pushed("a", "working", 0.3, 100)))
            async for result in rxtasks.iterate(source):
                done.append((now(), result.taskId))  # noqa: PERF401 -- kept on error
    assert done == [(0.4, "a"), (1.0, "b")]
    assert starts(server, "a") == [0.0, 0.4]
    assert starts(server, "b") == [0.0, 1.0]


# -- case 4: a CancelledError that get_task raises itself (asyncio) ----------------------------


@pytest.fixture
def asyncio_only(anyio_backend: AnyioBackend) -> None:
    """Skip on trio, where get_task cannot raise a cancellation of its own."""
    if anyio_backend[0] != "asyncio":
        pytest.skip(
            "case 4 is asyncio only: trio.Cancelled cannot be raised by get_task itself"
            " (it cannot be created or awaited from a foreign future)"
        )


class CancelledGetTask:
    """A get_task awaiting a future that someone else cancels; keeps what it raised."""

    def __init__(self) -> None:
        self.future: asyncio.Future[Task] = asyncio.get_running_loop().create_future()
        self.awaiting = anyio.Event()
        self.raised: list[BaseException] = []

    async def __call__(self, task_id: str) -> Task:
        """Await the future; record the CancelledError it raises."""
        self.awaiting.set()
        try:
            return await self.future
        except asyncio.CancelledError as exc:
            self.raised.append(exc)
            raise


async def test_cancelled_error_of_get_task_is_that_polls_error(asyncio_only: None) -> None:
    """Case 4: on AnyioScheduler, on_error gets that CancelledError; the body goes on."""
    get_task = CancelledGetTask()
    errors: list[BaseException] = []
    failed = anyio.Event()

    def on_error(error: BaseException) -> None:
        errors.append(error)
        failed.set()

    body_finished = False
    with anyio.fail_after(5):
        async with AnyioScheduler() as scheduler:
            rxtasks.poll(get_task, "t").subscribe(on_error=on_error, scheduler=scheduler)
            await get_task.awaiting.wait()
            get_task.future.cancel()  # someone else cancels what get_task awaits
            await failed.wait()
            body_finished = True
    assert body_finished, "the rest of the AnyioScheduler body was skipped"
    assert len(errors) == 1
    assert errors[0] is get_task.raised[0]


async def test_cancelled_error_of_get_task_is_raised_by_iterate(asyncio_only: None) -> None:
    """Case 4: through iterate, get_task's own CancelledError is raised from async for.

    This holds on base already, where the call runs inline in the consumer's task; it
    guards a pull bridge that runs calls in a task of their own (see case 9).
    """
    get_task = CancelledGetTask()

    async def cancel_it() -> None:
        await get_task.awaiting.wait()
        get_task.future.cancel()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_it)
            with pytest.raises(asyncio.CancelledError) as info:
                async for _ in rxtasks.iterate(rxtasks.poll(get_task, "t")):
                    pass
            assert info.value is get_task.raised[0]


# -- case 5: open_stream's iterator with several readers ---------------------------------------


def stream_closed_error() -> type[Exception]:
    """``rxtasks.StreamClosedError``, added by the fix (looked up late: absent on base)."""
    error: type[Exception] = getattr(rxtasks, "StreamClosedError")  # noqa: B009
    return error


async def test_two_readers_share_the_items_and_both_end(virtual_time: VirtualClock) -> None:
    """Case 5: two tasks reading at once are both woken; each item goes to one; both end."""
    subject = Subject[int]()
    got: list[list[int]] = [[], []]
    ended: list[float] = []

    async def read(items: AsyncIterator[int], into: list[int], started: anyio.Event) -> None:
        started.set()
        await drain(items, into)  # ends with StopAsyncIteration
        ended.append(now())

    with anyio.fail_after(10):
        async with rxtasks.open_stream(subject) as items, anyio.create_task_group() as tg:
            for into in got:
                started = anyio.Event()
                tg.start_soon(read, items, into, started)
                await started.wait()  # that reader now waits in __anext__
            await push_at(subject, *((1.0 + i, i) for i in range(4)))
            await anyio.sleep_until(5)
            subject.on_completed()
    assert sorted(got[0] + got[1]) == [0, 1, 2, 3]
    assert ended == [5.0, 5.0]


async def test_reader_outliving_the_block_gets_stream_closed_error() -> None:
    """Case 5: a reader still waiting when the block ends raises StreamClosedError."""
    outcome: list[Exception] = []

    async def read(items: AsyncIterator[int], started: anyio.Event) -> None:
        started.set()
        try:
            await anext(items)
        except Exception as exc:  # noqa: BLE001 -- checked below
            outcome.append(exc)

    with anyio.fail_after(2):
        # The task group outlives the stream's block: it waits for the reader after it.
        async with anyio.create_task_group() as tg, rxtasks.open_stream(Subject[int]()) as items:
            started = anyio.Event()
            tg.start_soon(read, items, started)
            await started.wait()
    [error] = outcome
    closed = stream_closed_error()
    assert isinstance(error, closed)
    assert issubclass(closed, rxtasks.StreamError)
    assert issubclass(closed, anyio.ClosedResourceError)


# -- case 6: iterate() and sources that end while being subscribed -----------------------------


async def _no_task(task_id: str) -> Task:
    raise AssertionError("no task is polled")


def _replayed() -> reactivex.Observable[int]:
    subject = ReplaySubject[int]()
    subject.on_next(1)
    subject.on_next(2)
    subject.on_completed()
    return subject


def _created() -> reactivex.Observable[int]:
    def subscribe(
        observer: abc.ObserverBase[int], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        observer.on_next(1)
        observer.on_next(2)
        observer.on_completed()
        return Disposable()

    return reactivex.create(subscribe)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda: rxtasks.poll_many(_no_task, []), [], id="poll_many-no-ids"),
        pytest.param(lambda: BehaviorSubject(7).pipe(ops.take(1)), [7], id="behavior-take-1"),
        pytest.param(_replayed, [1, 2], id="completed-replay-subject"),
        pytest.param(_created, [1, 2], id="create-emits-and-completes"),
    ],
)
async def test_iterate_a_source_that_ends_during_subscribe(
    make: Callable[[], reactivex.Observable[int]], expected: list[int]
) -> None:
    """Case 6: items and the end delivered while subscribing: the items, then the end."""
    with anyio.fail_after(5):
        assert [item async for item in rxtasks.iterate(make())] == expected


def _failing_subject(error: Exception) -> reactivex.Observable[int]:
    subject = Subject[int]()
    subject.on_error(error)
    return subject


def _created_failing(error: Exception) -> reactivex.Observable[int]:
    def subscribe(
        observer: abc.ObserverBase[int], _scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        observer.on_next(1)
        observer.on_error(error)
        return Disposable()

    return reactivex.create(subscribe)


@pytest.mark.parametrize(
    "make",
    [
        # reactivex.throw ignores its own scheduler argument and always schedules on the
        # subscriber's one, so under iterate it fails through the queue, not synchronously.
        pytest.param(reactivex.throw, id="throw"),
        pytest.param(_failing_subject, id="failed-subject"),
        pytest.param(_created_failing, id="create-fails"),
    ],
)
async def test_iterate_a_source_that_fails_during_subscribe(
    make: Callable[[Exception], reactivex.Observable[int]],
) -> None:
    """Case 6: a synchronous error is raised as the same object, not as StalledError."""
    error = ValueError("boom")
    with anyio.fail_after(5), pytest.raises(ValueError, match="boom") as info:
        async for _ in rxtasks.iterate(make(error)):
            pass
    assert info.value is error


# -- case 7: no cancel_task for a task whose terminal result ended the subscription -------------


def _filter_first(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
    return source.pipe(ops.filter(is_final), ops.first())


@pytest.mark.parametrize(
    "operator",
    [
        pytest.param(lambda: ops.first(is_final), id="first-terminal"),
        pytest.param(lambda: _filter_first, id="filter-first"),
        pytest.param(lambda: ops.take(3), id="take-to-terminal"),
        pytest.param(
            lambda: ops.take_while(is_working, inclusive=True),
            id="take_while-inclusive",
        ),
    ],
)
async def test_no_cancel_when_the_terminal_result_ends_the_subscription(
    operator: Callable[[], Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]]],
) -> None:
    """Case 7: an operator ending on the terminal result sends no cancel for a finished task."""
    server = FakeTaskServer({"t": steps("working", "working", "completed", interval_ms=10)})
    cancel = Canceller()
    seen: list[Any] = []
    with anyio.fail_after(5):
        async with AnyioScheduler() as scheduler:
            source = rxtasks.poll(server.get_task, "t", cancel_task=cancel)
            source.pipe(operator()).subscribe(seen.append, scheduler=scheduler)
    assert seen[-1].status == "completed"
    assert cancel.calls == []


async def test_poll_many_sends_no_cancel_for_the_task_that_ended_it() -> None:
    """Case 7: poll_many ended by a task's terminal result cancels the others, not that one."""
    server = FakeTaskServer(
        {"done": steps("working", "completed", interval_ms=10), "busy": [Step("working", 10)]}
    )
    cancel = Canceller()
    source = rxtasks.poll_many(server.get_task, ["done", "busy"], cancel_task=cancel)
    seen: list[Any] = []
    with anyio.fail_after(5):
        async with AnyioScheduler() as scheduler:
            source.pipe(ops.filter(is_final), ops.first()).subscribe(
                seen.append, scheduler=scheduler
            )
    assert [r.taskId for r in seen] == ["done"]
    assert [task_id for task_id, _ in cancel.calls] == ["busy"]


# -- case 8: break out of iterate() with notifications -----------------------------------------


@pytest.mark.parametrize("many", [False, True], ids=["poll", "poll_many"])
async def test_break_out_of_iterate_drops_the_push_subscription(many: bool) -> None:
    """Case 8: after a bare break, the notifications subject has no observer left."""
    server = FakeTaskServer({"t": steps("working", "working", "completed", interval_ms=100)})
    subject = Subject[Any]()
    for _ in range(3):
        if many:
            source = rxtasks.poll_many(server.get_task, ["t"], notifications=subject)
        else:
            source = rxtasks.poll(server.get_task, "t", notifications=subject)
        async for _ in rxtasks.iterate(source):
            break
    gc.collect()
    assert subject.observers == []


# -- case 9: iterate() races a call in flight --------------------------------------------------


async def test_terminal_push_ends_iterate_during_a_hung_call(virtual_time: VirtualClock) -> None:
    """Case 9: a terminal push while get_task hangs is yielded at once; the call is cancelled."""
    server = FakeTaskServer(
        {"t": [Step("working", 100), Step("working", latency_ms=math.inf)]}, epoch=T0
    )
    subject = Subject[Any]()
    seen: list[tuple[float, object]] = []
    source = rxtasks.poll(server.get_task, "t", notifications=subject)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(push_at, subject, (0.5, pushed("t", "completed", 0.5)))
            async for result in rxtasks.iterate(source):
                seen.append((now(), result.status))  # noqa: PERF401 -- kept on error
    assert seen == [(0.0, "working"), (0.5, "completed")]
    assert [(c.started, c.cancelled) for c in server.calls] == [(0.0, False), (0.1, True)]


async def test_timeout_operator_interrupts_a_hung_call(virtual_time: VirtualClock) -> None:
    """Case 9: ops.timeout around a hung poll raises at its deadline; the call is cancelled."""
    server = FakeTaskServer({"t": [Step("working", latency_ms=math.inf)]})
    source = rxtasks.poll(server.get_task, "t").pipe(ops.timeout(2.0))
    with anyio.fail_after(10), pytest.raises(Exception, match="Timeout"):
        async for _ in rxtasks.iterate(source):
            pass
    assert now() == 2.0
    assert [(c.started, c.cancelled) for c in server.calls] == [(0.0, True)]


async def test_take_until_interrupts_a_hung_call(virtual_time: VirtualClock) -> None:
    """Case 9: take_until(timer) around a hung poll ends the iteration at the timer."""
    server = FakeTaskServer({"t": [Step("working", latency_ms=math.inf)]})
    source = rxtasks.poll(server.get_task, "t").pipe(ops.take_until(reactivex.timer(2.0)))
    with anyio.fail_after(10):
        assert [r async for r in rxtasks.iterate(source)] == []
    assert now() == 2.0
    assert [(c.started, c.cancelled) for c in server.calls] == [(0.0, True)]


# -- case 10: iterate() ended by an operator sends cancel_task ---------------------------------


@pytest.mark.parametrize(
    ("operator", "at"),
    [
        pytest.param(lambda: ops.take(1), 0.0, id="take"),
        pytest.param(lambda: ops.take_until(reactivex.timer(0.05)), 0.05, id="take_until"),
    ],
)
async def test_operator_ending_iterate_sends_cancel(
    operator: Callable[[], Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]]],
    at: float,
    virtual_time: VirtualClock,
) -> None:
    """Case 10: an operator ending the subscription early sends cancel_task, no aclose needed."""
    server = FakeTaskServer({"t": steps("working", "working", "completed", interval_ms=100)})
    cancel = Canceller()
    source = rxtasks.poll(server.get_task, "t", cancel_task=cancel).pipe(operator())
    with anyio.fail_after(5):
        statuses = [r.status async for r in rxtasks.iterate(source)]
    assert statuses == ["working"]
    assert cancel.calls == [("t", at)]


# -- case 11: poll_many with ids that fail part-way --------------------------------------------


async def test_failing_ids_iterable_ends_the_started_polls(virtual_time: VirtualClock) -> None:
    """Case 11: ids raising part-way fail the stream at once and stop the polls started."""
    server = FakeTaskServer({t: steps("working", "completed", interval_ms=1000) for t in "ab"})
    error = OSError("the ids broke")

    def ids() -> Iterator[str]:
        yield "a"
        yield "b"
        raise error

    errors: list[Exception] = []
    with anyio.fail_after(10):
        async with AnyioScheduler() as scheduler:
            rxtasks.poll_many(server.get_task, ids()).subscribe(
                on_error=errors.append, scheduler=scheduler
            )
    assert errors == [error]
    assert errors[0] is error
    assert now() == 0.0  # the block did not wait for the started polls
    assert [c for c in server.calls if c.started > 0] == []


# -- case 12: a push from another thread -------------------------------------------------------


async def test_push_from_another_thread_is_handled_on_the_loop() -> None:
    """Case 12: a push from a thread raises nothing there; the loop handles it, polling goes on.

    The push comes while the poll waits for its timer. (During a call in flight, base
    code cancels the call's scope from the pushing thread, which fails half-way and leaves
    the loop unable to time anything out, this test's deadline included.)
    """
    server = FakeTaskServer({"t": [Step("working", 3_600_000), Step("completed")]})
    subject = Subject[Any]()
    loop_thread = threading.get_ident()
    emitted_on: list[int] = []
    thread_errors: list[BaseException] = []
    pushed_all = threading.Event()

    def push_from_thread(result: Task) -> None:
        try:
            subject.on_next(result)
        except BaseException as exc:  # noqa: BLE001 -- the pushing thread must get nothing
            thread_errors.append(exc)
        finally:
            pushed_all.set()

    source = rxtasks.poll(server.get_task, "t", notifications=subject).pipe(
        ops.do_action(lambda _: emitted_on.append(threading.get_ident()))
    )
    statuses: list[object] = []
    async with rxtasks.open_stream(source) as results:
        first = await anext(results)  # the next poll is due in an hour
        statuses.append(first.status)
        # The server's state changed at the same instant, with a new hint: not stale.
        push = dataclasses.replace(first, status="input_required", pollInterval=100)
        threading.Thread(target=push_from_thread, args=(push,), daemon=True).start()
        # Keep the loop busy until the thread is done, so that a virtual clock stays put
        # rather than jumping an hour ahead to the next poll.
        while not pushed_all.is_set():
            await anyio.lowlevel.checkpoint()
        with anyio.fail_after(2):
            statuses += [r.status async for r in results]
    assert thread_errors == []
    assert statuses == ["working", "input_required", "completed"]
    assert set(emitted_on) == {loop_thread}
    assert len(server.calls) == 2  # the push rescheduled the poll: 100 ms, not an hour


# -- case 13: dispose after the AnyioScheduler block was left ----------------------------------


async def test_dispose_after_the_block_sends_cancel_soon() -> None:
    """Case 13: disposing after the block ended raises nothing; the cancel is still sent."""
    server = FakeTaskServer({"t": [Step("working", 100)]})
    cancel = Canceller()
    subscriptions: list[abc.DisposableBase] = []
    with anyio.move_on_after(0.5):  # an outer deadline leaves the block
        async with AnyioScheduler() as scheduler:
            source = rxtasks.poll(server.get_task, "t", cancel_task=cancel)
            subscriptions.append(source.subscribe(scheduler=scheduler))
            await anyio.sleep_forever()
    [subscription] = subscriptions
    subscription.dispose()
    with anyio.fail_after(5):
        await cancel.sent.wait()
    assert [task_id for task_id, _ in cancel.calls] == ["t"]


# -- case 14: cancel_task under reactivex's TestScheduler --------------------------------------


def test_cancel_task_is_called_on_test_scheduler() -> None:
    """Case 14: disposing a poll on a TestScheduler calls its cancel_task."""
    scheduler = TestScheduler()
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=1000)},
        clock=lambda: scheduler.clock,
    )
    cancelled: list[str] = []

    async def cancel_task(task_id: str) -> None:
        cancelled.append(task_id)  # completes without suspending

    observer = scheduler.start(
        lambda: rxtasks.poll(server.get_task, "t", cancel_task=cancel_task), disposed=201.5
    )
    scheduler.advance_by(10)
    assert len(observer.messages) == 2  # two results, disposed before the third
    assert cancelled == ["t"]


# -- case 15: the ttl backstop and a server clock that runs behind -----------------------------


def behind() -> datetime:
    """A server clock three hours behind the client's."""
    return datetime.now(UTC) - timedelta(hours=3)


async def test_ttl_backstop_ignores_server_clock_skew(virtual_time: VirtualClock) -> None:
    """Case 15: a task the server still answers for within its ttl is polled to the end."""
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=300)},
        ttl_ms=60_000,
        epoch=behind(),
    )
    source = rxtasks.poll(server.get_task, "t", policy=PollPolicy())
    with anyio.fail_after(10):
        statuses = [r.status async for r in rxtasks.iterate(source)]
    assert statuses == ["working", "working", "completed"]
    assert starts(server, "t") == [0.0, 0.3, 0.6]


async def test_not_found_after_the_ttl_is_expiry_despite_skew(virtual_time: VirtualClock) -> None:
    """Case 15: with a skewed server, "not found" after the ttl (client's clock) is expiry."""
    script = [*steps("working", "working", "working", interval_ms=300), Step(latency_ms=200)]
    server = FakeTaskServer({"t": script}, ttl_ms=1000, epoch=behind())
    source = rxtasks.poll(server.get_task, "t", policy=PollPolicy())
    with anyio.fail_after(10), pytest.raises(TaskExpiredError) as info:
        async for _ in rxtasks.iterate(source):
            pass
    assert isinstance(info.value.__cause__, TaskNotFound)
    assert now() == 1.1
    assert starts(server, "t") == [0.0, 0.3, 0.6, 0.9]


# -- case 16: a pipeline error pending when the body raises ------------------------------------


async def test_body_error_carries_the_pending_pipeline_error() -> None:
    """Case 16: the body's exception propagates with the undelivered pipeline error noted."""
    subject = Subject[int]()
    pipeline_error = ConnectionError("the pipeline broke")
    with pytest.raises(KeyError) as info:  # noqa: PT012
        async with rxtasks.open_stream(subject):
            subject.on_error(pipeline_error)
            raise KeyError("the body failed")
    notes: list[str] = getattr(info.value, "__notes__", [])
    assert any("the pipeline broke" in note for note in notes), notes


# -- found by the randomized interleavings (nox -s stress) ------------------------------------


async def test_leaving_the_block_with_calls_waiting_for_a_slot(virtual_time: VirtualClock) -> None:
    """An outer deadline ends a block whose poll_many calls wait for max_in_flight: no error."""
    scripts = {
        f"t{i}": [Step("working", 100, latency_ms=1000), Step("completed")] for i in range(4)
    }
    server = FakeTaskServer(scripts)
    results: list[Any] = []
    scheduler = AnyioScheduler()
    with anyio.move_on_after(0.5):
        async with scheduler:
            rxtasks.poll_many(server.get_task, list(scripts), max_in_flight=1).subscribe(
                results.append, scheduler=scheduler
            )
            await anyio.sleep_forever()
    assert anyio.current_time() == 0.5
    assert results == []
    assert scheduler.statistics() == rxtasks.SchedulerStatistics(0, 0, 0)
    assert [call.cancelled for call in server.calls] == [True]
