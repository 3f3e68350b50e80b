"""Poll policies: clamping the server's interval, deadlines, retries, the ttl backstop (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._core._errors import ArgumentError
from .._core._validate import check_count, check_fraction, check_ms

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["PollPolicy", "Retry", "is_not_found"]

#: JSON-RPC "invalid params": what both protocol revisions answer for an unknown task id.
NOT_FOUND_CODE = -32602


def is_not_found(error: BaseException) -> bool:
    """Tell whether an error says the task does not exist (JSON-RPC -32602).

    Reads ``error.code`` (mcp 2.x ``MCPError``, rxtasks.testing's ``TaskNotFound``) or
    ``error.error.code`` (mcp 1.x ``McpError``).
    """
    code = getattr(error, "code", None)
    if code is None:
        code = getattr(getattr(error, "error", None), "code", None)
    return code == NOT_FOUND_CODE


def _check_ms(value: float | None, name: str, *, positive: bool = False) -> None:
    if value is not None:
        check_ms(value, name=name, positive=positive)


@dataclass(frozen=True, kw_only=True)
class Retry:
    """Retry transient ``get_task`` errors with exponential backoff and jitter.

    The delay before retry ``n`` (from 0) is ``backoff_ms * 2**n``, capped at
    ``max_backoff_ms``, then moved at random by up to ``jitter`` times itself while
    staying within ``[backoff_ms, max_backoff_ms]`` (the model of Reactor's
    ``Retry.backoff``). After a success the count starts again. A "task not found"
    error (-32602) is permanent and never retried, whatever ``retry_on`` says.

    Attributes:
        attempts: Retries in a row before the error ends the poll.
        backoff_ms: The first delay, in milliseconds.
        max_backoff_ms: The largest delay, in milliseconds.
        jitter: How much of each delay is random, from 0 (none) to 1.
        retry_on: Exception types that are transient, or a predicate deciding it.
        rng: The random source for the jitter (seed one for repeatable tests).

    Example:
        >>> Retry(attempts=5, backoff_ms=200, retry_on=(OSError, TimeoutError))
    """

    attempts: int = 3
    backoff_ms: float = 100.0
    max_backoff_ms: float = 10_000.0
    jitter: float = 0.5
    retry_on: tuple[type[Exception], ...] | Callable[[Exception], bool] = (OSError,)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_count(self.attempts, name="attempts", least=0)
        _check_ms(self.backoff_ms, "backoff_ms", positive=True)
        _check_ms(self.max_backoff_ms, "max_backoff_ms", positive=True)
        if self.max_backoff_ms < self.backoff_ms:
            raise ArgumentError(
                f"`max_backoff_ms` ({self.max_backoff_ms}) must be >= `backoff_ms`"
                f" ({self.backoff_ms})"
            )
        check_fraction(self.jitter, name="jitter")

    def is_transient(self, error: Exception) -> bool:
        """Tell whether ``error`` may be retried."""
        if is_not_found(error):
            return False
        retry_on = self.retry_on
        if isinstance(retry_on, tuple):
            return isinstance(error, retry_on)
        return retry_on(error)

    def delay_ms(self, retry: int) -> float:
        """Return the delay before retry number ``retry`` (from 0), in milliseconds."""
        base = min(self.backoff_ms * 2.0 ** min(retry, 64), self.max_backoff_ms)
        if not self.jitter:
            return base
        spread = base * self.jitter
        low = max(self.backoff_ms - base, -spread)
        high = min(self.max_backoff_ms - base, spread)
        return base + low + (high - low) * self.rng.random()


@dataclass(frozen=True, kw_only=True)
class PollPolicy:
    """How to poll a server you do not control: cadence limits, a deadline, retries.

    Every field is off unless set, except the ttl backstop.

    Attributes:
        min_interval_ms: A floor under the interval (the server's hint, or the
            default): protects both sides from a hint of ``0``. A floor below the
            server's hint changes nothing: rxtasks never polls faster than asked.
        max_interval_ms: A cap over the interval: protects against a hint of hours.
        timeout_ms: An overall deadline from subscription; then `PollTimeoutError`
            (carrying the last result) and the call in flight is cancelled.
        retry: Retry transient ``get_task`` errors (see `Retry`).
        ttl_backstop: When a result carries a ttl (``ttl`` / ``ttlMs``), a "not found"
            answer that comes once the ttl has surely passed ends the poll with
            `TaskExpiredError` (naming the task and its last state) instead of the bare
            error. "Surely" is measured on the client's loop clock from the server's own
            ``createdAt`` and ``lastUpdatedAt``, never by comparing the two clocks; a
            task the server still reports is polled on.

    In reactivex terms, with ``timer = server_timer(get_task, task_id, policy=policy)``
    (the fused `poll` is held equal to these compositions by a property test):

    - ``min_interval_ms`` / ``max_interval_ms``: the clamp inside `server_timer`; each
      tick is due ``policy.clamp(hint)`` after the response.
    - ``timeout_ms``: ``timer.pipe(until_terminal(), ops.timeout(start + timeout,
      other=reactivex.throw(PollTimeoutError(...))))``, at an absolute time from
      subscription, so a result does not restart the count.
    - ``retry``: reactivex has no ``retry_when``; it is a ``catch`` that, for a transient
      error, resubscribes to ``timer`` after ``Retry.delay_ms(n)`` (``reactivex.timer``
      then ``flat_map``), counting errors in a row and resetting the count on a result;
      any other error, or one past ``attempts``, is re-raised.
    - pushes (`poll`'s ``notifications``, not a policy field): a ``switch_latest`` over
      this task's fresh pushes, each restarting ``timer`` after ``push``'s interval,
      with results older than one emitted (``lastUpdatedAt``) filtered out.
    - ``ttl_backstop``: a ``catch`` that maps "not found", once the ttl has surely
      passed, to `TaskExpiredError`.

    Example:
        >>> policy = PollPolicy(min_interval_ms=100, max_interval_ms=30_000,
        ...                     timeout_ms=600_000, retry=Retry(attempts=5))
        >>> rxtasks.poll(get_task, task_id, policy=policy)
    """

    min_interval_ms: float | None = None
    max_interval_ms: float | None = None
    timeout_ms: float | None = None
    retry: Retry | None = None
    ttl_backstop: bool = True

    def __post_init__(self) -> None:
        _check_ms(self.min_interval_ms, "min_interval_ms")
        _check_ms(self.max_interval_ms, "max_interval_ms", positive=True)
        _check_ms(self.timeout_ms, "timeout_ms")
        if (
            self.min_interval_ms is not None
            and self.max_interval_ms is not None
            and self.min_interval_ms > self.max_interval_ms
        ):
            raise ArgumentError(
                f"`min_interval_ms` ({self.min_interval_ms}) must not exceed"
                f" `max_interval_ms` ({self.max_interval_ms})"
            )

    @classmethod
    def recommended(cls) -> PollPolicy:
        """A starting point for production: 100 ms floor, 30 s cap, 3 retries on OSError."""
        return cls(min_interval_ms=100, max_interval_ms=30_000, retry=Retry())

    def clamp(self, seconds: float) -> float:
        """Apply the floor and the cap to an interval in seconds."""
        if self.min_interval_ms is not None:
            seconds = max(seconds, self.min_interval_ms / 1000)
        if self.max_interval_ms is not None:
            seconds = min(seconds, self.max_interval_ms / 1000)
        return seconds
