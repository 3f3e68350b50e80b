"""The one await primitive, and the contract between a poll and the scheduler that runs it.

reactivex schedulers run synchronous actions; ``get_task`` is a coroutine function. A
`Runtime` is a scheduler (or an adapter of one) that can also await: it runs an
`AwaitCall` and reports its outcome. The rule every runtime keeps is written once, in
`AwaitCall`: after the await, exactly one of ``on_result`` / ``on_error``, and nothing at
all once the call was disposed.
"""

from __future__ import annotations

import asyncio
import enum
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import anyio
from reactivex import abc

from ._timers import Queued

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "AwaitCall",
    "AwaitState",
    "ProtectionTimeout",
    "Runtime",
    "as_exception",
    "is_foreign_cancellation",
]

T = TypeVar("T")


class AwaitState(enum.Enum):
    """Where an `AwaitCall` is in its life."""

    #: Scheduled, not started.
    QUEUED = "queued"
    #: Its awaitable is being awaited.
    RUNNING = "running"
    #: Disposed while running: cancelled, but its awaitable has not returned yet.
    ABANDONED = "abandoned"
    #: Over: its outcome was delivered, or it was disposed and has really returned.
    SETTLED = "settled"


QUEUED = AwaitState.QUEUED
RUNNING = AwaitState.RUNNING
ABANDONED = AwaitState.ABANDONED
SETTLED = AwaitState.SETTLED


def _direct(callback: Callable[[Any], None], value: Any) -> None:
    callback(value)


