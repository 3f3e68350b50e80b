"""Bridges from observables to ``async for``: lazy `iterate`, and structured `open_stream`."""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Generic, Literal, Self, TypeVar

import anyio

from ._core._errors import ArgumentError, BufferOverflowError, IteratorBusyError, StreamClosedError
from ._core._status import ResultReader
from ._core._validate import check_count, check_ms
from ._runtime import AnyioScheduler, PullScheduler
from ._runtime._inbox import Inbox
from ._runtime._loop import LoopBinding

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
    ``break`` needs no cleanup: an iterator that is dropped disposes its subscription.
    `aclose` (or ``async with``) disposes it at once and runs what disposal scheduled.
    """

    __slots__ = ("__weakref__", "_finalizer", "_observable", "_running", "_scheduler", "_sink")

    def __init__(self, observable: Observable[T]) -> None:
        self._observable = observable
        self._sink = _PullSink[T]()
        self._running = False
        self._scheduler: PullScheduler | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        sink = self._sink
        items = sink.items
        if items:
            return items.popleft()
        if not sink.done:
            if self._running:
                raise IteratorBusyError("anext(): the iterator is being read by another task")
            self._running = True
            try:
                scheduler = self._scheduler
                if scheduler is None:
                    scheduler = self._subscribe()
                await scheduler.run_until(sink.ready)
            except BaseException:
                # Cancelled, or the pipeline stalled: like a generator that raised, the
                # iterator is finished; the await in flight was cancelled with us. What
                # disposal scheduled (an opt-in tasks/cancel) still runs, shielded.
                with anyio.CancelScope(shield=True):
                    await self._close(cleanup=True)
                raise
            finally:
                self._running = False
            if items:
                return items.popleft()
        scheduler = self._scheduler
        if scheduler is not None and scheduler.has_awaits:
            # The pipeline ended by itself (take, take_until...): what its disposal
            # scheduled, such as an opt-in tasks/cancel, runs before the iteration stops.
            with anyio.CancelScope(shield=True):
                await scheduler.run_cleanup()
        error = sink.error
        if error is not None:
            sink.error = None
            raise error
        raise StopAsyncIteration

    def _subscribe(self) -> PullScheduler:
        self._scheduler = scheduler = PullScheduler()
        sink = self._sink
        sink.bind(scheduler)
        subscription = self._observable.subscribe(
            sink.on_next, sink.on_error, sink.on_completed, scheduler=scheduler
        )
        # Nothing the subscription holds refers to this iterator: when the consumer
        # drops it (a bare `break`), the subscription is disposed with it.
        self._finalizer = weakref.finalize(self, subscription.dispose)
        return scheduler

    async def aclose(self) -> None:
        """Dispose the subscription and drop undelivered items; iteration then stops.

        Awaits that disposal schedules (such as `poll`'s opt-in ``cancel_task``) run here.
        Called from another task while a reader waits in ``__anext__``, it ends that
        reader too (with ``StopAsyncIteration``), once its call in flight has returned
        or, where the call can be interrupted, at once.
        """
        await self._close(cleanup=not self._running)
        self._sink.items.clear()
        self._sink.error = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _close(self, *, cleanup: bool) -> None:
        """Dispose; run what disposal scheduled unless a reader will (``cleanup``)."""
        sink = self._sink
        sink.done = True
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer()  # disposes the subscription
        scheduler = self._scheduler
        if scheduler is not None:
            scheduler.wake()
            if cleanup:
                await scheduler.run_cleanup()


_NEXT, _ERROR, _COMPLETED = 0, 1, 2


class _PullSink(Generic[T]):
    """The observer of `ObservableIterator`: what the pipeline produced, and its end.

    Events from other threads are handed over to the loop's thread, in order (`Inbox`).
    """

    __slots__ = ("done", "error", "inbox", "items", "scheduler")

    def __init__(self) -> None:
        self.items: deque[T] = deque()
        self.done = False
        self.error: Exception | None = None
        self.scheduler: PullScheduler | None = None
        self.inbox: Inbox | None = None

    def bind(self, scheduler: PullScheduler) -> None:
        self.scheduler = scheduler
        self.inbox = Inbox(scheduler, self._handle)

    def ready(self) -> bool:
        return self.done or bool(self.items)

    def on_next(self, value: T) -> None:
        assert self.inbox is not None
        self.inbox.post(_NEXT, value)

    def on_error(self, error: Exception) -> None:
        assert self.inbox is not None
        self.inbox.post(_ERROR, error)

    def on_completed(self) -> None:
        assert self.inbox is not None
        self.inbox.post(_COMPLETED, None)

    def _handle(self, kind: int, value: Any) -> None:
        if self.done:
            return
        if kind == _NEXT:
            self.items.append(value)
        elif kind == _ERROR:
            self.error = value
            self.done = True
        else:
            self.done = True
        scheduler = self.scheduler
        if scheduler is not None and scheduler.waiting:
            scheduler.wake()  # from another task or thread while the consumer waits


def iterate(observable: Observable[T]) -> ObservableIterator[T]:
    """Iterate over an observable with ``async for``, lazily, in the consumer's task.

    The pipeline runs on a pull scheduler driven by the consumer: its timers and awaits
    run only while the consumer waits in ``__anext__``, one await at a time. Nothing runs
    while the consumer is suspended, ``break`` leaves no work behind (no ``aclose()``
    needed: a dropped iterator disposes its subscription), and cancelling the consumer
    cancels the await in flight. Errors of the pipeline are raised from ``async for``
    unchanged, after the items emitted before them.

    An await in flight still races what can end it: timers that fall due meanwhile fire
    on time (``ops.timeout``, ``take_until(timer(...))``, a policy's deadline), and a
    pushed result that makes the call moot (`poll`'s ``notifications``) drops it at once.
    Items produced while an await is in flight are yielded once it has returned or been
    dropped.

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
    *,
    initial: T | None = None,
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

    It yields what ``rxtasks.iterate(rxtasks.poll(get_task, task_id, default_interval_ms))``
    yields, at the same times, through a dedicated iterator: with no pushes, policy or
    cancel to race, a poll needs no scheduler, and this is every ``async for`` user's
    hot path.

    Args:
        get_task: Async function that takes the task id and returns its state.
        task_id: The task to poll.
        default_interval_ms: Interval when a result has no usable hint, in milliseconds.
        initial: A known state (the created task's), as for `poll`: yielded first, and
            the first call is due its interval after it (an rxtasks addition; the SDK's
            generator always called at once).

    Returns:
        An async iterator of every result, ending with the terminal one.

    Example:
        >>> async for task in rxtasks.poll_until_terminal(session.experimental.get_task, task_id):
        ...     print(task.status)
        working
        completed
    """
    default_ms = check_ms(default_interval_ms, name="default_interval_ms")
    return _PollIterator(get_task, task_id, default_ms, initial)


class _PollIterator(ObservableIterator[T]):
    """`poll_until_terminal`: `poll`'s pacing, fused into one iterator (no scheduler).

    The next call is due the result's interval after its response; the wait for it
    happens in the next ``__anext__``: ``sleep(delay)`` when the consumer took no time
    (exactly what the SDK's loop sleeps), the rest of it otherwise, and one checkpoint
    when it is already due.
    """

    __slots__ = (
        "_delay",
        "_done",
        "_get_task",
        "_initial",
        "_loop",
        "_reader",
        "_start",
        "_task_id",
    )

    def __init__(
        self,
        get_task: Callable[[str], Awaitable[T]],
        task_id: str,
        default_interval_ms: float,
        initial: T | None = None,
    ) -> None:
        self._get_task = get_task
        self._task_id = task_id
        self._reader = ResultReader(task_id, default_interval_ms)
        self._initial = initial  # yielded by the first __anext__, in place of a call
        self._loop: LoopBinding | None = None
        self._start = 0.0  # when the last response arrived
        self._delay = 0.0  # and how long after it the next call is due
        self._done = False
        self._running = False

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        if self._running:
            raise IteratorBusyError("anext(): the iterator is being read by another task")
        self._running = True
        try:
            loop = self._loop
            if loop is None:  # the first call: at once
                self._loop = loop = LoopBinding()
                initial, self._initial = self._initial, None
                if initial is not None:
                    return self._received(initial, loop)
            else:
                delay = self._delay
                now = loop.clock()
                due = self._start + delay
                if not delay or now >= due:
                    await loop.checkpoint()  # a checkpoint, as the SDK's loop sleeps 0
                else:
                    await loop.sleep(delay if now == self._start else due - now)
            return self._received(await self._get_task(self._task_id), loop)
        except BaseException:
            self._done = True  # like a generator that raised: finished
            raise
        finally:
            self._running = False

    def _received(self, result: T, loop: LoopBinding) -> T:
        """A result: the end if it is terminal, else when the next call is due."""
        self._start = loop.clock()
        delay = self._reader.next_delay(result)
        if delay is None:
            self._done = True
        else:
            self._delay = delay
        return result

    async def aclose(self) -> None:
        """Stop: nothing runs between items, so there is nothing to cancel."""
        self._done = True


@asynccontextmanager
async def open_stream(
    observable: Observable[T], *, buffer: int | Literal["latest"] | None = None
) -> AsyncGenerator[AsyncIterator[T]]:
    """Run an observable on an `AnyioScheduler` and read its items with ``async for``.

    The scheduler's task group lives in this ``async with`` block: the pipeline runs
    concurrently with the consumer (many tasks merged, timeouts racing calls), and
    leaving the block, however it is left, disposes the subscription and cancels the
    awaits in flight. An error of the pipeline is raised in the consumer unchanged (the
    same exception object, not an ``ExceptionGroup``) after the items before it. If the
    block's body raises while an error of the pipeline is still waiting to be read, the
    body's exception propagates with that error attached (a note, and its
    ``__context__`` if it had none), so neither is lost.

    Items may also be emitted from other threads (reactivex's thread schedulers); they
    are handed over to the event loop's thread without ever blocking those threads, in
    each thread's order.

    Several tasks may read the iterator at once: each item goes to one of them. When
    the pipeline ends, every reader ends (``StopAsyncIteration``, or the pipeline's
    error, which every reader raises); a reader still waiting when the block ends
    raises `StreamClosedError`, as does reading after it.

    Args:
        observable: The pipeline, subscribed with the block's scheduler as default.
        buffer: How many undelivered items to keep. ``None`` (default): all of them,
            losslessly. An ``int`` ``n``: at most ``n``; one more raises
            `BufferOverflowError` in the consumer after the ``n`` items, never a silent
            drop. ``"latest"``: only the newest (for dashboards that show the last state).

    Yields:
        An async iterator of the observable's items.

    Raises:
        ArgumentTypeError: If ``buffer`` is not ``None``, ``"latest"`` or an int.
        ArgumentError: If ``buffer`` is another string, or an int less than 1.

    Example:
        >>> async with rxtasks.open_stream(rxtasks.poll(get_task, "t1")) as tasks:
        ...     async for task in tasks:
        ...         print(task.status)
    """
    _check_buffer(buffer)
    async with AnyioScheduler() as scheduler:
        stream = _PushStream[T](buffer, scheduler)
        stream.subscription = observable.subscribe(
            stream.on_next, stream.on_error, stream.on_completed, scheduler=scheduler
        )
        try:
            yield stream
        except BaseException as exc:
            stream.attach_pending_error(exc)
            raise
        finally:
            stream.close()
            scheduler.cancel()


def _check_buffer(buffer: object) -> None:
    if buffer is None or buffer == "latest":
        return
    if isinstance(buffer, str):
        raise ArgumentError(f'`buffer` must be None, "latest" or an int >= 1, got {buffer!r}')
    check_count(buffer, name="buffer", least=1)


class _PushStream(AsyncIterator[T]):
    """The consumer's end of `open_stream`: a buffer and a wake-up event for its readers."""

    __slots__ = (
        "_buffer",
        "_closed",
        "_done",
        "_error",
        "_error_seen",
        "_inbox",
        "_items",
        "_waiter",
        "subscription",
    )

    def __init__(self, buffer: int | Literal["latest"] | None, runtime: AnyioScheduler) -> None:
        self._buffer = buffer
        self._inbox = Inbox(runtime, self._handle)
        self._items: deque[T] = deque()
        self._done = False
        self._closed = False
        self._error: Exception | None = None
        self._error_seen = False
        # One event for every reader waiting: set, it wakes them all; each then looks.
        self._waiter: anyio.Event | None = None
        self.subscription: abc.DisposableBase | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        items = self._items
        while True:
            if self._closed:
                raise StreamClosedError("open_stream(): the stream's `async with` block has ended")
            if items:
                return items.popleft()
            if self._done:
                error = self._error
                if error is not None:
                    self._error_seen = True
                    raise error
                raise StopAsyncIteration
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = anyio.Event()
            await waiter.wait()

    def on_next(self, value: T) -> None:
        self._inbox.post(_NEXT, value)

    def on_error(self, error: Exception) -> None:
        self._inbox.post(_ERROR, error)

    def on_completed(self) -> None:
        self._inbox.post(_COMPLETED, None)

    def _handle(self, kind: int, value: Any) -> None:
        if self._done:
            return
        if kind == _NEXT:
            self._take(value)
        else:
            self._finish(value if kind == _ERROR else None)

    def _take(self, value: T) -> None:
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

    def attach_pending_error(self, exc: BaseException) -> None:
        """Attach an error of the pipeline that no reader has seen to ``exc``."""
        error = self._error
        if error is None or self._error_seen or error is exc:
            return
        self._error_seen = True
        exc.add_note(f"open_stream(): the pipeline had also failed, unread: {error!r}")
        if exc.__context__ is None:
            exc.__context__ = error

    def close(self) -> None:
        self._closed = True
        sub, self.subscription = self.subscription, None
        if sub is not None:
            sub.dispose()
        self._done = True
        self._items.clear()
        self._wake()  # readers still waiting learn that the block has ended

    def _finish(self, error: Exception | None) -> None:
        self._done = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()
