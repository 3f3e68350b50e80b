"""The pull scheduler: timers and awaits that run only while the consumer asks for items."""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
from reactivex import abc

from ._clock import LoopClockScheduler, TimerEntry
from ._errors import StalledError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["PullScheduler"]

T = TypeVar("T")

_COMPACT_MIN = 64


class _PullAwait(abc.DisposableBase, Generic[T]):
    """An await queued on the pull scheduler; it runs inline in the consumer's task."""

    __slots__ = ("disposed", "func", "on_error", "on_result")

    def __init__(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        self.func = func
        self.on_result = on_result
        self.on_error = on_error
        self.disposed = False

    async def run(self) -> None:
        """Await the function and deliver its outcome, unless disposed meanwhile."""
        await _run_await(self)

    def dispose(self) -> None:
        # An await in flight runs in the consumer's own task, so it cannot be cancelled
        # from here; its outcome is dropped. Cancelling the consumer cancels it.
        self.disposed = True


async def _run_await(job: _PullAwait[Any]) -> None:
    # Also inlined in PullScheduler.run_until, the hot path: one coroutine frame less.
    if job.disposed:
        return
    try:
        result = await job.func()
    except Exception as exc:  # noqa: BLE001 -- routed to on_error, the Rx contract
        if not job.disposed:
            job.on_error(exc)
        return
    if not job.disposed:
        job.on_result(result)


class PullScheduler(LoopClockScheduler):
    """A scheduler with no background task, driven by its consumer (`iterate`).

    Timers wait in a queue and awaits run inline, both only inside `run_until`, which
    the consumer calls from ``__anext__``. While the consumer is suspended nothing runs,
    so a consumer that stops iterating leaves no work behind, and cancelling the consumer
    cancels the await in flight. Awaits run one at a time, in order.

    It must be created inside the event loop (it reads the loop's clock).
    """

    #: Awaits run inline in the consumer's task: no timer fires while one is in flight.
    awaits_inline = True

    def __init__(self) -> None:
        super().__init__()
        # (due, seq, start, delay, entry); seq keeps FIFO order among equal due times.
        # `start` and `delay` are kept so that when the consumer took no time the wait
        # is `sleep(delay)`, exactly what the SDK's loop sleeps, to the last bit.
        self._heap: list[tuple[float, int, float, float, TimerEntry]] = []
        self._awaits: deque[_PullAwait[Any]] = deque()  # due at once, run before timers
        # Timers with no delay (every poll at interval 0) skip the heap: due at once, in
        # order, after any heap timer already due.
        self._due: deque[TimerEntry] = deque()
        self._seq = 0
        self._timers = 0
        self._sleep_scope: anyio.CancelScope | None = None
        self._woken = False
        #: Whether `run_until` waits for a timer (and `wake` would cut it short).
        self.sleeping = False
        # Whether items may arrive from other tasks (pushed statuses): only then are the
        # waits for timers interruptible, which costs a cancel scope each.
        self._interruptible = False
        # When the await being delivered returned: timers scheduled meanwhile count from
        # then, so the on_next chain adds no drift to the schedule.
        self._step_start: float | None = None
        self._bind_loop()

    def schedule_after(
        self, delay: float, action: abc.ScheduledAction[Any], state: Any
    ) -> abc.DisposableBase:
        """Queue ``action`` to run ``delay`` seconds (>= 0) from now on the loop's clock."""
        entry = TimerEntry(self, action, state)
        self._timers += 1
        if not delay:
            self._due.append(entry)
            return entry
        self._seq += 1
        start = self._step_start
        if start is None:
            start = self._clock()
        heapq.heappush(self._heap, (start + delay, self._seq, start, delay, entry))
        return entry

    def timer_dropped(self) -> None:
        """Count a disposed timer; rebuild the queue when dropped ones dominate it."""
        self._timers -= 1
        heap = self._heap
        if len(heap) > _COMPACT_MIN and len(heap) > 2 * self._timers:
            heap[:] = [item for item in heap if item[4].is_queued()]
            heapq.heapify(heap)

    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> abc.DisposableBase:
        """Queue an await; it runs inline in the consumer's task, in order."""
        job = _PullAwait(func, on_result, on_error)
        self._awaits.append(job)
        return job

    @property
    def pending(self) -> int:
        """How many timers and awaits are queued (dropped ones included until popped)."""
        return len(self._heap) + len(self._due) + len(self._awaits)

    def expect_pushes(self) -> None:
        """Make the waits for timers interruptible: items may come from other tasks."""
        self._interruptible = True

    def wake(self) -> None:
        """Cut short the wait for the next timer: something arrived from elsewhere."""
        if self._sleep_scope is not None:
            self._woken = True
            self._sleep_scope.cancel()

    async def run_until(self, ready: Callable[[], bool]) -> None:
        """Run queued work until ``ready()`` is true; the caller knows it is false now.

        Awaits run first, in order; then timers in due order. Every timer, even one
        already due, waits at least one checkpoint, so a poll interval of 0 still lets
        the rest of the program run between polls. A wait for a later timer ends early
        when `wake` is called (an item pushed by another task).

        Raises:
            StalledError: If nothing is queued and ``ready()`` is still false.
        """
        heap = self._heap
        due_now = self._due
        awaits = self._awaits
        clock = self._clock
        while True:
            if awaits:
                # _run_await, inlined: this is every poll's path.
                job = awaits.popleft()
                if not job.disposed:
                    try:
                        result = await job.func()
                    except Exception as exc:  # noqa: BLE001 -- routed to on_error
                        if not job.disposed:
                            job.on_error(exc)
                    else:
                        if not job.disposed:
                            self._step_start = clock()
                            try:
                                job.on_result(result)
                            finally:
                                self._step_start = None
            elif due_now and not (heap and heap[0][0] <= clock()):
                entry = due_now.popleft()
                if not entry.is_queued():  # dropped
                    continue
                await self._sleep(0)  # a checkpoint, as the SDK's loop sleeps 0
                if not entry.is_queued():  # dropped while we yielded
                    continue
                entry.owner = None
                self._timers -= 1
                entry.run(self)
            elif not heap:
                raise StalledError(
                    "iterate(): the observable has not completed and no work is queued on"
                    " iterate()'s scheduler: it waits on something iterate() cannot drive (a"
                    " subject fed by another task, a source bound to another scheduler,"
                    " never()); use `async with rxtasks.open_stream(observable) as items:`"
                )
            else:
                due, _, start, delay, entry = heap[0]
                if not entry.is_queued():  # dropped
                    heapq.heappop(heap)
                    continue
                now = clock()
                if now < due and not self._interruptible:
                    await self._sleep(delay if now == start else due - now)
                elif now < due:
                    # Wait for the timer, interruptibly (see `wake`). A plain sleep, not a
                    # cancel-scope deadline, so that it ends exactly when the SDK's would.
                    with anyio.CancelScope() as scope:
                        self._sleep_scope = scope
                        self.sleeping = True
                        try:
                            await self._sleep(delay if now == start else due - now)
                        finally:
                            self.sleeping = False
                    self._sleep_scope = None
                    if self._woken:
                        self._woken = False
                        if ready():
                            return
                        continue
                else:
                    await self._sleep(0)
                heapq.heappop(heap)
                if not entry.is_queued():  # dropped while we waited
                    continue
                entry.owner = None
                self._timers -= 1
                entry.run(self)
            if ready():
                return

    async def run_awaits(self) -> None:
        """Drop the queued timers and run the queued awaits (cleanup after disposal)."""
        for _, _, _, _, entry in self._heap:
            entry.drop()
        for entry in self._due:
            entry.drop()
        self._heap = []
        self._due.clear()
        self._timers = 0
        awaits, self._awaits = self._awaits, deque()
        for job in awaits:
            await job.run()
