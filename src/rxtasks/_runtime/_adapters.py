"""Runtimes for reactivex's own schedulers, and choosing the runtime of a subscription.

reactivex's ``AsyncIOScheduler`` and its virtual-time schedulers (``TestScheduler``)
cannot await; they are adapted here, so that existing Rx apps and their marble tests
work unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, TypeVar, cast

from reactivex.scheduler import VirtualTimeScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler

from .._core._errors import SchedulerError
from ._await import RUNNING, AwaitCall, Runtime, is_foreign_cancellation
from ._base import LoopScheduler

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator

    from reactivex import abc

__all__ = ["resolve_scheduler"]

T = TypeVar("T")


def resolve_scheduler(
    scheduler: abc.SchedulerBase | None, *, caller: str
) -> tuple[abc.SchedulerBase, Runtime]:
    """Return the scheduler for timers and the runtime for awaits of one subscription.

    Args:
        scheduler: The scheduler given to the factory or to ``subscribe``, if any.
        caller: The public name of the caller, for error messages.

    Raises:
        SchedulerError: If no scheduler that can await is available.
    """
    if isinstance(scheduler, LoopScheduler):  # rxtasks' own: AnyioScheduler, the pull one
        return scheduler, scheduler
    if isinstance(scheduler, AsyncIOScheduler):
        return scheduler, _AsyncioRuntime(scheduler)
    if isinstance(scheduler, VirtualTimeScheduler):
        return scheduler, _VirtualTimeRuntime(scheduler)
    if scheduler is not None:
        raise SchedulerError(
            f"{caller}: {type(scheduler).__name__} cannot await coroutines. Subscribe with"
            " scheduler=rxtasks.AnyioScheduler (asyncio or trio), reactivex's"
            " AsyncIOScheduler, or a virtual-time scheduler such as TestScheduler"
        )
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise SchedulerError(
            f"{caller}: no scheduler can await coroutines here. Subscribe with"
            " scheduler=... from `async with rxtasks.AnyioScheduler() as scheduler:`"
            " (asyncio or trio), consume it with rxtasks.iterate() or rxtasks.open_stream(),"
            " or subscribe inside a running asyncio event loop"
        ) from None
    asyncio_scheduler = AsyncIOScheduler(loop)
    return asyncio_scheduler, _AsyncioRuntime(asyncio_scheduler)


class _AsyncioRuntime(Runtime):
    """Awaits on reactivex's ``AsyncIOScheduler``: one asyncio task per await."""

    __slots__ = ("_loop", "_scheduler", "_tasks")

    def __init__(self, scheduler: AsyncIOScheduler) -> None:
        self._scheduler = scheduler
        # reactivex keeps the scheduler's loop private; its attribute is stable in 6.x.
        self._loop: asyncio.AbstractEventLoop = scheduler._loop  # pyright: ignore[reportPrivateUsage]
        self._tasks: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references

    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
        *,
        protect_s: float | None = None,
    ) -> AwaitCall[T]:
        """Await ``func()`` in a task of its own on the scheduler's loop."""
        call = AwaitCall(func, on_result, on_error, protect_s)
        self.call_soon_threadsafe(lambda: self._start(call))
        return call

    def schedule_await_after(
        self,
        delay_s: float,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
        reuse: AwaitCall[T] | None = None,
    ) -> AwaitCall[T] | None:
        """The call's task is started by one loop callback at its due time.

        What the scheduler's own timer would do (``call_later``, or ``call_soon`` for no
        delay), without reactivex's disposables around it. From another thread: None.
        """
        if not self.in_loop_thread():
            return None
        call = AwaitCall(func, on_result, on_error)
        loop = self._loop
        if delay_s > 0:
            handle: asyncio.Handle = loop.call_later(delay_s, self._start, call)
        else:
            handle = loop.call_soon(self._start, call)
        call.settle_hook = handle.cancel  # disposed before due: the task is never made
        return call

    def _start(self, call: AwaitCall[Any]) -> None:
        task = self._loop.create_task(self._run(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: AwaitCall[Any]) -> None:
        task = asyncio.current_task()
        assert task is not None
        if call.begin(task.cancel):
            with contextlib.suppress(asyncio.CancelledError):  # disposed: nothing to report
                await call.run()

    def in_loop_thread(self) -> bool:
        """Whether the caller runs in the loop's thread."""
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> bool:
        """Run ``fn()`` soon on the loop, without blocking the caller."""
        if self.in_loop_thread():
            self._loop.call_soon(fn)
            return True
        try:
            self._loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the loop is closed
            return False
        return True


class _VirtualTimeRuntime(Runtime):
    """Awaits on a virtual-time scheduler (TestScheduler): synchronously, in virtual time.

    There is no event loop under a virtual-time scheduler, so the awaitable is run to
    completion at the virtual time its action runs; it must not suspend (a scripted fake
    such as rxtasks.testing's completes at once). One that suspends is an error.
    """

    __slots__ = ("_scheduler",)

    def __init__(self, scheduler: VirtualTimeScheduler) -> None:
        self._scheduler = scheduler

    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
        *,
        protect_s: float | None = None,
    ) -> AwaitCall[T]:
        """Await ``func()`` at the scheduler's next step, without suspending."""
        call = AwaitCall(func, on_result, on_error, protect_s)

        def action(_scheduler: abc.SchedulerBase, _state: object = None) -> None:
            self._run(call)

        scheduled = self._scheduler.schedule(action)
        call.settle_hook = scheduled.dispose  # disposed while queued: drop the action too
        return call

    def _run(self, call: AwaitCall[Any]) -> None:
        if not call.begin(None):
            return
        try:
            result = _run_without_suspending(call.func)
        except Exception as exc:  # noqa: BLE001 -- the outcome, routed to on_error
            call.fail(exc, _direct)
        except BaseException as exc:
            if call.state is RUNNING and is_foreign_cancellation(exc):
                call.fail(exc, _direct)
                return
            call.end_cancelled()
            raise
        else:
            call.succeed(result, _direct)


def _direct(callback: Callable[[Any], None], value: Any) -> None:
    callback(value)


def _run_without_suspending(func: Callable[[], Awaitable[T]]) -> T:
    steps: Generator[Any, None, T] = func().__await__()
    try:
        steps.send(None)
    except StopIteration as stop:
        return cast("T", stop.value)
    steps.close()
    raise SchedulerError(
        "an awaitable suspended under a virtual-time scheduler, which has no event loop to"
        " resume it; under TestScheduler get_task must complete without waiting (use a"
        " scripted fake), or test the real thing under an event loop with a virtual clock"
    )
