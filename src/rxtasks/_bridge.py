"""Bridges from observables to ``async for``: lazy `iterate`, and structured `open_stream`."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Literal, Self, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

from ._anyio_scheduler import AnyioScheduler
from ._errors import BufferOverflowError
from ._observable import poll
from ._pull import PullScheduler

if TYPE_CHECKING:
    from types import TracebackType

    from reactivex import Observable, abc

__all__ = ["ObservableIterator", "iterate", "open_stream", "poll_until_terminal"]

T = TypeVar("T")


class ObservableIterator(AsyncIterator[T]):
    """The lazy iterator of `iterate` and `poll_until_terminal`.

    It subscribes on the first ``__anext__`` and runs the pipeline only inside
    ``__anext__``, in the consumer's task, on a scheduler of its own with no background
    task (see `iterate`). It holds no task group or cancel scope between items, so
    ``break`` needs no cleanup; `aclose` (or ``async with``) disposes it at once.
    """

    __slots__ = ("_done", "_error", "_items", "_observable", "_running", "_scheduler", "_sub")

    def __init__(self, observable: Observable[T]) -> None:
        self._observable = observable
        self._items: deque[T] = deque()
        self._done = False
        self._error: Exception | None = None
        self._running = False
        self._scheduler: PullScheduler | None = None
        self._sub: abc.DisposableBase | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        items = self._items
        if items:
            return items.popleft()
        if not self._done:
            if self._running:
                raise RuntimeError("anext(): the iterator is already running in another task")
            self._running = True
            try:
                scheduler = self._scheduler
                if scheduler is None:
                    self._scheduler = scheduler = PullScheduler()
                    self._sub = self._observable.subscribe(
                        self._on_next, self._on_error, self._on_completed, scheduler=scheduler
                    )
                await scheduler.run_until(self._ready)
            except BaseException:
                # Cancelled, or the pipeline stalled: like a generator that raised, the
                # iterator is finished; the await in flight was cancelled with us. What
                # disposal scheduled (an opt-in tasks/cancel) still runs, shielded.
                with anyio.CancelScope(shield=True):
                    await self._close()
                raise
            finally:
                self._running = False
            if items:
                return items.popleft()
        error = self._error
        if error is not None:
            self._error = None
            raise error
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Dispose the subscription and drop undelivered items; iteration then stops.

        Awaits that disposal schedules (such as `poll`'s opt-in ``cancel_task``) run here.
        """
        await self._close()
        self._items.clear()
        self._error = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _ready(self) -> bool:
        return self._done or bool(self._items)

    def _on_next(self, value: T) -> None:
        self._items.append(value)
        scheduler = self._scheduler
        if scheduler is not None and scheduler.sleeping:
            scheduler.wake()  # pushed by another task while the consumer waits

    def _on_error(self, error: Exception) -> None:
        self._error = error
        self._on_completed()

    def _on_completed(self) -> None:
        self._done = True
        scheduler = self._scheduler
        if scheduler is not None:
            scheduler.wake()

    async def _close(self) -> None:
        self._done = True
        sub, self._sub, scheduler, self._scheduler = self._sub, None, self._scheduler, None
        if sub is not None:
            sub.dispose()
        if scheduler is not None:
            await scheduler.run_awaits()


def iterate(observable: Observable[T]) -> ObservableIterator[T]:
    """Iterate over an observable with ``async for``, lazily, in the consumer's task.

    The pipeline runs on a pull scheduler driven by the consumer: its timers and awaits
    run only while the consumer waits in ``__anext__``, one at a time. Nothing runs while
    the consumer is suspended, ``break`` leaves no work behind (no ``aclose()`` needed),
    and cancelling the consumer cancels the await in flight. Errors of the pipeline are
    raised from ``async for`` unchanged, after the items emitted before them.

    It suits sequential pipelines built from rxtasks sources and reactivex operators
    (which use the scheduler they are subscribed with). A pipeline that waits on
    something else, such as a subject fed by another task or a source bound to another
    scheduler, raises `StalledError`; use `open_stream` for it, and for real concurrency.

    Args:
        observable: The pipeline; subscribed on the first ``__anext__``.

    Returns:
        An async iterator of the observable's items.

    Example:
        >>> from reactivex import operators as ops
        >>> async def main() -> None:
        ...     statuses = rxtasks.poll(get_task, "t1").pipe(ops.map(lambda t: t.status))
        ...     async for status in rxtasks.iterate(statuses):
        ...         print(status)
    """
    return ObservableIterator(observable)