class AwaitCall(Queued, abc.DisposableBase, Generic[T]):
    """One await of ``func()``: queued, running, then settled; disposing cancels it.

    A call counts as in flight until its awaitable has really returned, cancellation
    cleanup included (`settled`): a scheduler waits for that before its block ends, a
    concurrency limit releases its slot only then, and a poll starts its next call only
    then. After the outcome is delivered (or instead of it), the runtime's
    ``settle_hook`` runs, then the `when_settled` callback.

    A call may first wait in its runtime's `TimerQueue` until it is due (see
    `Runtime.schedule_await_after`): it is then still queued, and disposing it takes it
    out of the timer queue.

    Args:
        func: Called with no arguments when the call starts; returns the awaitable.
        on_result: Called with the awaitable's result.
        on_error: Called with the exception it raised.
        protect_s: If set, the await is shielded from cancellation, for at most this many
            seconds (then it fails with ``TimeoutError``): for best-effort cleanup such
            as a ``tasks/cancel`` sent while everything else is being torn down.
    """

    __slots__ = (
        "continuation",
        "func",
        "interrupter",
        "on_error",
        "on_result",
        "protect_s",
        "settle_hook",
        "state",
    )

    def __init__(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
        protect_s: float | None = None,
    ) -> None:
        self.func = func
        self.on_result = on_result
        self.on_error = on_error
        self.protect_s = protect_s
        self.state = QUEUED
        self.queue = None  # the timer queue it waits in until due, if any
        self.interrupter: Callable[[], object] | None = None
        #: The runtime's accounting, run when the call settles.
        self.settle_hook: Callable[[], None] | None = None
        #: The subscriber's continuation, run after it (see `when_settled`).
        self.continuation: Callable[[], None] | None = None

    @property
    def settled(self) -> bool:
        """Whether the call is over: its outcome delivered, or dropped and returned."""
        return self.state is SETTLED

    def when_settled(self, then: Callable[[], None]) -> None:
        """Call ``then()`` once the call is over (at once if it is)."""
        if self.state is SETTLED:
            then()
        else:
            self.continuation = then

    # -- for the runtime ----------------------------------------------------------------

    def begin(self, interrupt: Callable[[], object] | None) -> bool:
        """Start the call; False if it was disposed while queued (then do not await).

        Args:
            interrupt: How to cancel the await in flight, for `dispose`; None if the
                runtime cannot (the outcome is then dropped when it comes).
        """
        if self.state is not QUEUED:
            return False
        self.state = RUNNING
        self.interrupter = interrupt
        return True

    def succeed(self, result: T, deliver: Callable[[Callable[[Any], None], Any], None]) -> None:
        """The awaitable returned ``result``: deliver it unless disposed, and settle."""
        running = self.state is RUNNING
        self.state = SETTLED
        self.interrupter = None
        if self.continuation is None:
            # Every plain poll: only the runtime waits for the call (`_settled`, inlined).
            hook, self.settle_hook = self.settle_hook, None
            try:
                if running:
                    deliver(self.on_result, result)
            finally:
                if hook is not None:
                    hook()
            return
        try:
            if running:
                deliver(self.on_result, result)
        finally:
            self._settled()

    def fail(
        self, error: BaseException, deliver: Callable[[Callable[[Any], None], Any], None]
    ) -> None:
        """The awaitable raised ``error``, or the call cannot start: deliver it unless disposed.

        A call that never began (its runtime is gone) fails like one that ran; a disposed
        one (abandoned, or dropped while queued) hears nothing. Then the call settles.
        """
        state = self.state
        self.state = SETTLED
        try:
            if state is RUNNING or state is QUEUED:
                deliver(self.on_error, error)
        finally:
            self._settled()

    def end_cancelled(self) -> None:
        """The await ended without an outcome (cancelled): settle, deliver nothing."""
        if self.state is not SETTLED:
            self.state = SETTLED
            self._settled()

    def _settled(self) -> None:
        self.interrupter = None
        hook, self.settle_hook = self.settle_hook, None
        then, self.continuation = self.continuation, None
        try:
            if hook is not None:
                hook()
        finally:
            if then is not None:
                then()

    async def run(self, deliver: Callable[[Callable[[Any], None], Any], None] = _direct) -> None:
        """Await ``func()`` in the current task and deliver the outcome (async runtimes).

        The caller has called `begin`. Cancellation of the current task ends the call
        and propagates, except a ``CancelledError`` that ``func()`` raised by itself
        (see `is_foreign_cancellation`): that is the call's error, like any other.
        """
        try:
            if self.protect_s is None:
                result = await self.func()
            else:
                result = await self._protected(self.protect_s)
        except BaseException as exc:  # noqa: BLE001 -- see raised: cancellation is raised again
            self.raised(exc, deliver)
            return
        self.succeed(result, deliver)

    def raised(
        self, error: BaseException, deliver: Callable[[Callable[[Any], None], Any], None]
    ) -> None:
        """The await raised ``error``: deliver it, or, if it is a cancellation, re-raise it.

        An exception is the call's outcome, and so is a ``CancelledError`` that ``func()``
        raised by itself (see `is_foreign_cancellation`). A cancellation of the current
        task ends the call without an outcome and is raised again.
        """
        if isinstance(error, Exception) or (
            self.state is RUNNING and is_foreign_cancellation(error)
        ):
            self.fail(error, deliver)
            return
        self.end_cancelled()
        raise error

    async def _protected(self, seconds: float) -> T:
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + seconds
            return await self.func()
        raise ProtectionTimeout(f"gave up after {seconds} s")

    def drop(self) -> bool:
        """Forget a queued call without a word: its runtime is gone (no hooks run).

        For a scheduler that tears down: disposing would run the hooks, and a concurrency
        limit would start the next call on the runtime that just ended.

        Returns:
            True if the call was queued and is dropped now; False if it had begun or was
            over already (disposed while queued: its hooks have run).
        """
        if self.state is not QUEUED:
            return False
        self.state = SETTLED
        self.settle_hook = self.continuation = None
        return True

    def forget(self) -> None:
        """Its timer queue is being cleared: drop the call (see `drop`)."""
        self.queue = None
        self.drop()

    # -- for the subscriber -------------------------------------------------------------

    def abandon(self) -> None:
        """Drop the call's outcome without interrupting it: it runs to its end, unheard.

        A queued call is dropped as by `dispose`. A running one is left to finish (it
        still counts as in flight until then), for awaits that must not be cut short:
        some SDK sessions break when a request is cancelled as its answer arrives.
        """
        if self.state is RUNNING:
            self.state = ABANDONED
            self.interrupter = None
        else:
            self.dispose()

    def dispose(self) -> None:
        """Cancel the call: drop it if queued, interrupt it if running; no outcome follows."""
        state = self.state
        if state is QUEUED:
            queue = self.queue
            if queue is not None:  # not due yet: out of the timer queue
                self.queue = None
                queue.dropped()
            self.end_cancelled()
        elif state is RUNNING:
            self.state = ABANDONED
            interrupt, self.interrupter = self.interrupter, None
            if interrupt is not None:
                interrupt()


