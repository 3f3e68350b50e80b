"""`AnyioScheduler`: a reactivex scheduler on an anyio task group (push; asyncio and trio)."""

from __future__ import annotations

import heapq
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

import anyio
from reactivex import abc

from ._clock import LoopClockScheduler, TimerEntry
from ._errors import SchedulerError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from anyio.abc import TaskGroup

__all__ = ["AnyioScheduler", "SchedulerStatistics"]

T = TypeVar("T")

# Dropped entries stay in the heap until popped; rebuild it when they dominate, so that
# disposing many subscriptions does not keep their actions (and observers) alive.
_COMPACT_MIN = 64

# The exception groups task groups wrap errors in (trio's and asyncio's alike).
_WRAPPERS = (ExceptionGroup, BaseExceptionGroup)

# Idle workers kept for the next burst of awaits; more than this end.
_MAX_IDLE = 32


@dataclass(frozen=True)
class SchedulerStatistics:
    """What an `AnyioScheduler` holds at one moment.

    Attributes:
        timers_pending: Timers queued and not disposed.
        awaits_in_flight: Awaits (``get_task`` calls) scheduled and not finished.
        workers: Tasks of the scheduler's task group (busy, idle or waiting for a timer).
    """

    timers_pending: int
    awaits_in_flight: int
    workers: int = 0


class _Worker:
    """One task of the scheduler's group; its scope ends it with the await it runs."""

    __slots__ = ("scope", "wakeup")

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.wakeup: anyio.Event | None = None


