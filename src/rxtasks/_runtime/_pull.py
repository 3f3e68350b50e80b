"""The pull scheduler: timers and awaits that run only while the consumer asks for items."""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .._core._errors import StalledError
from ._await import AwaitCall
from ._base import LoopScheduler, ThreadHop
from ._timers import TimerEntry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from reactivex import abc, typing

__all__ = ["PullScheduler"]

T = TypeVar("T")
_TState = TypeVar("_TState")


class PullScheduler(LoopScheduler):
    """A scheduler with no background task, driven by its consumer (`iterate`).

    Timers wait in a queue and awaits run inline, both only inside `run_until`, which the
    consumer calls from ``__anext__``. While the consumer is suspended nothing runs, so a
    consumer that stops iterating leaves no work behind, and cancelling the consumer
    cancels the await in flight. Awaits run one at a time, in order.

    A call in flight still races what can end it: a timer that falls due meanwhile fires
    on time (a helper task lives for the length of that one await), and a result pushed
    by another task cuts the call short when it makes it moot. Items produced while a
    call is in flight are handed over once the call has returned or been dropped.

    It must be created inside the event loop (it reads the loop's clock).
    """

    def __init__(self) -> None:
        super().__init__()
        self._bind()
        self._awaits: deque[AwaitCall[Any]] = deque()  # due at once, run before timers
        self._alarm = self._loop.alarm()
        self._sleeping_until: float | None = None  # the end of the wait in progress
        #: Whether the consumer waits for a timer (an item from elsewhere should `wake` it).
        self.waiting = False
        self._pushes = False  # results may come from other tasks (see expect_pushes)
        self._deliver_fn = self._deliver

    # -- scheduling ---------------------------------------------------------------------

    def schedule_relative(
        self,
        duetime: typing.RelativeTime,
        action: abc.ScheduledAction[_TState],
        state: _TState | None = None,
    ) -> abc.DisposableBase:
        """Run ``action`` after ``duetime`` (seconds or ``timedelta``) on the loop's clock."""
        # LoopScheduler's, with _queue_timer inlined: every poll schedules its next one.
        delay = duetime if type(duetime) is float and duetime >= 0 else self._seconds(duetime)
        if threading.get_ident() != self._loop.thread:
            return ThreadHop(self, lambda: self._queue_timer(delay, action, state))
        timers = self._timers
        entry = timers.add(delay, action, state)
        if self._sleeping_until is not None and timers.last_due < self._sleeping_until:
            self._alarm.wake()
        return entry

    def _queue_timer(
        self, delay: float, action: abc.ScheduledAction[Any], state: Any
    ) -> abc.DisposableBase:
        timers = self._timers
        entry = timers.add(delay, action, state)
        until = self._sleeping_until
        if until is not None and timers.last_due < until:
            self._alarm.wake()  # scheduled from another task, due before the wait ends
        return entry

    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
        *,
        protect_s: float | None = None,
    ) -> AwaitCall[T]:
        """Queue an await; it runs inline in the consumer's task, in order."""
        call = AwaitCall(func, on_result, on_error, protect_s)
        if threading.get_ident() != self._loop.thread:
            ThreadHop(self, lambda: self._enqueue(call))
            return call
        self._awaits.append(call)
        if self._sleeping_until is not None:
            self._alarm.wake()  # queued by another task: run it now
        return call

    def _enqueue(self, call: AwaitCall[Any]) -> abc.DisposableBase:
        self._awaits.append(call)
        if self._sleeping_until is not None:
            self._alarm.wake()
        return call

    def expect_pushes(self) -> None:
        """Results may come from other tasks: calls in flight become interruptible."""
        self._pushes = True

    def wake(self) -> None:
        """Cut short the wait for the next timer: an item arrived from elsewhere."""
        if self._sleeping_until is not None:
            self._alarm.wake()

    def _deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        timers = self._timers
        timers.step_start = self._loop.clock()
        try:
            callback(value)
        finally:
            timers.step_start = None

    # -- running ------------------------------------------------------------------------

    async def run_until(self, ready: Callable[[], bool]) -> None:
        """Run queued work until ``ready()`` is true.

        Awaits run first, in order; then timers in due order. Every timer, even one
        already due, waits at least one checkpoint, so a poll interval of 0 still lets
        the rest of the program run between polls. A wait for a later timer ends early
        when an item or work arrives from another task.

        Raises:
            StalledError: If nothing is queued and ``ready()`` is still false.
        """
        awaits = self._awaits
        timers = self._timers
        # Ready already when the subscription emitted or ended as it was made (a known
        # state, a BehaviorSubject): nothing more runs before that is taken.
        while not ready():
            if awaits:
                await self._run_await(awaits.popleft())
            elif timers.next_due() is not None:
                await self._run_timer()
            else:
                raise StalledError(
                    "iterate(): the observable has not completed and no work is queued on"
                    " iterate()'s scheduler: it waits on something iterate() cannot drive (a"
                    " subject fed by another task, a source bound to another scheduler,"
                    " never()); use `async with rxtasks.open_stream(observable) as items:`"
                )

    async def _run_await(self, call: AwaitCall[Any]) -> None:
        """Run a call: bare, or, if something may cut it short, raced or interruptible."""
        if call.protect_s is not None or not (self._timers.live or self._pushes):
            # Shielded cleanup, or nothing to race (no timer queued, no pushes): bare.
            if call.begin(None):
                await call.run(self._deliver_fn)
        elif self._timers.live:
            await self._race_timers(call)
        else:  # results may be pushed by another task meanwhile
            with anyio.CancelScope() as scope:
                if call.begin(scope.cancel):
                    await call.run(self._deliver_fn)

    async def _race_timers(self, call: AwaitCall[Any]) -> None:
        """Await a call while the timers queued meanwhile still fire on time."""
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(self._fire_timers)
                with anyio.CancelScope() as scope:
                    if call.begin(scope.cancel):
                        await call.run(self._deliver_fn)
                task_group.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # A timer's action raised: raise it as it would be raised between calls.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    async def _fire_timers(self) -> None:
        while True:
            if self._timers.next_due() is None:
                await self._wait(math.inf)
            else:
                await self._run_timer()

    async def _run_timer(self) -> None:
        """Run the first timer when it is due, unless the wait for it is cut short.

        Every timer, even one already due, waits at least one checkpoint, so that a poll
        interval of 0 still lets the rest of the program run between polls.
        """
        timers = self._timers
        due = timers.next_due()
        if due is None:
            return
        clock = self._loop.clock
        now = clock()
        if due > now:
            if await self._wait(timers.wait_time(now), due):
                return  # woken: look again at what is ready and queued
            now = max(clock(), due)  # due, even if the clock reads a hair earlier
        else:
            await self._loop.checkpoint()  # a checkpoint, as the SDK's loop sleeps 0
            now = clock()
        entry = timers.pop_due(now)
        if isinstance(entry, TimerEntry):  # its only kind here: it queues no awaits
            entry.run(self)

    async def _wait(self, seconds: float, until: float = math.inf) -> bool:
        self._sleeping_until = until
        self.waiting = True
        try:
            return await self._alarm.sleep(seconds)
        finally:
            self._sleeping_until = None
            self.waiting = False

    async def run_cleanup(self) -> None:
        """Drop the queued timers and run the queued awaits (what disposal scheduled)."""
        self._timers.clear()
        awaits, self._awaits = self._awaits, deque()
        for call in awaits:
            if call.begin(None):
                await call.run(self._deliver_fn)

    @property
    def has_awaits(self) -> bool:
        """Whether awaits are queued (cleanup that disposal scheduled, for instance)."""
        return bool(self._awaits)
