"""The timer queue that every rxtasks scheduler keeps: one heap, in due order, FIFO on ties."""

from __future__ import annotations

import heapq
import math
from abc import ABC, abstractmethod
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar

from reactivex import abc

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["IMMEDIATE", "Queued", "TimerEntry", "TimerQueue"]

QueuedT = TypeVar("QueuedT", bound="Queued")

#: The due time of an immediate item (`TimerQueue.last_due`, `TimerQueue.due_now`).
IMMEDIATE = -math.inf

# Disposed entries stay in the heap until popped; the heap is rebuilt when they are the
# majority, so that disposing many subscriptions does not keep their observers alive.
_COMPACT_MIN = 64


class Queued(ABC):
    """What a `TimerQueue` holds: a timer (`TimerEntry`), or an await due at a time.

    ``queue`` is the queue while the item waits in it; the queue clears it when the item
    is due (`TimerQueue.pop_due`), and the item clears it when disposed (then it calls
    `TimerQueue.dropped`).
    """

    __slots__ = ("queue",)

    queue: TimerQueue | None

    @abstractmethod
    def forget(self) -> None:
        """The queue is being cleared: let go of the work without running it."""


class TimerEntry(Queued, abc.DisposableBase):
    """An action waiting in a `TimerQueue`; disposing it drops it from the queue.

    The entry is its own disposable, so a timer costs one object and one heap slot. A
    disposable that the action returns is disposed with the entry, as in reactivex.
    """

    __slots__ = ("action", "returned", "state")

    def __init__(self, action: abc.ScheduledAction[Any], state: Any) -> None:
        self.queue = None
        self.action: abc.ScheduledAction[Any] | None = action
        self.state = state
        self.returned: abc.DisposableBase | None = None

    def run(self, scheduler: abc.SchedulerBase) -> None:
        """Run the action once; the queue has already let go of the entry."""
        action, state = self.action, self.state
        self.action = self.state = None
        if action is not None:
            returned = action(scheduler, state)
            if returned is not None:
                self.returned = returned

    def forget(self) -> None:
        """Let go of the action without running it."""
        self.queue = self.action = self.state = None

    def dispose(self) -> None:
        queue = self.queue
        if queue is not None:
            self.queue = self.action = self.state = None
            queue.dropped()
        elif self.returned is not None:
            returned, self.returned = self.returned, None
            returned.dispose()


class TimerQueue:
    """Timers on the loop's clock: a heap by (due, sequence), and a FIFO of immediate ones.

    A timer scheduled while an await's outcome is being delivered counts from when that
    outcome arrived (`step_start`), not from the end of the ``on_next`` chain, so slow
    observers add no drift. Each heap item keeps the delay it was asked for, so that a
    consumer that took no time sleeps exactly ``delay``, as the SDK's loop does, to the bit.

    Immediate timers (delay 0, every poll at interval 0) skip the heap: they run after
    the heap timers already due, in order.

    Besides actions (`TimerEntry`), it holds awaits due at a time (a poll's next call is
    one object, not a timer and then a call): any `Queued` item.
    """

    __slots__ = ("_clock", "_now", "_seq", "heap", "last_due", "live", "step_start")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        #: The timers with a delay, as (due, seq, start, delay, item), a heap; seq keeps FIFO
        #: order among equal due times. Read-only outside: empty means none is due later.
        self.heap: list[tuple[float, int, float, float, Queued]] = []
        self._now: deque[Queued] = deque()
        self._seq = 0
        #: Entries queued and not disposed.
        self.live = 0
        #: When the outcome being delivered arrived, or None outside a delivery.
        self.step_start: float | None = None
        #: When the timer added last is due (``-inf``: immediate).
        self.last_due = IMMEDIATE

    def add(self, delay: float, action: abc.ScheduledAction[Any], state: Any) -> TimerEntry:
        """Queue ``action`` ``delay`` seconds (>= 0) from now (or from `step_start`)."""
        return self.put(delay, TimerEntry(action, state))

    def put(self, delay: float, entry: QueuedT) -> QueuedT:
        """Queue an item ``delay`` seconds (>= 0) from now (or from `step_start`)."""
        entry.queue = self
        self.live += 1
        if not delay:
            self._now.append(entry)
            self.last_due = IMMEDIATE
            return entry
        start = self.step_start
        if start is None:
            start = self._clock()
        self._seq += 1
        self.last_due = due = start + delay
        item: tuple[float, int, float, float, Queued] = (due, self._seq, start, delay, entry)
        heapq.heappush(self.heap, item)
        return entry

    def dropped(self) -> None:
        """Count an entry disposed while queued; compact the heap if most are dropped."""
        self.live -= 1
        heap = self.heap
        if len(heap) > _COMPACT_MIN and len(heap) > 2 * self.live:
            heap[:] = [item for item in heap if item[4].queue is not None]
            heapq.heapify(heap)

    def next_due(self) -> float | None:
        """When the first live timer is due (``-inf`` for an immediate one), or None."""
        now = self._now
        while now and now[0].queue is None:
            now.popleft()
        if now:
            return IMMEDIATE
        heap = self.heap
        while heap and heap[0][4].queue is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due_now(self) -> float | None:
        """The time to run the due timers at (`pop_due`), or None if none is due yet.

        The clock, if a heap timer is due by it; ``-inf`` if only immediate timers are,
        which need no clock: the common case of a poll at interval 0 reads none.
        """
        heap = self.heap
        while heap and heap[0][4].queue is None:
            heapq.heappop(heap)
        if heap:
            now = self._clock()
            if heap[0][0] <= now:
                return now
        immediate = self._now
        while immediate and immediate[0].queue is None:
            immediate.popleft()
        return IMMEDIATE if immediate else None

    def wait_time(self, now: float) -> float:
        """How long to sleep from ``now`` for the first heap timer (there must be one).

        ``delay`` itself when no time passed since it was scheduled: ``start + delay -
        start`` is not always ``delay`` in floating point, and the SDK sleeps ``delay``.
        """
        due, _, start, delay, _ = self.heap[0]
        return delay if now == start else due - now

    def pop_due(self, now: float) -> Queued | None:
        """Take the first live item due at ``now``: heap ones first, then immediate ones."""
        heap = self.heap
        while heap:
            item = heap[0]
            entry = item[4]
            if entry.queue is None:
                heapq.heappop(heap)
                continue
            if item[0] > now:
                break
            heapq.heappop(heap)
            entry.queue = None
            self.live -= 1
            return entry
        queue = self._now
        while queue:
            entry = queue.popleft()
            if entry.queue is not None:
                entry.queue = None
                self.live -= 1
                return entry
        return None

    def clear(self) -> None:
        """Forget every queued timer without running it."""
        for item in self.heap:
            item[4].forget()
        for entry in self._now:
            entry.forget()
        self.heap.clear()
        self._now.clear()
        self.live = 0