class AnyioScheduler(LoopClockScheduler):
    """A reactivex scheduler that runs on an anyio task group, on asyncio or trio.

    Use it as an async context manager: the task group lives in the ``async with``
    block, so nothing outlives it. The scheduler keeps one timer queue for all its
    timers and a small pool of worker tasks: a worker fires due timers, runs awaits, and
    one of them at a time sleeps until the next timer is due. Thousands of polled tasks
    cost heap entries, not sleeping tasks; a poll whose ``get_task`` returns at once
    costs one checkpoint, as an ``async for`` loop would. Disposing an await in flight
    cancels it. The clock is the event loop's: under trio's ``MockClock`` everything
    runs in virtual time.

    Like a task group, leaving the block waits until no timer is pending and no await is
    in flight; call `cancel` to drop everything instead. An exception raised by an action
    cancels the scheduler and is re-raised from the ``async with`` (unwrapped when it is
    the only one).

    The scheduler must be used from the event loop thread that entered it.

    Example:
        >>> async def main() -> None:
        ...     async with rxtasks.AnyioScheduler() as scheduler:
        ...         rxtasks.poll(get_task, "t1").subscribe(print, scheduler=scheduler)
        ...     # every task polled on the scheduler has reached a terminal status here
        >>> anyio.run(main, backend="trio")
    """

    def __init__(self) -> None:
        super().__init__()
        self._heap: list[tuple[float, int, TimerEntry]] = []
        self._seq = 0
        self._timers = 0  # live entries in the heap
        self._calls: deque[_AnyioCall[Any]] = deque()  # awaits waiting for a worker
        self._awaits = 0  # awaits scheduled and not finished
        self._idle: list[_Worker] = []
        self._workers = 0
        self._coming = 0  # workers woken or started that have not looked at the queues yet
        self._in_sync = False  # a worker runs synchronous code and will look again
        # When an await's outcome arrived: timers scheduled while it is delivered count
        # from then, not from the end of the on_next chain, so the chain adds no drift.
        self._step_start: float | None = None
        # Workers asleep until a timer is due, and when. A sleep is a plain sleep, not one in a
        # cancel scope (which cost a scope per poll): a timer due earlier than every sleeper
        # gets a worker of its own instead of cutting a sleep short.
        self._sleepers: dict[_Worker, float] = {}
        self._task_group: TaskGroup | None = None
        self._thread: int | None = None
        self._closing = False

    async def __aenter__(self) -> Self:
        if self._task_group is not None or self._closing:
            raise SchedulerError("an AnyioScheduler can be entered only once")
        self._bind_loop()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._thread = threading.get_ident()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        try:
            self._closing = True
            if self._finished():
                self._wake_all()  # else the last timer or await to end wakes everyone
        finally:
            try:
                suppress = await self._task_group.__aexit__(exc_type, exc, tb)
            except BaseExceptionGroup as group:
                # Unwrap the task group's own wrapper, never a group the code raised.
                if type(group) not in _WRAPPERS or len(group.exceptions) != 1:
                    raise
                single = group.exceptions[0]
            else:
                return suppress
            finally:
                self._task_group = None
                self._drop_all()
        raise single

    def cancel(self) -> None:
        """Drop every pending timer and cancel every await in flight; the block exits.

        An await that shields itself from cancellation (such as `poll`'s best-effort
        ``cancel_task``) still runs to its end; the block waits for it.
        """
        task_group = self._task_group
        if task_group is None:
            return
        task_group.cancel_scope.cancel()
        for _, _, entry in self._heap:
            entry.drop()
        self._heap.clear()
        self._timers = 0
        calls, self._calls = self._calls, deque()
        for call in calls:
            task_group.start_soon(self._run_alone, call)

    def statistics(self) -> SchedulerStatistics:
        """Return how many timers are pending, awaits in flight, and workers."""
        return SchedulerStatistics(self._timers, self._awaits, self._workers)

    # -- scheduling ---------------------------------------------------------------------

    def schedule_after(
        self, delay: float, action: abc.ScheduledAction[Any], state: Any
    ) -> abc.DisposableBase:
        """Queue ``action`` to run ``delay`` seconds (>= 0) from now on the loop's clock."""
        self._check_running()
        entry = TimerEntry(self, action, state)
        start = self._step_start
        due = (self._clock() if start is None else start) + delay
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, entry))
        self._timers += 1
        if not self._in_sync and not self._covered(due):
            self._summon()
        return entry

    def timer_dropped(self) -> None:
        """Count a disposed timer; rebuild the queue when dropped ones dominate it."""
        self._timers -= 1
        heap = self._heap
        if len(heap) > _COMPACT_MIN and len(heap) > 2 * self._timers:
            heap[:] = [item for item in heap if item[2].is_queued()]
            heapq.heapify(heap)
        if self._closing and self._finished():
            self._wake_all()

    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> abc.DisposableBase:
        """Await ``func()`` on a worker; disposing cancels it."""
        self._check_running()
        call = _AnyioCall(self, func, on_result, on_error)
        self._awaits += 1
        assert self._task_group is not None
        if self._task_group.cancel_scope.cancel_called:
            # Shutting down: the workers are gone. In a task of its own the await is
            # cancelled at its first checkpoint, unless it shields itself.
            self._task_group.start_soon(self._run_alone, call)
            return call
        self._calls.append(call)
        if not self._in_sync:
            self._summon()
        return call

    def deliver(self, callback: Callable[[T], None], value: T) -> None:
        """Call an await's callback from its worker, which looks at the queues after."""
        self._in_sync = True
        self._step_start = self._clock()
        try:
            callback(value)
        finally:
            self._in_sync = False
            self._step_start = None

    def await_finished(self) -> None:
        """Count an await that ended (done, failed, cancelled, or dropped unstarted)."""
        self._awaits -= 1
        if self._closing and self._finished():
            self._wake_all()

    # -- workers ------------------------------------------------------------------------

    def _summon(self) -> None:
        """Make sure a worker will look at the queues soon: wake one, or start one."""
        if self._coming:
            return
        self._coming += 1
        if self._idle:
            worker = self._idle.pop()
            assert worker.wakeup is not None
            worker.wakeup.set()
        else:
            assert self._task_group is not None
            self._workers += 1
            self._task_group.start_soon(self._work, name=f"{self!r} worker")

    async def _work(self) -> None:
        worker = _Worker()
        try:
            with anyio.CancelScope() as worker.scope:
                self._coming -= 1
                await self._work_loop(worker)
        finally:
            self._workers -= 1
            if worker in self._idle:
                self._idle.remove(worker)
            task_group = self._task_group
            if (
                task_group is not None
                and not task_group.cancel_scope.cancel_called
                and (self._calls or self._timers)
            ):
                self._summon()  # this worker was cancelled with its await: replace it

    async def _run_alone(self, call: _AnyioCall[Any]) -> None:
        worker = _Worker()
        with anyio.CancelScope() as worker.scope:
            await call.run(worker)

    async def _work_loop(self, worker: _Worker) -> None:
        heap = self._heap
        calls = self._calls
        clock = self._clock
        sleep = self._sleep
        checkpointed = True
        while True:
            if heap and heap[0][0] <= clock():
                if not checkpointed:
                    # Timers that fell due while this worker ran synchronously: let the
                    # rest of the program run first, as the SDK's loop does between polls.
                    await sleep(0)
                    checkpointed = True
                    continue
                self._run_due_timers(clock())
            if calls:
                call = calls.popleft()
                if calls or (self._timers and not self._covered(heap[0][0])):
                    self._summon()  # this worker is busy now: more work needs another
                await call.run(worker)
                checkpointed = False
                continue
            if self._closing and self._finished():
                self._wake_all()
                return
            if self._timers:
                while not heap[0][2].is_queued():  # dropped timers: not worth a wait
                    heapq.heappop(heap)
                due = heap[0][0]
                if not self._covered(due):
                    self._sleepers[worker] = due
                    try:
                        await sleep(max(due - clock(), 0.0))
                    finally:
                        del self._sleepers[worker]
                    # The timer is due even if the clock reads a hair earlier (asyncio
                    # fires early by its resolution; looptime rounds to microseconds).
                    self._run_due_timers(max(clock(), due))
                    checkpointed = True
                    continue
            if len(self._idle) >= _MAX_IDLE:
                return
            worker.wakeup = anyio.Event()
            self._idle.append(worker)
            await worker.wakeup.wait()
            self._coming -= 1
            checkpointed = True

    def _run_due_timers(self, now: float) -> None:
        heap = self._heap
        self._in_sync = True
        try:
            while heap:
                due, _, entry = heap[0]
                if not entry.is_queued():
                    heapq.heappop(heap)
                    continue
                if due > now:
                    break
                heapq.heappop(heap)
                self._timers -= 1
                entry.run(self)
        finally:
            self._in_sync = False

    def _covered(self, due: float) -> bool:
        """Whether a worker is asleep until ``due`` or earlier (and will look then)."""
        sleepers = self._sleepers
        if not sleepers:
            return False
        return min(sleepers.values()) <= due

    def _finished(self) -> bool:
        return not self._timers and not self._awaits

    def _wake_all(self) -> None:
        """Closing and nothing left: wake every idle and sleeping worker, so they end."""
        for worker in self._idle:
            if worker.wakeup is not None and not worker.wakeup.is_set():
                self._coming += 1
                worker.wakeup.set()
        self._idle.clear()
        for sleeper in self._sleepers:  # closing: a sleeper toward a dropped timer ends now
            if sleeper.scope is not None:
                sleeper.scope.cancel()

    def _drop_all(self) -> None:
        for _, _, entry in self._heap:
            entry.drop()
        self._heap.clear()
        self._timers = 0
        while self._calls:
            self._calls.popleft().drop()

    def _check_running(self) -> None:
        if self._task_group is None:
            raise SchedulerError(
                "the AnyioScheduler is not running: use it inside"
                " `async with AnyioScheduler() as scheduler:`"
            )
        if self._thread != threading.get_ident():
            raise SchedulerError(
                "an AnyioScheduler must be used from the thread of its event loop; from"
                " other threads, hand work over with anyio.from_thread"
            )


