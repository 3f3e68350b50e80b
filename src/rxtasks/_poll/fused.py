"""`poll`: the model (`server_timer` piped through `until_terminal`), fused for speed."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from reactivex import Observable, abc

from .._core._status import ResultReader
from .._core._validate import check_ms
from .._runtime import AwaitCall, Runtime, resolve_scheduler
from .._runtime._await import QUEUED, SETTLED
from .parts import (
    CancelOnDispose,
    Cap,
    Deadline,
    PushRace,
    Retrier,
    TtlBackstop,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .policy import PollPolicy

__all__ = ["PollSpec", "Poller", "PollerBase", "poll"]

T = TypeVar("T")

#: `Poller.emit` 's ``delay`` for a polled result: read it from the result.
POLLED = -1.0


def poll(
    get_task: Callable[[str], Awaitable[T]],
    task_id: str,
    default_interval_ms: float = 500,
    *,
    scheduler: abc.SchedulerBase | None = None,
    notifications: Observable[Any] | None = None,
    cancel_task: Callable[[str], Awaitable[object]] | None = None,
    policy: PollPolicy | None = None,
    initial: T | None = None,
    cancel_moot_calls: bool = True,
) -> Observable[T]:
    """Poll one task at the pace the server asks for, as a cold observable.

    Each subscription calls ``get_task(task_id)`` at once, emits every result, and calls
    again ``interval`` after each response, where ``interval`` is the result's hint
    (``pollInterval``, ``poll_interval``, ``pollIntervalMs``, ``poll_interval_ms``, or the
    same keys of a ``dict``) and ``default_interval_ms`` when it has none. It completes
    after the first terminal result (``completed``, ``failed``, ``cancelled``) and calls
    no more. At most one call is in flight. Errors of ``get_task`` end the stream
    unchanged. Disposing cancels the call in flight and the pending timer.

    ``w---w---i---w-c|`` : ``w`` working, ``i`` input_required, ``c`` completed.

    An unusable hint (negative, NaN, infinite, ``bool``, not a number) falls back to the
    default with one warning logged; an unknown status is not terminal (warned once).

    Pushed statuses race the polls when ``notifications`` is given: a pushed result for
    this task (by ``taskId``) is emitted at once, the call in flight and the pending
    timer are dropped, and the next poll is due ``interval`` after the push; a terminal
    push completes the stream with no further call. Results for other tasks are ignored,
    and so is a stale result, one whose ``lastUpdatedAt`` is older than that of a result
    already emitted (polled or pushed). A server that never pushes is polled exactly as
    without notifications; if the notifications fail, polling goes on (warning logged).

    Args:
        get_task: Async function returning the task's current state (``tasks/get``);
            any result type with a ``status``, such as ``mcp.types.GetTaskResult``.
        task_id: The task to poll.
        default_interval_ms: Interval when a result has no usable hint, in milliseconds.
        scheduler: Where to run timers and calls. Default: the scheduler given to
            ``subscribe``; without one, the running asyncio loop. Schedulers that can
            await: `AnyioScheduler` (asyncio and trio), the pull scheduler of `iterate`,
            reactivex's ``AsyncIOScheduler``, and reactivex's virtual-time schedulers
            (``TestScheduler``: ``get_task`` must then complete without suspending).
        notifications: Task results pushed by the server, for any tasks (for example
            from ``notifications/tasks/status``); subscribed with each subscription.
        cancel_task: Opt-in best-effort cancel: called with the task id (for example
            sending ``tasks/cancel``) when a subscription is disposed before the task
            is terminal. It runs shielded from cancellation, for at most
            `CANCEL_TIMEOUT_MS` milliseconds; its errors are logged, not raised. It is not
            called when the stream ends by itself (terminal result or error), nor when
            the observer disposes on the terminal result itself (``first()``,
            ``take(n)``). With `iterate` it runs on ``aclose()``, on cancellation, and
            before the iteration stops when an operator ended the pipeline
            (``take``, ``take_until``); not on a bare ``break``.
        policy: Limits for servers you do not control (`PollPolicy`): a floor and a cap
            on the interval, an overall timeout, retries of transient errors, the ttl
            backstop. Without one, every hint is followed and every error ends the poll.
        initial: A state of the task already known, typically the one that created it
            (``CreateTaskResult.task`` on 2025-11-25, the ``CreateTaskResult`` itself in
            the tasks extension). It is emitted first, on subscription, and the first
            ``get_task`` is due its interval after that, not at once: the server's pace
            from the first poll on. If it is terminal, it is the only result. ``i---w-c|``
        cancel_moot_calls: Whether a call in flight that a push (or a pushed terminal
            state) made moot is cancelled (the default) or left to finish, its answer
            dropped; the next call waits for it either way. False is for sessions that
            break when a request is cancelled as its answer arrives (mcp 1.x up to 1.30
            at least; `rxtasks.mcp.sdk1` sets it). Disposal and the deadline always cancel.

    Returns:
        An observable of every result, ending with the terminal one.

    Raises:
        ArgumentTypeError: If ``default_interval_ms`` is not a number.
        ArgumentError: If ``default_interval_ms`` is negative, NaN or infinite.

    The stream's errors: ``get_task`` 's own (unchanged), `InvalidResultError`, and with
    a policy `PollTimeoutError` and `TaskExpiredError`.

    Example:
        >>> async def main() -> None:
        ...     async with rxtasks.AnyioScheduler() as scheduler:
        ...         rxtasks.poll(server.get_task, "t1").subscribe(
        ...             lambda task: print(task.status), scheduler=scheduler
        ...         )
        >>> anyio.run(main)
        working
        working
        completed
    """
    spec = PollSpec(
        get_task,
        default_interval_ms,
        cancel_task=cancel_task,
        policy=policy,
        cancel_moot_calls=cancel_moot_calls,
    )

    def subscribe(
        observer: abc.ObserverBase[T], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        chosen, runtime = resolve_scheduler(scheduler or subscribe_scheduler, caller="poll()")
        poller = Poller(observer, spec, task_id, scheduler=chosen, runtime=runtime)
        poller.start(notifications, initial)
        return poller

    return Observable(subscribe)


@dataclass(frozen=True, slots=True)
class PollSpec(Generic[T]):
    """How to poll: `poll` 's options, checked once, shared by its subscriptions.

    `poll_many` shares one among all its tasks.

    Raises:
        ArgumentTypeError: If ``default_interval_ms`` is not a number.
        ArgumentError: If ``default_interval_ms`` is negative, NaN or infinite.
    """

    get_task: Callable[[str], Awaitable[T]]
    default_interval_ms: float
    cancel_task: Callable[[str], Awaitable[object]] | None = None
    policy: PollPolicy | None = None
    cancel_moot_calls: bool = True

    def __post_init__(self) -> None:
        checked = check_ms(self.default_interval_ms, name="default_interval_ms")
        object.__setattr__(self, "default_interval_ms", checked)  # frozen: set once here


class PollerBase(abc.DisposableBase, Generic[T]):
    """What one subscription of `poll` holds: its state and its parts.

    The parts (`rxtasks._poll.parts`) are built here, each only if its option is set.
    """

    __slots__ = (
        "_call",
        "_cancel",
        "_cancel_moot",
        "_cap",
        "_deadline",
        "_fetch",
        "_observer",
        "_on_call_error",
        "_on_call_result",
        "_pushes",
        "_retrier",
        "_timer",
        "_ttl",
        "disposed",
        "ended",
        "last_result",
        "reader",
        "runtime",
        "scheduler",
        "task_id",
    )

    def __init__(
        self,
        observer: abc.ObserverBase[T],
        spec: PollSpec[T],
        task_id: str,
        *,
        scheduler: abc.SchedulerBase,
        runtime: Runtime,
    ) -> None:
        self._observer = observer
        self.scheduler, self.runtime, self.task_id = scheduler, runtime, task_id
        self._fetch: Callable[[], Awaitable[T]] = partial(spec.get_task, task_id)  # no frame
        # What every call reports to, bound once (a bound method is made on each access).
        self._on_call_result: Callable[[T], None] = self.emit
        self._on_call_error: Callable[[Exception], None] = self._on_error
        self.reader = ResultReader(task_id, spec.default_interval_ms)
        self._cancel_moot = spec.cancel_moot_calls
        # The call in flight or due, or the last one (over, or dropped and unwinding).
        self._call: AwaitCall[T] | None = None
        self._timer: abc.DisposableBase | None = None  # the next call, where it is a timer
        self.last_result: T | None = None
        self.ended = False  # a terminal result or an error was emitted
        self.disposed = False
        self._pushes: PushRace | None = None
        cancel_task, policy = spec.cancel_task, spec.policy
        self._cancel = CancelOnDispose(self, cancel_task) if cancel_task else None
        self._cap: Cap | None = None
        self._deadline: Deadline | None = None
        self._retrier: Retrier | None = None
        self._ttl: TtlBackstop | None = None
        if policy is not None:
            if policy.min_interval_ms is not None or policy.max_interval_ms is not None:
                self._cap = Cap(policy, task_id)
            if policy.timeout_ms is not None:
                self._deadline = Deadline(self, policy.timeout_ms)
            self._retrier = Retrier(policy.retry) if policy.retry else None
            self._ttl = TtlBackstop() if policy.ttl_backstop else None

    # What the parts use of the life and the pacing core, below.

    @abstractmethod
    def fail(self, error: Exception) -> None:
        """End with an error."""

    @abstractmethod
    def _on_error(self, error: Exception) -> None:
        """Take an error of ``get_task``."""

    @abstractmethod
    def call_now(self, _scheduler: abc.SchedulerBase | None = None, _state: object = None) -> None:
        """Call ``get_task`` now."""

    @abstractmethod
    def emit(self, result: T, delay: float | None = ...) -> None:
        """Emit a result, then pace the next call by ``delay`` (None: the end)."""

    @abstractmethod
    def drop_due(self) -> None:
        """Drop the call in flight and the call due."""


class _Lifecycle(PollerBase[T]):
    """How a poll starts, and how it ends: an error, a terminal result, or a disposal.

    An error ends it unless the ttl backstop or a retry says otherwise; a disposal
    before the end also sends the opt-in ``cancel_task``. Disposing never raises.
    """

    __slots__ = ()

    def start(self, notifications: Observable[Any] | None, initial: T | None = None) -> None:
        """Start: the deadline, the first call (or ``initial``, paced like a result), pushes."""
        if self._deadline is not None:
            self._deadline.start()
        if initial is None:
            self.call_now()
        else:
            self.emit(initial)
        if notifications is not None and not self.disposed:
            self.race_pushes().listen(notifications)

    def race_pushes(self) -> PushRace:
        """Race pushed results (see `PushRace`) against the timer from now on."""
        if self._pushes is None:
            self._pushes = PushRace(self)
            self.runtime.expect_pushes()
        return self._pushes

    def _on_error(self, error: Exception) -> None:
        """An error of ``get_task``: maybe the ttl ran out, maybe retry, else the end."""
        self._call = None
        if self.disposed:
            return
        if self._ttl is not None and (expired := self._ttl.expired(error, self)) is not None:
            error = expired
        elif self._retrier is not None:
            delay_s = self._retrier.delay_s(error, self.task_id)
            if delay_s is not None:
                self._timer = self.scheduler.schedule_relative(delay_s, self.call_now)
                return
        self.fail(error)

    def fail(self, error: Exception) -> None:
        """End with an error: stop everything (cancelling the call in flight)."""
        if not self.disposed:
            self.ended = True
            self._finish()
            self._observer.on_error(error)

    def _finish(self) -> None:
        """End by ourselves (terminal result or error): stop everything, cancel nothing."""
        self.disposed = True
        self._drop()

    def dispose(self) -> None:
        """Stop polling; send the opt-in ``cancel_task`` if the task may still run."""
        if self.disposed:
            return
        self.disposed = True
        self._drop()
        if self._cancel is not None and not self.ended:
            self._cancel.send()

    def _drop(self) -> None:
        for part in (self._call, self._timer, self._pushes, self._deadline):
            if part is not None:
                part.dispose()
        self._timer = None


class Poller(_Lifecycle[T]):
    """One subscription of `poll`: the pacing core (what it holds, its start and end: above).

    The core is `server_timer` and `until_terminal` in one object: a call, its result
    emitted, the next call due the result's interval after the response (the next call
    and its timer are one object where the runtime allows, reusing the call just over),
    the end after the first terminal result. It completes by itself rather than through
    ``take_while``, which takes a lock on every item. A call counts as in flight until
    it has really returned: the next one waits for a dropped one to unwind.
    """

    __slots__ = ()

    def call_now(self, _scheduler: abc.SchedulerBase | None = None, _state: object = None) -> None:
        """Call ``get_task`` now, or as soon as the call dropped before has returned."""
        self._timer = None
        previous = self._call
        if self.disposed:
            return
        if previous is not None and not previous.settled:
            previous.when_settled(self.call_now)
        else:
            self._call = self.runtime.schedule_await(
                self._fetch, self._on_call_result, self._on_call_error
            )

    def emit(self, result: T, delay: float | None = POLLED) -> None:  # noqa: C901, PLR0912
        """Emit a result, then call again ``delay`` s after it arrived.

        A polled result (``delay`` left out) is read first: an unreadable one ends the
        poll, and a stale one (older than one emitted, `PushRace.fresh`) is not emitted
        but still paces the next call; a pushed one comes read and checked. A ``delay`` of
        None means the result is terminal: the poll completes after it. The call just
        over stays known until the next one: it may be reused for it.

        Every poll runs through here, so it is one function (C901, PLR0912): each branch is an
        optional part's None check, or a rare case.
        """
        stale = False
        if delay is POLLED:
            if self.disposed:
                return
            try:
                delay = self.reader.next_delay(result)  # None: terminal
            except Exception as exc:  # noqa: BLE001 -- routed to on_error, the Rx contract
                self.fail(exc)
                return
            if self._retrier is not None:
                self._retrier.succeeded()
            pushes = self._pushes  # a pushed result was checked by PushRace.push
            stale = pushes is not None and not pushes.fresh(result)
        if stale:
            if delay is None:
                delay = self.reader.delay_seconds(result)
        elif delay is None:
            self._complete(result)
            return
        else:
            self.last_result = result
            if self._ttl is not None:
                self._ttl.note(result, self.scheduler)
            self._observer.on_next(result)
            if self.disposed or self._timer is not None:
                return  # on_next disposed us, or a push it caused set the next call
        # The next call: with the timer in it where the runtime allows, else a timer.
        if self._cap is not None:
            delay = self._cap.clamp(delay)
        call = self._call
        if call is None or call.state is SETTLED:
            call = self.runtime.schedule_await_after(
                delay, self._fetch, self._on_call_result, self._on_call_error, call
            )
            if call is not None:
                self._call = call
                return
        elif call.state is QUEUED:
            return  # a push that on_next caused set the next call already
        # A timer, or a dropped call that unwinds (call_now waits for it).
        self._timer = self.scheduler.schedule_relative(delay, self.call_now)

    def _complete(self, result: T) -> None:
        """The terminal result: emitted, then the end.

        Ended before on_next: an observer that disposes in on_next (first(), take(n))
        disposes a finished poll, which cancels nothing.
        """
        self.last_result = result
        self.ended = True
        self._observer.on_next(result)
        self._finish()
        self._observer.on_completed()

    def drop_due(self) -> None:
        """Drop the call in flight and the call due (a push made them moot)."""
        call, timer = self._call, self._timer
        self._timer = None
        if call is not None:  # stays known until it has unwound (see call_now)
            call.dispose() if self._cancel_moot else call.abandon()
        if timer is not None:
            timer.dispose()
