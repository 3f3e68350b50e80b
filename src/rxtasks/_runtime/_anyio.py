"""`AnyioScheduler`: a reactivex scheduler on an anyio task group (push; asyncio and trio)."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, TypeVar

import anyio

from .._core._errors import SchedulerError
from ._await import QUEUED, RUNNING, SETTLED, AwaitCall
from ._base import LoopScheduler, ThreadHop
from ._timers import IMMEDIATE, QueuedT, TimerEntry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from anyio.abc import TaskGroup
    from reactivex import abc, typing

    from ._loop import Alarm

__all__ = ["AnyioScheduler", "SchedulerStatistics"]

T = TypeVar("T")
_TState = TypeVar("_TState")

# The exception groups task groups wrap errors in (trio's and asyncio's alike).
_WRAPPERS = (ExceptionGroup, BaseExceptionGroup)

# Idle workers kept for the next burst of awaits; more than this end.
_MAX_IDLE = 32


@dataclass(frozen=True)
class SchedulerStatistics:
    """What an `AnyioScheduler` holds at one moment.

    Attributes:
        timers_pending: Timers queued and not disposed.
        awaits_in_flight: Awaits (``get_task`` calls) scheduled and not settled: queued,
            running, or cancelled and still unwinding.
        workers: Tasks of the scheduler's task group (busy, idle or waiting for a timer).
    """

    timers_pending: int
    awaits_in_flight: int
    workers: int = 0


class _Worker:
    """One task of the scheduler's group.

    Its cancel scope is cancelled only to interrupt the call it runs (`interrupt`); an
    interrupted worker takes no more work and ends, so a disposal that comes after its
    call has returned, but before the worker resumed, never reaches the next call.
    """

    __slots__ = ("alarm", "interrupted", "scope", "wakeup")

    def __init__(self, scope: anyio.CancelScope, alarm: Alarm) -> None:
        self.scope = scope
        self.alarm = alarm
        self.interrupted = False
        self.wakeup: anyio.Event | None = None

    def interrupt(self) -> None:
        """Cancel the call this worker runs; the worker then ends."""
        self.interrupted = True
        self.scope.cancel()


class AnyioScheduler(LoopScheduler):
    """A reactivex scheduler that runs on an anyio task group, on asyncio or trio.

    Use it as an async context manager: the task group lives in the ``async with``
    block, so nothing outlives it. The scheduler keeps one timer queue for all its
    timers and a small pool of worker tasks: a worker fires due timers and runs awaits,
    and one worker at a time sleeps until the next timer is due. Thousands of polled
    tasks cost heap entries, not sleeping tasks; a poll whose ``get_task`` returns at
    once costs one checkpoint, as an ``async for`` loop would. Disposing an await in
    flight cancels that await and nothing else. The clock is the event loop's: under
    trio's ``MockClock`` everything runs in virtual time.

    Like a task group, leaving the block waits until no timer is pending and no await is
    in flight (a cancelled await counts until it has unwound); call `cancel` to drop
    everything instead. An exception raised by an action cancels the scheduler and is
    re-raised from the ``async with`` (unwrapped when it is the only one).

    Work may be scheduled from other threads too (``observe_on(scheduler)``, items from
    thread pools): it is handed over to the loop's thread without blocking the caller,
    and the block waits for what was handed over before it ended to land, and run.
    Disposing a poll after the block has ended still sends its opt-in ``cancel_task``
    while the event loop runs.

    Example:
        >>> async def main() -> None:
        ...     async with rxtasks.AnyioScheduler() as scheduler:
        ...         rxtasks.poll(get_task, "t1").subscribe(print, scheduler=scheduler)
        ...     # every task polled on the scheduler has reached a terminal status here
        >>> anyio.run(main, backend="trio")
    """

    def __init__(self) -> None:
        super().__init__()
        self._calls: deque[AwaitCall[Any]] = deque()  # awaits waiting for a worker
        self._in_flight = 0  # awaits scheduled and not settled
        self._idle: list[_Worker] = []
        self._workers = 0
        self._coming = 0  # workers woken or started that have not looked at the queues yet
        self._in_sync = False  # a worker runs synchronous code and will look again
        # The call whose result a worker delivers, while it does (schedule_await_after).
        self._delivering: AwaitCall[Any] | None = None
        # The one worker asleep until a timer is due, and when.
        self._sleeper: _Worker | None = None
        self._sleeper_due = 0.0
        self._task_group: TaskGroup | None = None
        self._closing = False
        self._detached: set[Any] = set()  # calls run after the block ended (see _detach)
        self._thread = 0
        self._deliver_fn = self._deliver
        # Work handed over from other threads and not yet taken in: the block waits for it.
        self._hops = 0
        self._hops_lock = threading.Lock()
        # Set when the last hand-over has landed, while the block waits for it (see _hold).
        self._landed: anyio.Event | None = None

    async def __aenter__(self) -> Self:
        if self._task_group is not None or self._closing:
            raise SchedulerError("an AnyioScheduler can be entered only once")
        self._bind()
        self._thread = self._loop.thread
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
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
            if exc_type is not None:
                # Left by an exception or a cancellation: like a task group, stop
                # everything now (shielded cleanup still runs).
                self.cancel()
            elif self._finished():
                self._wake_all()  # else the last timer or await to end wakes everyone
            self._hold()  # hand-overs from other threads may be on their way, no worker alive
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

        Awaits queued, or scheduled from now on, are dropped without starting, except
        shielded ones (``protect_s``, such as `poll`'s best-effort ``cancel_task``): they
        run to their end, and the block waits for them.
        """
        task_group = self._task_group
        if task_group is None:
            return
        task_group.cancel_scope.cancel()
        self._timers.clear()
        calls, self._calls = self._calls, deque()
        for call in calls:
            self._start_or_drop(task_group, call)

    def _start_or_drop(self, task_group: TaskGroup, call: AwaitCall[Any]) -> None:
        """Shutting down: a shielded await runs in a task of its own; any other is dropped.

        Dropped, not disposed: a concurrency limit that hears of it would start its next
        await here, and so on through every waiting one.
        """
        if call.settled:
            return  # disposed while queued: its settle hook has counted it out already
        if call.protect_s is not None:
            task_group.start_soon(self._run_alone, call)
        else:
            call.drop()
            self._in_flight -= 1

    def statistics(self) -> SchedulerStatistics:
        """Return how many timers are pending, awaits in flight, and workers."""
        return SchedulerStatistics(self._timers.live, self._in_flight, self._workers)

    # -- scheduling ---------------------------------------------------------------------

    def schedule_relative(
        self,
        duetime: typing.RelativeTime,
        action: abc.ScheduledAction[_TState],
        state: _TState | None = None,
    ) -> abc.DisposableBase:
        """Run ``action`` after ``duetime`` (seconds or ``timedelta``) on the loop's clock."""
        delay = duetime if type(duetime) is float and duetime >= 0 else self._seconds(duetime)
        if self._task_group is None:
            self._check_running()
        if threading.get_ident() != self._thread:
            return ThreadHop(self, lambda: self._queue_timer(delay, action, state))  # counted
        return self._queue(delay, TimerEntry(action, state))

    def _queue_timer(
        self, delay: float, action: abc.ScheduledAction[Any], state: Any
    ) -> abc.DisposableBase:
        if self._task_group is None:
            self._check_running()
        return self._queue(delay, TimerEntry(action, state))

    def _queue(self, delay: float, item: QueuedT) -> QueuedT:
        """Queue a timer or a due call in the loop's thread; wake whoever must look."""
        timers = self._timers
        timers.put(delay, item)
        sleeper = self._sleeper
        if sleeper is not None:
            if timers.last_due < self._sleeper_due:
                sleeper.alarm.wake()  # due before the sleeper would look: it looks now
        elif not self._in_sync:  # else the worker in synchronous code looks after it
            self._summon()
        return item

    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
        *,
        protect_s: float | None = None,
    ) -> AwaitCall[T]:
        """Await ``func()`` on a worker; disposing the call cancels that await only."""
        call = AwaitCall(func, on_result, on_error, protect_s)
        task_group = self._task_group
        if task_group is None:
            if not (self._closing and protect_s is not None):
                self._check_running()  # raises: not entered yet, or left
            # The block has ended: best-effort cleanup (a shielded await) still goes.
            if self.in_loop_thread():
                self._detach(call)
            elif not self.call_soon_threadsafe(lambda: self._detach(call)):
                call.fail(SchedulerError("the event loop has ended"), _call_now)
        elif threading.get_ident() != self._thread:
            self.call_soon_threadsafe(lambda: self._enqueue(call))  # counted
        elif task_group.cancel_scope.cancel_called:
            self._enqueue(call)
        else:  # _enqueue's common case, inlined: every poll passes here
            self._in_flight += 1
            call.settle_hook = self._await_settled
            self._calls.append(call)
            if not self._in_sync:
                self._summon()
        return call

    def schedule_await_after(
        self,
        delay_s: float,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
        reuse: AwaitCall[T] | None = None,
    ) -> AwaitCall[T]:
        """Await ``func()`` ``delay_s`` seconds from now: a timer until due, then an await.

        It counts as a pending timer until it is due, then as an await in flight. The
        call whose result is being delivered right now (``reuse``) is queued again
        rather than a new one made: it is over, and nothing else holds it.
        """
        call: AwaitCall[T]
        if reuse is self._delivering and reuse is not None:
            self._delivering = None
            call = reuse
            call.state = QUEUED
            call.func, call.on_result, call.on_error = func, on_result, on_error
        else:
            call = AwaitCall(func, on_result, on_error)
        if self._task_group is None:
            self._check_running()
        if threading.get_ident() != self._thread:
            self.call_soon_threadsafe(lambda: self._queue_due(delay_s, call))  # counted
            return call
        # _queue, inlined: a poll's every next call is queued here.
        timers = self._timers
        timers.put(delay_s, call)
        sleeper = self._sleeper
        if sleeper is not None:
            if timers.last_due < self._sleeper_due:
                sleeper.alarm.wake()
        elif not self._in_sync:
            self._summon()
        return call

    def _queue_due(self, delay_s: float, call: AwaitCall[Any]) -> None:
        if call.settled:  # disposed before it reached the loop's thread
            return
        if self._task_group is None:  # handed over from another thread after the block ended
            call.drop()
            return
        self._queue(delay_s, call)

    def _enqueue(self, call: AwaitCall[Any]) -> None:
        if call.settled:  # disposed before it reached the loop's thread
            return
        task_group = self._task_group
        if task_group is None:  # handed over from another thread after the block ended
            call.drop()
            return
        self._in_flight += 1
        call.settle_hook = self._await_settled
        if task_group.cancel_scope.cancel_called:
            self._start_or_drop(task_group, call)  # shutting down: the workers are gone
            return
        self._calls.append(call)
        if not self._in_sync:
            self._summon()

    def _deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        """Call an await's callback from its worker, which looks at the queues after."""
        self._in_sync = True
        timers = self._timers
        timers.step_start = self._loop.clock()
        try:
            callback(value)
        finally:
            self._in_sync = False
            timers.step_start = None

    def _await_settled(self) -> None:
        self._in_flight -= 1
        self._settled_here()

    def _settled_here(self) -> None:
        """An await was counted out: if the block is closing and nothing is left, end."""
        # Never finished while a timer is pending (a poll's next one): that is checked first.
        if self._closing and not self._timers.live and self._finished():
            self._wake_all()

    def _detach(self, call: AwaitCall[Any]) -> None:
        """Run a shielded await after the block ended, in the loop, if it still runs."""
        native = self._loop.running_native()
        if native is None:
            call.fail(SchedulerError("the event loop has ended"), _call_now)
            return
        if isinstance(native, asyncio.AbstractEventLoop):
            task = native.create_task(self._run_detached(call))
            self._detached.add(task)
            task.add_done_callback(self._detached.discard)
        else:
            import trio

            trio.lowlevel.spawn_system_task(self._run_detached, call)

    async def _run_detached(self, call: AwaitCall[Any]) -> None:
        if call.begin(None):
            try:
                await call.run()
            except BaseException:  # noqa: BLE001 -- a detached task must end quietly
                call.end_cancelled()

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

    async def _work(self) -> None:  # noqa: C901, PLR0912, PLR0915 -- see below
        """A worker: fire due timers and run awaits, one checkpoint between polls.

        One coroutine from the task down to the checkpoint: every poll resumes it. It is
        the hot path, so it is one function: `AwaitCall.begin`, ``run`` and ``succeed``,
        `_deliver` and the settle hook are inlined for the common call (each costs a
        frame per poll otherwise); the other calls go through `AwaitCall.run`.
        """
        timers = self._timers
        calls = self._calls
        checkpoint = self._loop.checkpoint
        clock = self._loop.clock
        deliver = self._deliver_fn
        try:
            with anyio.CancelScope() as scope:
                worker = _Worker(scope, self._loop.alarm())
                interrupt = worker.interrupt
                self._coming -= 1
                checkpointed = True
                while not worker.interrupted:
                    if timers.live:
                        # Timers that fell due while this worker ran synchronously (an
                        # immediate one was added last: no need to ask): let the rest of
                        # the program run first, as the SDK's loop does between polls.
                        if not checkpointed and (
                            timers.last_due == IMMEDIATE or timers.due_now() is not None
                        ):
                            await checkpoint()
                            checkpointed = True
                        # Without heap timers only immediate ones can be due: no clock.
                        now = timers.due_now() if timers.heap else IMMEDIATE
                        if now is not None:
                            self._run_due_timers(now)
                    if not calls:
                        if await self._wait_for_work(worker):
                            checkpointed = True
                            continue
                        return
                    call = calls.popleft()
                    checkpointed = False
                    if calls or (timers.live and self._sleeper is None):
                        self._summon()  # this worker is busy now: more work needs another
                    if call.protect_s is not None or call.state is not QUEUED:
                        if call.begin(interrupt):  # else disposed while queued
                            await call.run(deliver)  # shielded cleanup
                        continue
                    call.state = RUNNING
                    call.interrupter = interrupt
                    call.settle_hook = None  # counted out here
                    try:
                        result = await call.func()
                    except BaseException as exc:  # noqa: BLE001 -- see AwaitCall.raised
                        self._in_flight -= 1
                        self._call_raised(call, exc)
                        continue
                    self._in_flight -= 1
                    self._in_sync = True
                    timers.step_start = clock()  # timers count from the outcome's arrival
                    try:
                        if call.state is RUNNING and call.continuation is None:
                            call.state = SETTLED  # nobody else waits for the call
                            call.interrupter = None
                            self._delivering = call  # may be queued again: see there
                            call.on_result(result)
                        else:
                            call.succeed(result, _call_now)  # abandoned, or waited for
                    finally:
                        self._in_sync = False
                        self._delivering = None
                        timers.step_start = None
                        if self._closing and not timers.live and self._finished():
                            self._wake_all()
        except Exception:
            # An action (or a callback) raised: the scheduler has failed. Cancel it now, not
            # when the error reaches the task group: no queued await may start meanwhile.
            self.cancel()
            raise
        finally:
            self._workers -= 1
            self._hold()  # this may be the group's last task
        self._replace()  # only when interrupted: a worker that failed is never replaced

    def _call_raised(self, call: AwaitCall[Any], error: BaseException) -> None:
        """A call run by a worker raised: its error, or a cancellation raised again."""
        try:
            call.raised(error, self._deliver_fn)
        finally:
            self._settled_here()

    async def _wait_for_work(self, worker: _Worker) -> bool:
        """Nothing to run now: sleep until the next timer, or idle until summoned.

        Returns:
            False if the worker should end: the block is over, or enough are idle.
        """
        if self._closing and self._finished():
            self._wake_all()
            return False
        due = self._timers.next_due()
        if due is not None and self._sleeper is None:
            await self._sleep_until(worker, due)
            return True
        if len(self._idle) >= _MAX_IDLE:
            return False
        worker.wakeup = anyio.Event()
        self._idle.append(worker)
        await worker.wakeup.wait()
        self._coming -= 1
        return True

    def _replace(self) -> None:
        """A worker was interrupted and has ended: summon another if work is left for it."""
        task_group = self._task_group
        if (
            task_group is not None
            and not task_group.cancel_scope.cancel_called
            and (self._calls or (self._timers.live and self._sleeper is None))
        ):
            self._summon()

    def _hold(self) -> None:
        """Closing: if work handed over from other threads is still on its way, wait for it.

        Called as the block ends and as each task of the group ends while it does. The
        workers wait for hand-overs only while they live: there may be none left, an
        interrupted one ends at once, and cancel() ends them all. So a task of its own
        holds the group open, shielded like the cleanup cancel() still runs, until the
        last hand-over has landed.
        """
        task_group = self._task_group
        if self._closing and self._hops and self._landed is None and task_group is not None:
            self._landed = landed = anyio.Event()
            task_group.start_soon(self._wait_landed, landed, name=f"{self!r} hand-overs")

    async def _wait_landed(self, landed: anyio.Event) -> None:
        with anyio.CancelScope(shield=True):
            await landed.wait()

    async def _run_alone(self, call: AwaitCall[Any]) -> None:
        try:
            with anyio.CancelScope() as scope:
                if call.begin(scope.cancel):
                    await call.run(self._deliver_fn)
        finally:
            self._hold()  # this may be the group's last task

    async def _sleep_until(self, worker: _Worker, due: float) -> None:
        """Sleep until the first timer is due, or until woken for an earlier one."""
        self._sleeper = worker
        self._sleeper_due = due
        try:
            woken = await worker.alarm.sleep(max(due - self._loop.clock(), 0.0))
        finally:
            self._sleeper = None
        if not woken:
            # The timer is due even if the clock reads a hair earlier (asyncio fires
            # early by its resolution; looptime rounds to microseconds).
            self._run_due_timers(max(self._loop.clock(), due))

    def _run_due_timers(self, now: float) -> None:
        timers = self._timers
        self._in_sync = True
        try:
            while timers.live and (entry := timers.pop_due(now)) is not None:
                if type(entry) is TimerEntry:
                    entry.run(self)
                elif isinstance(entry, AwaitCall):  # an await now due (schedule_await_after)
                    call: AwaitCall[Any] = entry  # pyright: ignore[reportUnknownVariableType]
                    self._in_flight += 1  # _enqueue's common case, inlined
                    call.settle_hook = self._await_settled
                    self._calls.append(call)
        finally:
            self._in_sync = False

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> bool:
        """Run ``fn()`` soon in the loop's thread; the block waits for it to have run."""
        with self._hops_lock:
            self._hops += 1

        def run() -> None:
            with self._hops_lock:
                self._hops -= 1
            try:
                fn()
            finally:
                landed = self._landed
                if landed is not None and not self._hops:  # the block waited for this one
                    self._landed = None
                    landed.set()
                if self._closing and self._task_group is not None and self._finished():
                    self._wake_all()

        if super().call_soon_threadsafe(run):
            return True
        with self._hops_lock:
            self._hops -= 1
        return False

    def _finished(self) -> bool:
        return not self._timers.live and not self._in_flight and not self._hops

    def _wake_all(self) -> None:
        """Closing and nothing left: wake every idle and sleeping worker, so they end."""
        for worker in self._idle:
            if worker.wakeup is not None and not worker.wakeup.is_set():
                self._coming += 1
                worker.wakeup.set()
        self._idle.clear()
        if self._sleeper is not None:
            self._sleeper.alarm.wake()

    def _drop_all(self) -> None:
        """The block has ended: forget what is queued (no hook may schedule more)."""
        self._timers.clear()
        calls = self._calls
        while calls:
            if calls.popleft().drop():  # else disposed while queued: counted out already
                self._in_flight -= 1

    def _check_running(self) -> None:
        if self._task_group is None:
            raise SchedulerError(
                "the AnyioScheduler is not running: use it inside"
                " `async with AnyioScheduler() as scheduler:`"
            )


def _call_now(callback: Callable[[Any], None], value: Any) -> None:
    callback(value)
