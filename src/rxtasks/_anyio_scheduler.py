"""`AnyioScheduler`: a reactivex scheduler on an anyio task group (push; asyncio and trio)."""

from __future__ import annotations

import heapq
import math
import threading
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


@dataclass(frozen=True)
class SchedulerStatistics:
    """What an `AnyioScheduler` holds at one moment.

    Attributes:
        timers_pending: Timers queued and not disposed.
        awaits_in_flight: Awaits (``get_task`` calls) started and not finished.
    """

    timers_pending: int
    awaits_in_flight: int


class AnyioScheduler(LoopClockScheduler):
    """A reactivex scheduler that runs on an anyio task group, on asyncio or trio.

    Use it as an async context manager: the task group lives in the ``async with``
    block, so nothing outlives it. One task keeps one timer queue for every timer of the
    scheduler (thousands of polled tasks cost heap entries, not sleeping tasks); each
    await runs in its own task of the group and disposing it cancels that task's scope.
    The clock is ``anyio.current_time()``: under trio's ``MockClock`` everything runs in
    virtual time.

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
        self._awaits = 0
        self._task_group: TaskGroup | None = None
        self._thread: int | None = None
        self._sleep_scope: anyio.CancelScope | None = None
        self._closing = False

    async def __aenter__(self) -> Self:
        if self._task_group is not None or self._closing:
            raise SchedulerError("an AnyioScheduler can be entered only once")
        self._bind_loop()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._thread = threading.get_ident()
        task_group.start_soon(self._run_timers, name=f"{self!r} timers")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        self._closing = True
        self._wake()
        try:
            return await self._task_group.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            self._task_group = None
            self._drop_all()

    def cancel(self) -> None:
        """Drop every pending timer and cancel every await in flight; the block exits."""
        self._drop_all()
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    def statistics(self) -> SchedulerStatistics:
        """Return how many timers are pending and how many awaits are in flight."""
        return SchedulerStatistics(timers_pending=self._timers, awaits_in_flight=self._awaits)

    def schedule_after(
        self, delay: float, action: abc.ScheduledAction[Any], state: Any
    ) -> abc.DisposableBase:
        """Queue ``action`` to run ``delay`` seconds (>= 0) from now on the loop's clock."""
        self._check_running()
        entry = TimerEntry(self, action, state)
        due = self._clock() + delay
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, entry))
        self._timers += 1
        sleep_scope = self._sleep_scope
        if sleep_scope is not None and due < sleep_scope.deadline:
            sleep_scope.deadline = due
        return entry

    def timer_dropped(self) -> None:
        """Count a disposed timer; rebuild the queue when dropped ones dominate it."""
        self._timers -= 1
        heap = self._heap
        if len(heap) > _COMPACT_MIN and len(heap) > 2 * self._timers:
            heap[:] = [item for item in heap if item[2].owner is not None]
            heapq.heapify(heap)

    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> abc.DisposableBase:
        """Await ``func()`` in a new task of the group; disposing cancels it."""
        self._check_running()
        assert self._task_group is not None
        call = _AnyioCall(func, on_result, on_error)
        self._awaits += 1
        self._task_group.start_soon(self._run_call, call, name="rxtasks await")
        return call

    async def _run_call(self, call: _AnyioCall[Any]) -> None:
        try:
            await call.run()
        finally:
            self._awaits -= 1
            if self._closing and not self._awaits:
                self._wake()

    async def _run_timers(self) -> None:
        heap = self._heap
        current_time = self._clock
        while True:
            now = current_time()
            while heap:
                due, _, entry = heap[0]
                if entry.action is None:  # dropped
                    heapq.heappop(heap)
                    continue
                if due > now:
                    break
                heapq.heappop(heap)
                self._timers -= 1
                entry.run(self)
            if not heap and self._closing and not self._awaits:
                return
            with anyio.CancelScope(deadline=heap[0][0] if heap else math.inf) as sleep_scope:
                self._sleep_scope = sleep_scope
                await anyio.sleep_forever()
            self._sleep_scope = None

    def _wake(self) -> None:
        if self._sleep_scope is not None:
            self._sleep_scope.cancel()

    def _drop_all(self) -> None:
        for _, _, entry in self._heap:
            entry.drop()
        self._heap.clear()
        self._timers = 0

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
    __slots__ = ("_func", "_on_error", "_on_result", "_scope", "disposed")

    def __init__(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        self._func = func
        self._on_result = on_result
        self._on_error = on_error
        self._scope: anyio.CancelScope | None = None
        self.disposed = False

    async def run(self) -> None:
        if self.disposed:
            return
        outcome: tuple[T] | Exception | None = None
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                outcome = (await self._func(),)
            except Exception as exc:  # noqa: BLE001 -- routed to on_error, the Rx contract
                outcome = exc
        self._scope = None
        if outcome is None or self.disposed:
            return
        if isinstance(outcome, Exception):
            self._on_error(outcome)
        else:
            self._on_result(outcome[0])

    def dispose(self) -> None:
        self.disposed = True
        if self._scope is not None:
            self._scope.cancel()
