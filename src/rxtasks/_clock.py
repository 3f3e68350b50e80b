"""What rxtasks' schedulers share: the event loop's clock, and a cancellable timer entry."""

from __future__ import annotations

import asyncio
import math
from abc import abstractmethod
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.lowlevel
from reactivex import abc, typing
from reactivex.scheduler.periodicscheduler import PeriodicScheduler

from ._awaiting import AwaitingScheduler

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["LoopClockScheduler", "TimerEntry"]

_TState = TypeVar("_TState")


class TimerEntry(abc.DisposableBase):
    """An action waiting in a scheduler's queue; disposing it drops it from the queue.

    The entry is its own disposable, so a timer costs one object and one heap slot. A
    disposable that the action returns is disposed with the entry, as in reactivex.
    """

    __slots__ = ("action", "owner", "returned", "state")

    def __init__(
        self, owner: LoopClockScheduler, action: abc.ScheduledAction[Any], state: Any
    ) -> None:
        self.owner: LoopClockScheduler | None = owner
        self.action: abc.ScheduledAction[Any] | None = action
        self.state = state
        self.returned: abc.DisposableBase | None = None

    def is_queued(self) -> bool:
        """Whether the entry still waits in its scheduler's queue."""
        return self.owner is not None

    def run(self, scheduler: abc.SchedulerBase) -> None:
        """Run the action once (the scheduler has already taken the entry off its queue)."""
        action, state = self.action, self.state
        self.owner = self.action = self.state = None
        if action is not None:
            returned = action(scheduler, state)
            if returned is not None:
                self.returned = returned

    def drop(self) -> None:
        """Forget the action without running it or telling the scheduler."""
        self.owner = self.action = self.state = None

    def dispose(self) -> None:
        owner = self.owner
        if owner is not None:
            self.drop()
            owner.timer_dropped()
        elif self.action is not None:  # taken off the queue, not run yet
            self.drop()
        elif self.returned is not None:
            returned, self.returned = self.returned, None
            returned.dispose()


class LoopClockScheduler(PeriodicScheduler, AwaitingScheduler):
    """A reactivex scheduler whose timers run on the event loop's clock.

    Relative due times are measured on ``anyio.current_time()``, so trio's ``MockClock``
    and other virtual clocks drive it exactly. ``now`` keeps reactivex's convention (wall
    clock, UTC) and advances with the loop's clock from the moment the scheduler started;
    absolute due times are converted the same way.
    """

    __slots__ = ()

    _wall_anchor: datetime
    _loop_anchor: float
    #: The running loop's clock: what ``anyio.current_time()`` returns, without looking
    #: the backend up again on every call (that lookup was a fifth of a poll's cost).
    _clock: Callable[[], float]
    #: The backend's ``sleep``, for the same reason.
    _sleep: Callable[[float], Awaitable[None]]

    def _bind_loop(self) -> None:
        """Bind to the running event loop: its clock, its sleep, and the anchor of `now`."""
        token = anyio.lowlevel.current_token()
        native = token.native_token
        if isinstance(native, asyncio.AbstractEventLoop):
            # What anyio's asyncio backend does, minus a lookup and a coroutine frame.
            self._clock = native.time
            self._sleep = asyncio.sleep
        else:
            self._clock = token.backend_class.current_time
            self._sleep = token.backend_class.sleep
        self._loop_anchor = self._clock()
        self._wall_anchor = datetime.now(UTC)

    @property
    def now(self) -> datetime:
        """The current time: wall clock at start, advanced by the event loop's clock."""
        return self._wall_anchor + timedelta(seconds=self._clock() - self._loop_anchor)

    def schedule(
        self, action: abc.ScheduledAction[_TState], state: _TState | None = None
    ) -> abc.DisposableBase:
        """Run ``action`` as soon as possible, after the work already due."""
        return self.schedule_after(0.0, action, state)

    def schedule_relative(
        self,
        duetime: typing.RelativeTime,
        action: abc.ScheduledAction[_TState],
        state: _TState | None = None,
    ) -> abc.DisposableBase:
        """Run ``action`` after ``duetime`` (seconds or ``timedelta``) on the loop's clock."""
        seconds = duetime if type(duetime) is float else self.to_seconds(duetime)
        if not seconds >= 0:  # also true for NaN, which would corrupt the timer queue
            if math.isnan(seconds):
                raise ValueError("`duetime` must not be NaN")
            seconds = 0.0
        return self.schedule_after(seconds, action, state)

    def schedule_absolute(
        self,
        duetime: typing.AbsoluteTime,
        action: abc.ScheduledAction[_TState],
        state: _TState | None = None,
    ) -> abc.DisposableBase:
        """Run ``action`` at ``duetime``, a time on the scale of `now`."""
        seconds = (self.to_datetime(duetime) - self.now).total_seconds()
        return self.schedule_relative(seconds, action, state)

    @abstractmethod
    def schedule_after(
        self, delay: float, action: abc.ScheduledAction[Any], state: Any
    ) -> abc.DisposableBase:
        """Queue ``action`` to run ``delay`` seconds (>= 0) from now on the loop's clock."""

    @abstractmethod
    def timer_dropped(self) -> None:
        """Called when a queued `TimerEntry` is disposed before it ran."""
