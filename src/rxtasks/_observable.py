"""Observables that await: `from_async`, and `poll`, the server-paced poll of one task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from reactivex import Observable, abc

from ._errors import PollTimeoutError, TaskExpiredError
from ._policy import PollPolicy, is_not_found
from ._runtime import AwaitCall, Runtime, resolve_scheduler
from ._runtime._await import ProtectionTimeout
from ._status import (
    ResultReader,
    expiry_of,
    logger,
    remaining_ttl_s,
    task_id_of,
    updated_at_of,
    validate_interval_ms,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

__all__ = ["CANCEL_TIMEOUT_S", "from_async", "poll"]

T = TypeVar("T")


def from_async(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[T]:
    """Make a cold observable that awaits ``fn(*args)`` once per subscription.

    Unlike ``reactivex.from_future``, it takes the coroutine *function*: every
    subscription (and every ``retry`` or ``repeat``) calls it afresh, and disposing the
    subscription cancels the await in flight.

    ``--r|`` : emits the result and completes, or fails with the exception ``fn`` raised.

    Args:
        fn: An async function (or any callable returning an awaitable).
        *args: Positional arguments for ``fn``.
        scheduler: Where to await; default: the scheduler given to ``subscribe``, else
            the running asyncio loop (see `poll` for the schedulers that can await).

    Returns:
        An observable of one item.

    Example:
        >>> async def answer() -> int:
        ...     return 42
        >>> async def main() -> list[int]:
        ...     return [x async for x in rxtasks.iterate(rxtasks.from_async(answer))]
        >>> anyio.run(main)
        [42]
    """

    def subscribe(
        observer: abc.ObserverBase[T], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        _, runtime = resolve_scheduler(scheduler or subscribe_scheduler, caller="from_async()")

        def on_result(result: T) -> None:
            observer.on_next(result)
            observer.on_completed()

        return runtime.schedule_await(lambda: fn(*args), on_result, observer.on_error)

    return Observable(subscribe)


def poll(
    get_task: Callable[[str], Awaitable[T]],
    task_id: str,
    default_interval_ms: float = 500,
    *,
    scheduler: abc.SchedulerBase | None = None,
    notifications: Observable[Any] | None = None,
    cancel_task: Callable[[str], Awaitable[object]] | None = None,
    policy: PollPolicy | None = None,
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
            `CANCEL_TIMEOUT_S` seconds; its errors are logged, not raised. It is not
            called when the stream ends by itself (terminal result or error), nor when
            the observer disposes on the terminal result itself (``first()``,
            ``take(n)``). With `iterate` it runs on ``aclose()``, on cancellation, and
            before the iteration stops when an operator ended the pipeline
            (``take``, ``take_until``); not on a bare ``break``.
        policy: Limits for servers you do not control (`PollPolicy`): a floor and a cap
            on the interval, an overall timeout, retries of transient errors, the ttl
            backstop. Without one, every hint is followed and every error ends the poll.

    Returns:
        An observable of every result, ending with the terminal one.

    Raises:
        TypeError: If ``default_interval_ms`` is not a number.
        ValueError: If ``default_interval_ms`` is negative, NaN or infinite.

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
    default_ms = validate_interval_ms(default_interval_ms, name="default_interval_ms")

    def subscribe(
        observer: abc.ObserverBase[T], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        timers, runtime = resolve_scheduler(scheduler or subscribe_scheduler, caller="poll()")
        poller = Poller(
            observer,
            timers=timers,
            runtime=runtime,
            get_task=get_task,
            task_id=task_id,
            default_interval_ms=default_ms,
            cancel_task=cancel_task,
            policy=policy,
        )
        poller.start(notifications)
        return poller

    return Observable(subscribe)


#: How long an opt-in ``cancel_task`` may take before it is abandoned, in seconds.
CANCEL_TIMEOUT_S = 5.0


class Poller(abc.DisposableBase, Generic[T]):
    """One subscription of `poll`: the server-driven timer, and its own disposable.

    The chain is built once per subscription; a poll costs one timer entry, one await
    and one ``on_next``. It completes by itself after a terminal result rather than
    through ``take_while``: that operator takes a lock on every item, and the poller must
    know the status anyway to stop calling.

    Its call counts as in flight until it has really returned: a call dropped for a
    push is cancelled, and the next one waits until the cancelled one has unwound.
    """

    __slots__ = (
        "_call",
        "_cancel_task",
        "_capped",
        "_deadline",
        "_ended",
        "_expiry",
        "_failures",
        "_get_task",
        "_last_result",
        "_last_updated",
        "_listening",
        "_observer",
        "_policy",
        "_push_subscription",
        "_reader",
        "_runtime",
        "_task_id",
        "_timer",
        "_timers",
        "disposed",
    )

    def __init__(
        self,
        observer: abc.ObserverBase[T],
        *,
        timers: abc.SchedulerBase,
        runtime: Runtime,
        get_task: Callable[[str], Awaitable[T]],
        task_id: str,
        default_interval_ms: float,
        cancel_task: Callable[[str], Awaitable[object]] | None = None,
        policy: PollPolicy | None = None,
    ) -> None:
        self._observer = observer
        self._timers = timers
        self._runtime = runtime
        self._get_task = get_task
        self._task_id = task_id
        self._cancel_task = cancel_task
        self._reader = ResultReader(task_id, default_interval_ms)
        # The call in flight, or the last one dropped until it has really returned.
        self._call: AwaitCall[T] | None = None
        self._timer: abc.DisposableBase | None = None
        self._push_subscription: abc.DisposableBase | None = None
        self._listening = False
        self._last_updated: datetime | None = None
        self._policy = policy
        self._deadline: abc.DisposableBase | None = None
        # The ttl backstop: when the ttl has surely run out, on the loop's clock.
        self._expiry: float | None = None
        self._failures = 0  # transient errors in a row
        self._last_result: T | None = None
        self._ended = False  # a terminal result or an error was emitted
        self._capped = False  # a hint beyond max_interval_ms was warned about
        self.disposed = False

    def start(self, notifications: Observable[Any] | None) -> None:
        policy = self._policy
        if policy is not None and policy.timeout_ms is not None:
            self._deadline = self._timers.schedule_relative(
                policy.timeout_ms / 1000, self._on_timeout
            )
        self.request()
        if notifications is not None:
            self.listen(notifications)

    def request(self, _scheduler: abc.SchedulerBase | None = None, _state: object = None) -> None:
        """Call ``get_task`` now, or as soon as the call dropped before has returned."""
        self._timer = None
        if self.disposed:
            return
        previous = self._call
        if previous is not None and not previous.settled:
            previous.when_settled(self.request)
            return
        self._call = self._runtime.schedule_await(self._fetch, self._on_result, self._on_error)

    def accept_pushes(self) -> None:
        """Race pushed results (handed to `push`) against the timer from now on."""
        self._listening = True
        self._runtime.expect_pushes()

    def push(self, result: Any) -> None:
        """Take a pushed result (of any task: other tasks' are ignored)."""
        self._on_push(result)

    def listen(self, notifications: Observable[Any]) -> None:
        self.accept_pushes()
        subscription = notifications.subscribe(
            self._on_push, self._on_push_error, scheduler=self._timers
        )
        if self.disposed:  # a replayed terminal push ended the stream during subscribe
            subscription.dispose()
        else:
            self._push_subscription = subscription

    def _fetch(self) -> Awaitable[T]:
        return self._get_task(self._task_id)

    def _on_result(self, result: T) -> None:
        self._call = None
        if self.disposed:
            return
        try:
            terminal = self._reader.terminal(result)
        except Exception as exc:  # noqa: BLE001 -- routed to on_error, the Rx contract
            self._fail(exc)
            return
        self._failures = 0
        if self._listening and self._is_stale(result):
            # A push already told us something newer: keep polling, emit nothing.
            self._schedule_next(result)
            return
        self._emit(result, terminal)

    def _on_push(self, result: Any) -> None:
        runtime = self._runtime
        if not runtime.in_loop_thread():
            # Pushed from another thread: handled in the loop's thread, like everything.
            runtime.call_soon_threadsafe(lambda: self._on_push(result))
            return
        if self.disposed or task_id_of(result) != self._task_id or self._is_stale(result):
            return
        reader = self._reader
        try:
            terminal = reader.is_terminal(reader.status(result))
        except Exception:  # noqa: BLE001 -- a bad push must not end the poll
            logger.warning("task %s: ignoring a pushed result without status", self._task_id)
            return
        # Fresher than anything a poll in flight or due could tell: drop both. The call
        # stays known until it has unwound, so that the next one does not overlap it.
        call, timer = self._call, self._timer
        self._timer = None
        if call is not None:
            call.dispose()
        if timer is not None:
            timer.dispose()
        self._emit(result, terminal)

    def _on_push_error(self, error: Exception) -> None:
        logger.warning(
            "task %s: notifications failed (%r); polling goes on without them",
            self._task_id,
            error,
        )

    def _emit(self, result: T, terminal: bool) -> None:
        if self._listening:
            updated = updated_at_of(result)
            if updated is not None:
                self._last_updated = updated
        self._last_result = result
        policy = self._policy
        if policy is not None and policy.ttl_backstop and not terminal:
            self._note_expiry(result)
        if terminal:
            # Ended before on_next: an observer that disposes in on_next (first(),
            # take(n)) disposes a finished poll, which cancels nothing.
            self._ended = True
            self._observer.on_next(result)
            self._finish()
            self._observer.on_completed()
            return
        self._observer.on_next(result)
        if not self.disposed:  # on_next may have disposed us
            self._schedule_next(result)

    def _note_expiry(self, result: T) -> None:
        """Keep when the ttl has surely run out, on the loop's clock (the ttl backstop).

        Only the server's own timestamps are compared with each other: at the response,
        at most ``createdAt + ttl - lastUpdatedAt`` of the ttl is left (or the whole ttl
        when the server tells no update time); the client's loop clock measures from
        there. The estimate can only be late, never early, whatever the clocks say.
        """
        remaining = remaining_ttl_s(result)
        if remaining is not None:
            expiry = _loop_time(self._timers) + remaining
            if self._expiry is None or expiry < self._expiry:
                self._expiry = expiry

    def _schedule_next(self, result: T) -> None:
        delay = self._reader.delay_seconds(result)
        policy = self._policy
        if policy is not None:
            clamped = policy.clamp(delay)
            if clamped < delay and not self._capped:
                self._capped = True  # once per poll, not once per result
                logger.warning(
                    "task %s: the server asks for a poll every %s ms; polling every %s ms"
                    " (max_interval_ms)",
                    self._task_id,
                    f"{delay * 1000:.6g}",
                    f"{clamped * 1000:.6g}",
                )
            delay = clamped
        self._timer = self._timers.schedule_relative(delay, self.request)

    def _is_stale(self, result: object) -> bool:
        last = self._last_updated
        if last is None:
            return False
        updated = updated_at_of(result)
        return updated is not None and updated < last

    def _on_error(self, error: Exception) -> None:
        """An error of ``get_task``: maybe the ttl ran out, maybe retry, else the end."""
        self._call = None
        if self.disposed:
            return
        expiry = self._expiry
        if expiry is not None and is_not_found(error) and _loop_time(self._timers) >= expiry:
            expired = self._expired()
            expired.__cause__ = error
            self._fail(expired)
            return
        retry = self._policy.retry if self._policy is not None else None
        if retry is not None and self._failures < retry.attempts and retry.is_transient(error):
            delay_ms = retry.delay_ms(self._failures)
            self._failures += 1
            logger.info(
                "task %s: get_task failed (%r); retry %d of %d in %.0f ms",
                self._task_id,
                error,
                self._failures,
                retry.attempts,
                delay_ms,
            )
            self._timer = self._timers.schedule_relative(delay_ms / 1000, self.request)
            return
        self._fail(error)

    def _on_timeout(self, _scheduler: abc.SchedulerBase, _state: object = None) -> None:
        self._deadline = None
        if self.disposed:
            return
        assert self._policy is not None
        assert self._policy.timeout_ms is not None
        self._fail(
            PollTimeoutError(
                f"task {self._task_id} was not terminal after {self._policy.timeout_ms} ms",
                task_id=self._task_id,
                last_result=self._last_result,
                timeout_ms=self._policy.timeout_ms,
            )
        )

    def _expired(self) -> TaskExpiredError:
        expired_at = expiry_of(self._last_result)
        when = f" (expired at {expired_at.isoformat()})" if expired_at is not None else ""
        return TaskExpiredError(
            f"task {self._task_id} outlived its ttl{when} and is no longer known to the server",
            task_id=self._task_id,
            last_result=self._last_result,
            expired_at=expired_at,
        )

    def _fail(self, error: Exception) -> None:
        """End with an error: stop everything (cancelling the call in flight)."""
        if not self.disposed:
            self._ended = True
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
        if self._cancel_task is not None and not self._ended:
            try:
                self._runtime.schedule_await(
                    self._send_cancel, _ignore, self._cancel_failed, protect_s=CANCEL_TIMEOUT_S
                )
            except Exception as exc:  # noqa: BLE001 -- dispose never raises
                logger.warning("task %s: cancel_task could not be sent: %s", self._task_id, exc)

    def _drop(self) -> None:
        for disposable in (self._call, self._timer, self._push_subscription, self._deadline):
            if disposable is not None:
                disposable.dispose()
        self._timer = self._push_subscription = self._deadline = None

    def _send_cancel(self) -> Awaitable[object]:
        assert self._cancel_task is not None
        return self._cancel_task(self._task_id)

    def _cancel_failed(self, error: Exception) -> None:
        if isinstance(error, ProtectionTimeout):
            logger.warning(
                "task %s: cancel_task took longer than %s s; abandoned",
                self._task_id,
                CANCEL_TIMEOUT_S,
            )
        else:
            logger.warning("task %s: cancel_task failed: %r", self._task_id, error)


def _loop_time(timers: abc.SchedulerBase) -> float:
    """The scheduler's clock in seconds: the loop's (or the virtual-time scheduler's)."""
    return timers.now.timestamp()


def _ignore(_: object) -> None:
    """The outcome of a best-effort cancel is for nobody downstream."""
