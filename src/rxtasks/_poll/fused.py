"""`poll`: the model (`server_timer` piped through `until_terminal`), fused for speed."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from reactivex import Observable, abc

from .._core._errors import PollTimeoutError, TaskExpiredError
from .._core._status import (
    ResultReader,
    expiry_of,
    logger,
    remaining_ttl_s,
    task_id_of,
    updated_at_of,
)
from .._core._validate import check_ms
from .._runtime import AwaitCall, Runtime, resolve_scheduler
from .._runtime._await import ProtectionTimeout
from .policy import PollPolicy, Retry, is_not_found

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

__all__ = ["CANCEL_TIMEOUT_MS", "Poller", "poll"]

T = TypeVar("T")


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
    default_ms = check_ms(default_interval_ms, name="default_interval_ms")

    def subscribe(
        observer: abc.ObserverBase[T], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        chosen, runtime = resolve_scheduler(scheduler or subscribe_scheduler, caller="poll()")
        poller = Poller(
            observer,
            scheduler=chosen,
            runtime=runtime,
            get_task=get_task,
            task_id=task_id,
            default_interval_ms=default_ms,
            cancel_task=cancel_task,
            policy=policy,
            cancel_moot_calls=cancel_moot_calls,
        )
        poller.start(notifications, initial)
        return poller

    return Observable(subscribe)


#: How long an opt-in ``cancel_task`` may take before it is abandoned, in milliseconds.
CANCEL_TIMEOUT_MS = 5000


class Poller(abc.DisposableBase, Generic[T]):
    """One subscription of `poll`: the pacing core, and its optional parts.

    The core is `server_timer` and `until_terminal` in one object: a call, its result
    emitted, the next call due the result's interval after the response, the end after
    the first terminal result. It costs one timer entry, one await and one ``on_next`` per
    poll; it completes by itself rather than through ``take_while``, which takes a lock on
    every item. Each policy element and option is a part of its own, present only if
    asked for: `_PushRace`, `_Deadline`, `_Retrier`, `_TtlBackstop`, `_CancelOnDispose`.

    Its call counts as in flight until it has really returned: a call dropped for a push
    is cancelled, and the next one waits until the cancelled one has unwound.
    """

    __slots__ = (
        "_call",
        "_cancel",
        "_cancel_moot",
        "_capped",
        "_deadline",
        "_fetch",
        "_observer",
        "_pushes",
        "_retrier",
        "_timer",
        "_ttl",
        "disposed",
        "ended",
        "last_result",
        "policy",
        "reader",
        "runtime",
        "scheduler",
        "task_id",
    )

    def __init__(
        self,
        observer: abc.ObserverBase[T],
        *,
        scheduler: abc.SchedulerBase,
        runtime: Runtime,
        get_task: Callable[[str], Awaitable[T]],
        task_id: str,
        default_interval_ms: float,
        cancel_task: Callable[[str], Awaitable[object]] | None = None,
        policy: PollPolicy | None = None,
        cancel_moot_calls: bool = True,
    ) -> None:
        self._observer = observer
        self._cancel_moot = cancel_moot_calls
        self.scheduler = scheduler
        self.runtime = runtime
        self.task_id = task_id
        # What every call awaits, made once (a partial adds no Python frame to a poll).
        self._fetch: Callable[[], Awaitable[T]] = partial(get_task, task_id)
        self.reader = ResultReader(task_id, default_interval_ms)
        self.policy = policy
        # The call in flight, or the last one dropped, until it has really returned.
        self._call: AwaitCall[T] | None = None
        self._timer: abc.DisposableBase | None = None  # the next call, due
        self._capped = False  # a hint beyond max_interval_ms was warned about
        self.last_result: T | None = None
        self.ended = False  # a terminal result or an error was emitted
        self.disposed = False
        self._pushes: _PushRace | None = None
        timeout_ms = policy.timeout_ms if policy is not None else None
        self._deadline = _Deadline(self, timeout_ms) if timeout_ms is not None else None
        self._retrier = _Retrier(policy.retry) if policy and policy.retry else None
        self._ttl = _TtlBackstop() if policy and policy.ttl_backstop else None
        self._cancel = _CancelOnDispose(self, cancel_task) if cancel_task else None

    def start(self, notifications: Observable[Any] | None, initial: T | None = None) -> None:
        """Start: the deadline, the first call, and the pushes if any.

        The first call is at once, or due ``initial`` 's interval after it is emitted.
        """
        if self._deadline is not None:
            self._deadline.start()
        if initial is None:
            self.call_now()
        else:
            self._on_result(initial)  # emitted as if polled: the next call is paced by it
        if notifications is not None and not self.disposed:
            self.race_pushes().listen(notifications)

    def race_pushes(self) -> _PushRace:
        """Race pushed results (see `_PushRace`) against the timer from now on."""
        if self._pushes is None:
            self._pushes = _PushRace(self)
            self.runtime.expect_pushes()
        return self._pushes

    # -- the pacing core ----------------------------------------------------------------

    def call_now(self, _scheduler: abc.SchedulerBase | None = None, _state: object = None) -> None:
        """Call ``get_task`` now, or as soon as the call dropped before has returned."""
        self._timer = None
        if self.disposed:
            return
        previous = self._call
        if previous is not None and not previous.settled:
            previous.when_settled(self.call_now)
            return
        self._call = self.runtime.schedule_await(self._fetch, self._on_result, self._on_error)

    def _on_result(self, result: T) -> None:
        self._call = None
        if self.disposed:
            return
        try:
            terminal = self.reader.terminal(result)
        except Exception as exc:  # noqa: BLE001 -- routed to on_error, the Rx contract
            self.fail(exc)
            return
        if self._retrier is not None:
            self._retrier.succeeded()
        pushes = self._pushes
        if pushes is not None and pushes.is_stale(result):
            self._call_after(result)  # a push already told something newer: emit nothing
            return
        self.emit(result, terminal)

    def emit(self, result: T, terminal: bool) -> None:
        """Emit a result (polled or pushed); complete after a terminal one."""
        if self._pushes is not None:
            self._pushes.emitted(result)
        self.last_result = result
        if terminal:
            # Ended before on_next: an observer that disposes in on_next (first(),
            # take(n)) disposes a finished poll, which cancels nothing.
            self.ended = True
            self._observer.on_next(result)
            self._finish()
            self._observer.on_completed()
            return
        if self._ttl is not None:
            self._ttl.note(result, self.scheduler)
        self._observer.on_next(result)
        if not self.disposed:  # on_next may have disposed us
            self._call_after(result)

    def _call_after(self, result: T) -> None:
        delay = self.reader.delay_seconds(result)
        policy = self.policy
        if policy is not None:
            delay = self._clamp(policy, delay)
        self._timer = self.scheduler.schedule_relative(delay, self.call_now)

    def _clamp(self, policy: PollPolicy, delay: float) -> float:
        clamped = policy.clamp(delay)
        if clamped < delay and not self._capped:
            self._capped = True  # once per poll, not once per result
            logger.warning(
                "task %s: the server asks for a poll every %s ms; polling every %s ms"
                " (max_interval_ms)",
                self.task_id,
                f"{delay * 1000:.6g}",
                f"{clamped * 1000:.6g}",
            )
        return clamped

    def _on_error(self, error: Exception) -> None:
        """An error of ``get_task``: maybe the ttl ran out, maybe retry, else the end."""
        self._call = None
        if self.disposed:
            return
        if self._ttl is not None:
            expired = self._ttl.expired(error, self)
            if expired is not None:
                self.fail(expired)
                return
        if self._retrier is not None:
            delay_s = self._retrier.delay_s(error, self.task_id)
            if delay_s is not None:
                self._timer = self.scheduler.schedule_relative(delay_s, self.call_now)
                return
        self.fail(error)

    def drop_due(self) -> None:
        """Drop the call in flight and the call due (a push made them moot)."""
        call, timer = self._call, self._timer
        self._timer = None
        if call is not None:  # stays known until it has unwound (see call_now)
            call.dispose() if self._cancel_moot else call.abandon()
        if timer is not None:
            timer.dispose()

    # -- the end --------------------------------------------------------------------------

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
        """Stop polling; send the opt-in ``cancel_task`` if the task may still run. Never raises."""
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


class _PushRace:
    """Pushed results race the timer: emitted at once, the poll due and in flight dropped.

    The model's reference: pushes for this task merged in, each restarting the timer
    (``switch_latest``), stale ones (an older ``lastUpdatedAt`` than a result already
    emitted) filtered out. Results for other tasks are ignored.
    """

    __slots__ = ("_last_updated", "_poller", "_subscription")

    def __init__(self, poller: Poller[Any]) -> None:
        self._poller = poller
        self._last_updated: datetime | None = None
        self._subscription: abc.DisposableBase | None = None

    def listen(self, notifications: Observable[Any]) -> None:
        """Subscribe to pushed results, of any task."""
        poller = self._poller
        subscription = notifications.subscribe(self.push, self._failed, scheduler=poller.scheduler)
        if poller.disposed:  # a replayed terminal push ended the stream during subscribe
            subscription.dispose()
        else:
            self._subscription = subscription

    def push(self, result: Any) -> None:
        """Take one pushed result (of any task: other tasks' are ignored)."""
        poller = self._poller
        runtime = poller.runtime
        if not runtime.in_loop_thread():  # from another thread: handled in the loop's
            runtime.call_soon_threadsafe(lambda: self.push(result))
            return
        if poller.disposed or task_id_of(result) != poller.task_id or self.is_stale(result):
            return
        reader = poller.reader
        try:
            terminal = reader.is_terminal(reader.status(result))
        except Exception:  # noqa: BLE001 -- a bad push must not end the poll
            logger.warning("task %s: ignoring a pushed result without status", poller.task_id)
            return
        poller.drop_due()  # fresher than anything a poll in flight or due could tell
        poller.emit(result, terminal)

    def is_stale(self, result: object) -> bool:
        """Whether a result is older than one already emitted."""
        last = self._last_updated
        if last is None:
            return False
        updated = updated_at_of(result)
        return updated is not None and updated < last

    def emitted(self, result: object) -> None:
        """Note the time of a result emitted, polled or pushed."""
        updated = updated_at_of(result)
        if updated is not None:
            self._last_updated = updated

    def _failed(self, error: Exception) -> None:
        logger.warning(
            "task %s: notifications failed (%r); polling goes on without them",
            self._poller.task_id,
            error,
        )

    def dispose(self) -> None:
        """Stop listening."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.dispose()


class _Deadline:
    """`PollPolicy.timeout_ms`: the whole poll fails with `PollTimeoutError` when it passes.

    The model's reference: ``ops.timeout(<an absolute time>, other=throw(PollTimeoutError))``.
    """

    __slots__ = ("_poller", "_timeout_ms", "_timer")

    def __init__(self, poller: Poller[Any], timeout_ms: float) -> None:
        self._poller = poller
        self._timeout_ms = timeout_ms
        self._timer: abc.DisposableBase | None = None

    def start(self) -> None:
        """Start counting, from subscription."""
        self._timer = self._poller.scheduler.schedule_relative(
            self._timeout_ms / 1000, self._passed
        )

    def _passed(self, _scheduler: abc.SchedulerBase, _state: object = None) -> None:
        self._timer = None
        poller = self._poller
        timeout_ms = self._timeout_ms
        poller.fail(
            PollTimeoutError(
                f"task {poller.task_id} was not terminal after {timeout_ms} ms",
                task_id=poller.task_id,
                last_result=poller.last_result,
                timeout_ms=timeout_ms,
            )
        )

    def dispose(self) -> None:
        """Stop counting."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.dispose()


class _Retrier:
    """`PollPolicy.retry`: a transient error is retried after a backoff, not the end.

    The count starts again after a success. The model's reference: a ``catch`` that
    resubscribes to `server_timer` after `Retry.delay_ms`, counting errors in a row.
    """

    __slots__ = ("_failures", "_retry")

    def __init__(self, retry: Retry) -> None:
        self._retry = retry
        self._failures = 0  # transient errors in a row

    def succeeded(self) -> None:
        """A call answered: the next error is the first in a row."""
        self._failures = 0

    def delay_s(self, error: Exception, task_id: str) -> float | None:
        """How long to wait before retrying after ``error``; None: it is the end."""
        retry = self._retry
        if self._failures >= retry.attempts or not retry.is_transient(error):
            return None
        delay_ms = retry.delay_ms(self._failures)
        self._failures += 1
        logger.info(
            "task %s: get_task failed (%r); retry %d of %d in %.0f ms",
            task_id,
            error,
            self._failures,
            retry.attempts,
            delay_ms,
        )
        return delay_ms / 1000


class _TtlBackstop:
    """`PollPolicy.ttl_backstop`: "not found" once the ttl has surely passed is expiry.

    When the ttl has surely run out is kept on the loop's clock, from the server's own
    timestamps only: at a response at most ``createdAt + ttl - lastUpdatedAt`` of the ttl
    is left (the whole ttl when either time is unknown). The estimate can be late, never
    early, whatever the two clocks say; a task the server still reports has not expired.
    """

    __slots__ = ("_expiry",)

    def __init__(self) -> None:
        self._expiry: float | None = None  # when the ttl has surely run out

    def note(self, result: object, scheduler: abc.SchedulerBase) -> None:
        """Keep the earliest sure expiry a result tells."""
        remaining = remaining_ttl_s(result)
        if remaining is not None:
            expiry = scheduler.now.timestamp() + remaining
            if self._expiry is None or expiry < self._expiry:
                self._expiry = expiry

    def expired(self, error: Exception, poller: Poller[Any]) -> TaskExpiredError | None:
        """`TaskExpiredError` if ``error`` says "not found" once the ttl has passed."""
        expiry = self._expiry
        now = poller.scheduler.now.timestamp()
        if expiry is None or not is_not_found(error) or now < expiry:
            return None
        expired_at = expiry_of(poller.last_result)
        when = f" (expired at {expired_at.isoformat()})" if expired_at is not None else ""
        expired = TaskExpiredError(
            f"task {poller.task_id} outlived its ttl{when} and is no longer known to the server",
            task_id=poller.task_id,
            last_result=poller.last_result,
            expired_at=expired_at,
        )
        expired.__cause__ = error
        return expired


class _CancelOnDispose:
    """``cancel_task``: sent, shielded and bounded, when a poll is disposed before its end."""

    __slots__ = ("_cancel_task", "_poller")

    def __init__(
        self, poller: Poller[Any], cancel_task: Callable[[str], Awaitable[object]]
    ) -> None:
        self._poller = poller
        self._cancel_task = cancel_task

    def send(self) -> None:
        """Send it, on the poll's own runtime; never raises."""
        poller = self._poller
        try:
            poller.runtime.schedule_await(
                self._call, _ignore, self._failed, protect_s=CANCEL_TIMEOUT_MS / 1000
            )
        except Exception as exc:  # noqa: BLE001 -- dispose never raises
            logger.warning("task %s: cancel_task could not be sent: %s", poller.task_id, exc)

    def _call(self) -> Awaitable[object]:
        return self._cancel_task(self._poller.task_id)

    def _failed(self, error: Exception) -> None:
        task_id = self._poller.task_id
        if isinstance(error, ProtectionTimeout):
            logger.warning(
                "task %s: cancel_task took longer than %s ms; abandoned", task_id, CANCEL_TIMEOUT_MS
            )
        else:
            logger.warning("task %s: cancel_task failed: %r", task_id, error)


def _ignore(_: object) -> None:
    """The outcome of a best-effort cancel is for nobody downstream."""
