"""Awaiting coroutines from reactivex schedulers, and choosing the scheduler to do it.

reactivex schedulers run synchronous actions; ``get_task`` is a coroutine function. A
scheduler that can also await implements `AwaitingScheduler.schedule_await`: rxtasks'
own `AnyioScheduler` and the pull scheduler of `iterate()`. reactivex's ``AsyncIOScheduler``
and its virtual-time schedulers are adapted here, so that existing Rx apps and their
marble tests work unchanged.
"""

from __future__ import annotations

import asyncio
import threading
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler

from ._errors import SchedulerError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator

__all__ = ["AwaitRunner", "AwaitingScheduler", "resolve_scheduler"]

T = TypeVar("T")


class AwaitRunner(Protocol):
    """Something that can await a coroutine function and report its outcome."""

    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> abc.DisposableBase:
        """Await ``func()`` soon, then call ``on_result`` or ``on_error`` (never both).

        Disposing the returned disposable cancels the await if it is in flight; neither
        callback is called afterwards. Cancellation and ``BaseException`` are not
        reported to ``on_error``.
        """
        ...


class AwaitingScheduler(abc.SchedulerBase):
    """A reactivex scheduler that can also await coroutines (see `AwaitRunner`)."""

    __slots__ = ()

    @abstractmethod
    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> abc.DisposableBase:
        """Await ``func()`` soon, then call ``on_result`` or ``on_error``.

        Args:
            func: Called with no arguments; returns the awaitable.
            on_result: Called with the awaitable's result.
            on_error: Called with the ``Exception`` it raised.

        Returns:
            A disposable that cancels the await; no callback is called after it.
        """


def resolve_scheduler(
    scheduler: abc.SchedulerBase | None, *, caller: str
) -> tuple[abc.SchedulerBase, AwaitRunner]:
    """Return the scheduler for timers and the runner for awaits of one subscription.

    Args:
        scheduler: The scheduler given to the factory or to ``subscribe``, if any.
        caller: The public name of the caller, for error messages.

    Raises:
        SchedulerError: If no scheduler that can await is available.
    """
    if isinstance(scheduler, AwaitingScheduler):
        return scheduler, scheduler
    if isinstance(scheduler, AsyncIOScheduler):
        return scheduler, _AsyncioRunner(scheduler)
    if isinstance(scheduler, VirtualTimeScheduler):
        return scheduler, _VirtualTimeRunner(scheduler)
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
    return asyncio_scheduler, _AsyncioRunner(asyncio_scheduler)


class _AsyncioRunner:
    """Awaits on reactivex's ``AsyncIOScheduler``: one asyncio task per await."""

    __slots__ = ("_scheduler",)

    def __init__(self, scheduler: AsyncIOScheduler) -> None:
        self._scheduler = scheduler

    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
    ) -> abc.DisposableBase:
        call = _AsyncioCall(func, on_result, on_error)
        # Hop onto the scheduler's loop first: the scheduler may belong to a loop in
        # another thread (AsyncIOThreadSafeScheduler), and its loop is not public.
        call.hop = self._scheduler.schedule(call.start)
        return call


class _AsyncioCall(abc.DisposableBase):
    __slots__ = (
        "_func",
        "_loop",
        "_on_error",
        "_on_result",
        "_task",
        "_thread",
        "disposed",
        "hop",
    )

    def __init__(
        self,
        func: Callable[[], Awaitable[Any]],
        on_result: Callable[[Any], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        self._func = func
        self._on_result = on_result
        self._on_error = on_error
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = 0
        self.hop: abc.DisposableBase | None = None
        self.disposed = False

    def start(self, _scheduler: abc.SchedulerBase, _state: object = None) -> None:
        if self.disposed:
            return
        self._loop = loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        # The task is kept here: asyncio holds only weak references to tasks.
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            result = await self._func()
        except Exception as exc:  # noqa: BLE001 -- routed to on_error, the Rx contract
            if not self.disposed:
                self._on_error(exc)
            return
        if not self.disposed:
            self._on_result(result)

    def dispose(self) -> None:
        self.disposed = True
        if self.hop is not None:
            self.hop.dispose()
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not task.done():
            if self._thread == threading.get_ident():
                task.cancel()
            else:
                loop.call_soon_threadsafe(task.cancel)


class _VirtualTimeRunner:
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
    ) -> abc.DisposableBase:
        disposed = False

        def action(_scheduler: abc.SchedulerBase, _state: object = None) -> None:
            if disposed:
                return
            try:
                result = _run_without_suspending(func)
            except Exception as exc:  # noqa: BLE001 -- routed to on_error, the Rx contract
                on_error(exc)
            else:
                on_result(result)

        def dispose() -> None:
            nonlocal disposed
            disposed = True
            scheduled.dispose()

        scheduled = self._scheduler.schedule(action)
        return Disposable(dispose)


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
