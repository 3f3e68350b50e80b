"""The optional parts of a `Poller`, one per policy element or option, each built only if asked for.

Each states its reference composition in the model (`server_timer` and reactivex
operators); the equality test holds each part to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._core._errors import PollTimeoutError, TaskExpiredError
from .._core._status import expiry_of, logger, remaining_ttl_s, task_id_of, updated_at_of
from .._runtime._await import ProtectionTimeout
from .policy import PollPolicy, Retry, is_not_found

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from reactivex import Observable, abc

    from .fused import PollerBase

__all__ = [
    "CANCEL_TIMEOUT_MS",
    "CancelOnDispose",
    "Cap",
    "Deadline",
    "PushRace",
    "Retrier",
    "TtlBackstop",
]

#: How long an opt-in ``cancel_task`` may take before it is abandoned, in milliseconds.
CANCEL_TIMEOUT_MS = 5000


class Cap:
    """`PollPolicy.min_interval_ms` / ``max_interval_ms``: the interval, floored and capped.

    A hint beyond the cap is warned about once per poll. The model's reference: the
    clamp inside `server_timer` (its ``policy``).
    """

    __slots__ = ("_policy", "_task_id", "_warned")

    def __init__(self, policy: PollPolicy, task_id: str) -> None:
        self._policy = policy
        self._task_id = task_id
        self._warned = False

    def clamp(self, delay: float) -> float:
        """The delay in seconds, within the policy's floor and cap."""
        clamped = self._policy.clamp(delay)
        if clamped < delay and not self._warned:
            self._warned = True  # once per poll, not once per result
            logger.warning(
                "task %s: the server asks for a poll every %s ms; polling every %s ms"
                " (max_interval_ms)",
                self._task_id,
                f"{delay * 1000:.6g}",
                f"{clamped * 1000:.6g}",
            )
        return clamped


class PushRace:
    """Pushed results race the timer: emitted at once, the poll due and in flight dropped.

    The model's reference: pushes for this task merged in, each restarting the timer
    (``switch_latest``), stale ones (an older ``lastUpdatedAt`` than a result already
    emitted) filtered out. Results for other tasks are ignored.
    """

    __slots__ = ("_last_updated", "_poller", "_subscription")

    def __init__(self, poller: PollerBase[Any]) -> None:
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
        if poller.disposed or task_id_of(result) != poller.task_id:
            return
        try:
            delay = poller.reader.next_delay(result)  # None: terminal
        except Exception:  # noqa: BLE001 -- a bad push must not end the poll
            logger.warning("task %s: ignoring a pushed result without status", poller.task_id)
            return
        if self.fresh(result):
            poller.drop_due()  # fresher than anything a poll in flight or due could tell
            poller.emit(result, delay)

    def fresh(self, result: object) -> bool:
        """Whether a result may be emitted (it is not stale); if so, note its time."""
        updated = updated_at_of(result)
        if updated is None:
            return True
        last = self._last_updated
        if last is not None and updated < last:
            return False
        self._last_updated = updated
        return True

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


class Deadline:
    """`PollPolicy.timeout_ms`: the whole poll fails with `PollTimeoutError` when it passes.

    The model's reference: ``ops.timeout(<an absolute time>, other=throw(PollTimeoutError))``.
    """

    __slots__ = ("_poller", "_timeout_ms", "_timer")

    def __init__(self, poller: PollerBase[Any], timeout_ms: float) -> None:
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


class Retrier:
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


class TtlBackstop:
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

    def expired(self, error: Exception, poller: PollerBase[Any]) -> TaskExpiredError | None:
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


class CancelOnDispose:
    """``cancel_task``: sent, shielded and bounded, when a poll is disposed before its end."""

    __slots__ = ("_cancel_task", "_poller")

    def __init__(
        self, poller: PollerBase[Any], cancel_task: Callable[[str], Awaitable[object]]
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