class ProtectionTimeout(TimeoutError):
    """A shielded await (`AwaitCall` ``protect_s``) ran out of its time and was abandoned."""


def is_foreign_cancellation(error: BaseException) -> bool:
    """Tell whether a cancellation was raised by the awaited code itself, not delivered to us.

    On asyncio, a coroutine that awaits a future someone else cancelled raises
    ``CancelledError`` although nobody cancelled its task (``cancelling() == 0``). That is
    an outcome of the call like any other exception, not a cancellation of the runtime.
    trio's ``Cancelled`` is only ever delivered by a cancel scope, so it never is.
    """
    if not isinstance(error, asyncio.CancelledError):
        return False
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop: run without suspending (virtual time)
        return True
    return task is None or task.cancelling() == 0


def as_exception(error: BaseException) -> Exception:
    """Pass a foreign ``CancelledError`` through the Rx error channel, typed as Exception.

    reactivex's ``on_error`` is typed for ``Exception``; at run time it carries any object,
    and a poll's error must reach the consumer unchanged.
    """
    return cast("Exception", error)


class Runtime(ABC):
    """What `poll` and `poll_many` need of their subscription's scheduler.

    A runtime awaits coroutines for the poll (`schedule_await`), tells whether the caller
    is in the event loop's thread and hands callbacks over to it without blocking
    (`in_loop_thread`, `call_soon_threadsafe`), and is told when results may arrive from
    other tasks (`expect_pushes`), so that its waits can be cut short by them.
    """

    __slots__ = ()

    @abstractmethod
    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
        *,
        protect_s: float | None = None,
    ) -> AwaitCall[T]:
        """Await ``func()`` soon, then call ``on_result`` or ``on_error`` (see `AwaitCall`).

        Args:
            func: Called with no arguments; returns the awaitable.
            on_result: Called with the awaitable's result.
            on_error: Called with the exception it raised.
            protect_s: Shield the await from cancellation for at most this long.

        Returns:
            The call; disposing it cancels the await, and no callback follows.
        """

    def schedule_await_after(
        self,
        delay_s: float,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
        reuse: AwaitCall[T] | None = None,
    ) -> AwaitCall[T] | None:
        """Await ``func()`` ``delay_s`` seconds (>= 0) from now, as one object.

        A timer whose action is `schedule_await`, without the timer: the call waits in
        the timer queue until it is due, then runs as `schedule_await` 's do. Disposing
        it before it is due takes it out of the queue. A delay counts from the outcome
        being delivered, as the scheduler's timers do. ``reuse`` is the caller's call
        that has just delivered its result: a runtime may queue it again rather than
        make a new one (the caller must not use it otherwise afterwards).

        Returns:
            The call; None if this runtime has no such queue: then schedule a timer
            whose action calls `schedule_await`.
        """
        return None

    def expect_pushes(self) -> None:  # noqa: B027 -- a hook with nothing to do by default
        """Results may now be pushed from other tasks while a call or a wait is in flight."""

    def in_loop_thread(self) -> bool:
        """Whether the caller runs in the thread of the runtime's event loop."""
        return True

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> bool:
        """Run ``fn()`` soon in the event loop's thread, without blocking the caller.

        Returns:
            False if the loop has ended and ``fn`` will never run.
        """
        fn()
        return True