def poll_until_terminal(
    get_task: Callable[[str], Awaitable[T]],
    task_id: str,
    default_interval_ms: float = 500,
) -> ObservableIterator[T]:
    """Poll a task until it reaches a terminal status: ``async for`` over `poll`.

    A drop-in replacement for ``mcp.shared.experimental.tasks.polling.poll_until_terminal``
    (MCP Python SDK 1.23-1.30, removed in 2.0), with the same signature and results: the
    first call happens on the first ``__anext__``, every result is yielded, the terminal
    one last, and the next call is due the result's interval hint (or
    ``default_interval_ms``) after each response. It accepts every result shape of `poll`,
    for both MCP protocol revisions.

    Two intended differences from the SDK's generator: an unusable interval hint
    (negative, NaN, ...) falls back to the default with one warning instead of raising;
    and time the consumer spends between items counts toward the interval instead of
    being added to it.

    Args:
        get_task: Async function that takes the task id and returns its state.
        task_id: The task to poll.
        default_interval_ms: Interval when a result has no usable hint, in milliseconds.

    Returns:
        An async iterator of every result, ending with the terminal one.

    Example:
        >>> async for task in rxtasks.poll_until_terminal(session.experimental.get_task, task_id):
        ...     print(task.status)
        working
        completed
    """
    return ObservableIterator(poll(get_task, task_id, default_interval_ms))


@asynccontextmanager
async def open_stream(
    observable: Observable[T], *, buffer: int | Literal["latest"] | None = None
) -> AsyncGenerator[AsyncIterator[T]]:
    """Run an observable on an `AnyioScheduler` and read its items with ``async for``.

    The scheduler's task group lives in this ``async with`` block: the pipeline runs
    concurrently with the consumer (many tasks merged, timeouts racing calls), and
    leaving the block, however it is left, disposes the subscription and cancels the
    awaits in flight. An error of the pipeline is raised in the consumer unchanged (the
    same exception object, not an ``ExceptionGroup``) after the items before it.

    Items may also be emitted from other threads (reactivex's thread schedulers); they
    are handed over to the event loop's thread.

    Args:
        observable: The pipeline, subscribed with the block's scheduler as default.
        buffer: How many undelivered items to keep. ``None`` (default): all of them,
            losslessly. An ``int`` ``n``: at most ``n``; one more raises
            `BufferOverflowError` in the consumer after the ``n`` items, never a silent
            drop. ``"latest"``: only the newest (for dashboards that show the last state).

    Yields:
        An async iterator of the observable's items.

    Raises:
        ValueError: If ``buffer`` is not ``None``, ``"latest"`` or an int >= 1.

    Example:
        >>> async with rxtasks.open_stream(rxtasks.poll(get_task, "t1")) as tasks:
        ...     async for task in tasks:
        ...         print(task.status)
    """
    if not (buffer is None or buffer == "latest" or (type(buffer) is int and buffer >= 1)):
        raise ValueError(f'`buffer` must be None, "latest" or an int >= 1, got {buffer!r}')
    async with AnyioScheduler() as scheduler:
        stream = _PushStream[T](buffer)
        stream.subscription = observable.subscribe(
            stream.on_next, stream.on_error, stream.on_completed, scheduler=scheduler
        )
        try:
            yield stream
        finally:
            stream.close()
            scheduler.cancel()


class _PushStream(AsyncIterator[T]):
    """The consumer's end of `open_stream`: a buffer and a wake-up event."""

    __slots__ = (
        "_buffer",
        "_closed",
        "_done",
        "_error",
        "_items",
        "_thread",
        "_token",
        "_waiter",
        "subscription",
    )

    def __init__(self, buffer: int | Literal["latest"] | None) -> None:
        self._buffer = buffer
        self._items: deque[T] = deque()
        self._done = False
        self._closed = False
        self._error: Exception | None = None
        self._waiter: anyio.Event | None = None
        self._thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()
        self.subscription: abc.DisposableBase | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        items = self._items
        while True:
            if self._closed:
                raise anyio.ClosedResourceError("the stream's `async with` block has ended")
            if items:
                return items.popleft()
            if self._done:
                error = self._error
                if error is not None:
                    self._error = None
                    raise error
                raise StopAsyncIteration
            waiter = self._waiter = anyio.Event()
            await waiter.wait()

    def on_next(self, value: T) -> None:
        if threading.get_ident() != self._thread:
            anyio.from_thread.run_sync(self.on_next, value, token=self._token)
            return
        if self._done:
            return
        items = self._items
        buffer = self._buffer
        if buffer == "latest":
            items.clear()
        elif isinstance(buffer, int) and len(items) >= buffer:
            self._finish(
                BufferOverflowError(
                    f"open_stream(): more than buffer={buffer} items were waiting for the"
                    " consumer; raise `buffer`, pass buffer=None, or consume faster",
                    buffer=buffer,
                )
            )
            if self.subscription is not None:
                self.subscription.dispose()
            return
        items.append(value)
        self._wake()

    def on_error(self, error: Exception) -> None:
        if threading.get_ident() != self._thread:
            anyio.from_thread.run_sync(self.on_error, error, token=self._token)
            return
        if not self._done:
            self._finish(error)

    def on_completed(self) -> None:
        if threading.get_ident() != self._thread:
            anyio.from_thread.run_sync(self.on_completed, token=self._token)
            return
        if not self._done:
            self._finish(None)

    def close(self) -> None:
        self._closed = True
        sub, self.subscription = self.subscription, None
        if sub is not None:
            sub.dispose()
        self._done = True
        self._items.clear()

    def _finish(self, error: Exception | None) -> None:
        self._done = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()
