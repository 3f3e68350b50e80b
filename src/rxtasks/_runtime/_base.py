"""What rxtasks' own schedulers share: the loop's clock, the timer queue, reactivex's API."""

from __future__ import annotations

import math
import threading
from abc import abstractmethod
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from reactivex import abc, typing
from reactivex.disposable import Disposable
from reactivex.scheduler.periodicscheduler import PeriodicScheduler

from .._core._errors import ArgumentError
from ._await import Runtime
from ._loop import LoopBinding
from ._timers import TimerQueue

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LoopScheduler", "ThreadHop"]

_TState = TypeVar("_TState")


class LoopScheduler(PeriodicScheduler, Runtime):
    """A reactivex scheduler and `Runtime` whose timers run on the event loop's clock.

    Relative due times are measured on the loop's clock (``anyio.current_time()``), so
    trio's ``MockClock`` and other virtual clocks drive it exactly. ``now`` keeps
    reactivex's convention (wall clock, UTC) and advances with the loop's clock from the
    moment the scheduler was bound; absolute due times are converted the same way.

    Subclasses bind the loop (`_bind`) and decide when queued work runs (`_queue_timer`).
    """

    _loop: LoopBinding
    _timers: TimerQueue
    _wall_anchor: datetime
    _loop_anchor: float

    def _bind(self) -> None:
        """Bind to the running event loop: its clock, the timer queue, the anchor of `now`."""
        self._loop = loop = LoopBinding()
        self._timers = TimerQueue(loop.clock)
        self._loop_anchor = loop.clock()
        self._wall_anchor = datetime.now(UTC)

    @property
    def now(self) -> datetime:
        """The current time: wall clock at start, advanced by the event loop's clock."""
        return self._wall_anchor + timedelta(seconds=self._loop.clock() - self._loop_anchor)

    def schedule(
        self, action: abc.ScheduledAction[_TState], state: _TState | None = None
    ) -> abc.DisposableBase:
        """Run ``action`` as soon as possible, after the work already due."""
        return self.schedule_relative(0.0, action, state)

    def schedule_relative(
        self,
        duetime: typing.RelativeTime,
        action: abc.ScheduledAction[_TState],
        state: _TState | None = None,
    ) -> abc.DisposableBase:
        """Run ``action`` after ``duetime`` (seconds or ``timedelta``) on the loop's clock."""
        seconds = duetime if type(duetime) is float and duetime >= 0 else self._seconds(duetime)
        if threading.get_ident() != self._loop.thread:
            return ThreadHop(self, lambda: self._queue_timer(seconds, action, state))
        return self._queue_timer(seconds, action, state)

    def schedule_absolute(
        self,
        duetime: typing.AbsoluteTime,
        action: abc.ScheduledAction[_TState],
        state: _TState | None = None,
    ) -> abc.DisposableBase:
        """Run ``action`` at ``duetime``, a time on the scale of `now`."""
        seconds = (self.to_datetime(duetime) - self.now).total_seconds()
        return self.schedule_relative(seconds, action, state)

    def _seconds(self, duetime: typing.RelativeTime) -> float:
        """A relative due time in seconds, at least 0 (what `schedule_relative` waits).

        Raises:
            ArgumentError: If it is NaN, which would corrupt the timer queue.
        """
        seconds = self.to_seconds(duetime)
        if not seconds >= 0:
            if math.isnan(seconds):
                raise ArgumentError("`duetime` must not be NaN")
            seconds = 0.0
        return seconds

    @abstractmethod
    def _queue_timer(
        self, delay: float, action: abc.ScheduledAction[Any], state: Any
    ) -> abc.DisposableBase:
        """Queue ``action`` ``delay`` seconds (>= 0) from now; called in the loop's thread."""

    def in_loop_thread(self) -> bool:
        """Whether the caller runs in the scheduler's event loop thread."""
        return self._loop.in_loop_thread()

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> bool:
        """Run ``fn()`` soon in the event loop's thread, without blocking the caller."""
        return self._loop.call_soon_threadsafe(fn)


class ThreadHop(abc.DisposableBase):
    """Work scheduled from another thread: queued in the loop's thread, never blocking.

    Disposing it (from any thread) drops the work, or disposes what it became.
    """

    __slots__ = ("_disposed", "_inner", "_runtime")

    def __init__(self, runtime: LoopScheduler, schedule: Callable[[], abc.DisposableBase]) -> None:
        self._runtime = runtime
        self._disposed = False
        self._inner: abc.DisposableBase | None = None

        def attach() -> None:
            if not self._disposed:
                self._inner = schedule()

        if not runtime.call_soon_threadsafe(attach):
            self._disposed = True

    def dispose(self) -> None:
        if self._disposed:
            return
        self._disposed = True
        runtime = self._runtime
        if runtime.in_loop_thread():
            self._dispose_inner()
        else:
            runtime.call_soon_threadsafe(self._dispose_inner)

    def _dispose_inner(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.dispose()


#: A disposable for work that was never queued.
NOTHING: abc.DisposableBase = Disposable()