class _AnyioCall(abc.DisposableBase, Generic[T]):
    """An await scheduled on an `AnyioScheduler`: queued, then run by a worker."""

    __slots__ = ("_func", "_on_error", "_on_result", "_owner", "_worker", "state")

    # state: 0 queued, 1 running, 2 ended (done, disposed or dropped)

    def __init__(
        self,
        owner: AnyioScheduler,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        self._owner = owner
        self._func = func
        self._on_result = on_result
        self._on_error = on_error
        self._worker: _Worker | None = None
        self.state = 0

    async def run(self, worker: _Worker) -> None:
        """Await the function in ``worker``'s task and deliver its outcome."""
        if self.state:  # disposed while queued
            return
        self.state = 1
        self._worker = worker
        owner = self._owner
        try:
            result = await self._func()
        except Exception as exc:  # noqa: BLE001 -- routed to on_error, the Rx contract
            if self.state == 1:
                self._end()
                owner.deliver(self._on_error, exc)
            return
        except BaseException:
            if self.state == 1:
                self._end()
            raise
        if self.state == 1:
            self._end()
            owner.deliver(self._on_result, result)

    def _end(self) -> None:
        self.state = 2
        self._worker = None
        self._owner.await_finished()

    def drop(self) -> None:
        """Forget a queued await without running it (the scheduler is shutting down)."""
        if self.state == 0:
            self.state = 2

    def dispose(self) -> None:
        if self.state == 0:
            self.state = 2
            self._owner.await_finished()
        elif self.state == 1:
            worker = self._worker
            self._end()
            if worker is not None and worker.scope is not None:
                worker.scope.cancel()  # the worker ends with the await it runs
