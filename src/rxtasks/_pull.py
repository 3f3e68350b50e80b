"""The pull scheduler: timers and awaits that run only while the consumer asks for items."""

from __future__ import annotations

import heapq
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

    __slots__ = ("_func", "_on_error", "_on_result", "disposed")

    def __init__(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        self._func = func
        self._on_result = on_result
        self._on_error = on_error
        self.disposed = False

    async def run(self) -> None:
        if self.disposed:
            return
        try:
            result = await self._func()
        except Exception as exc:  # noqa: BLE001 -- routed to on_error, the Rx contract
            if not self.disposed:
                self._on_error(exc)
            return
        if not self.disposed:
            self._on_result(result)

    def dispose(self) -> None:
        # An await in flight runs in the consumer's own task, so it cannot be cancelled
        # from here; its outcome is dropped. Cancelling the consumer cancels it.
        self.disposed = True


def _is_live(item: TimerEntry | _PullAwait[Any]) -> bool:
    return item.owner is not None if isinstance(item, TimerEntry) else not item.disposed


class PullScheduler(LoopClockScheduler):
    """A scheduler with no background task, driven by its consumer (`iterate`).

    Timers wait in a queue and awaits run inline, both only inside `run_until`, which
    the consumer calls from ``__anext__``. While the consumer is suspended nothing runs,
    so a consumer that stops iterating leaves no work behind, and cancelling the consumer
    cancels the await in flight. Awaits run one at a time, in order.

    It must be created inside the event loop (it reads the loop's clock).
    """

    def __init__(self) -> None:
        super().__init__()
        # (due, seq, start, delay, item); seq keeps FIFO order among equal due times.
        # `start` and `delay` are kept so that when the consumer took no time the wait
        # is `sleep(delay)`, exactly what the SDK's loop sleeps, to the last bit.
        self._heap: list[tuple[float, int, float, float, TimerEntry | _PullAwait[Any]]] = []
        self._seq = 0
        self._timers = 0
        self._sleep_scope: anyio.CancelScope | None = None
        self._woken = False
        self._bind_loop()

    def schedule_after(
        self, delay: float, action: abc.ScheduledAction[Any], state: Any
    ) -> abc.DisposableBase:
        """Queue ``action`` to run ``delay`` seconds (>= 0) from now on the loop's clock."""
        entry = TimerEntry(self, action, state)
        self._seq += 1
        start = self._clock()
        heapq.heappush(self._heap, (start + delay, self._seq, start, delay, entry))
        self._timers += 1
        return entry

    def timer_dropped(self) -> None:
        """Count a disposed timer; rebuild the queue when dropped ones dominate it."""
        self._timers -= 1
        heap = self._heap
        if len(heap) > _COMPACT_MIN and len(heap) > 2 * self._timers:
            heap[:] = [item for item in heap if _is_live(item[4])]
            heapq.heapify(heap)

    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> abc.DisposableBase:
        """Queue an await; it runs inline in the consumer's task, in order."""
        job = _PullAwait(func, on_result, on_error)
        now = self._clock()
        self._seq += 1
        heapq.heappush(self._heap, (now, self._seq, now, 0.0, job))
        return job

    @property
    def pending(self) -> int:
        """How many timers and awaits are queued (dropped ones included until popped)."""
        return len(self._heap)

    def wake(self) -> None:
        """Cut short the wait for the next timer: something arrived from elsewhere."""
        if self._sleep_scope is not None:
            self._woken = True
            self._sleep_scope.cancel()

    async def run_until(self, ready: Callable[[], bool]) -> None:
        """Run queued work in due order until ``ready()`` is true.

        Every timer, even one already due, waits at least one checkpoint, so a poll
        interval of 0 still lets the rest of the program run between polls. A wait for a
        later timer ends early when `wake` is called (an item pushed by another task).

        Raises:
            StalledError: If nothing is queued and ``ready()`` is still false.
        """
        heap = self._heap
        clock = self._clock
        while not ready():
            if not heap:
                raise StalledError(
                    "iterate(): the observable has not completed and no work is queued on"
                    " iterate()'s scheduler: it waits on something iterate() cannot drive (a"
                    " subject fed by another task, a source bound to another scheduler,"
                    " never()); use `async with rxtasks.open_stream(observable) as items:`"
                )
            due, _, start, delay, item = heap[0]
            if type(item) is _PullAwait:
                heapq.heappop(heap)
                await item.run()
                continue
            assert isinstance(item, TimerEntry)
            if not item.is_queued():  # dropped
                heapq.heappop(heap)
                continue
            now = clock()
            if now < due:
                # Wait for the timer, interruptibly (see `wake`). A plain sleep, not a
                # cancel-scope deadline, so that it ends exactly when the SDK's would.
                with anyio.CancelScope() as scope:
                    self._sleep_scope = scope
                    await self._sleep(delay if now == start else due - now)
                self._sleep_scope = None
                if self._woken:
                    self._woken = False
                    continue
            else:
                await self._sleep(0)
            heapq.heappop(heap)
            if not item.is_queued():  # dropped while we waited
                continue
            item.owner = None
            self._timers -= 1
            item.run(self)

    async def run_awaits(self) -> None:
        """Drop the queued timers and run the queued awaits (cleanup after disposal)."""
        heap, self._heap = self._heap, []
        self._timers = 0
        for *_, item in sorted(heap):
            if type(item) is _PullAwait:
                await item.run()
            else:
                assert isinstance(item, TimerEntry)
                item.drop()
