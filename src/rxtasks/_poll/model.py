"""The model of polling, public: `server_timer` piped through `until_terminal`; `from_async`.

A poll of a task is a timer driven by the server's interval (`server_timer`: one
``get_task`` per tick, the next tick due the result's hint after the response) that ends
after the first terminal result (`until_terminal`, ``take_while`` inclusive). These are
written as plain reactivex compositions, to read and to compose differently; `poll` is
the same thing fused into one object for speed, and a property test holds the two equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

import reactivex
from reactivex import Observable, abc

from .._core._status import ResultReader, task_id_of
from .._core._validate import check_ms
from .._runtime import resolve_scheduler

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .policy import PollPolicy

__all__ = ["from_async", "server_timer", "until_terminal"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def from_async(
    fn: Callable[[*Ts], Awaitable[T]],
    *args: *Ts,
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


def server_timer(
    get_task: Callable[[str], Awaitable[T]],
    task_id: str,
    default_interval_ms: float = 500,
    *,
    policy: PollPolicy | None = None,
    initial: T | None = None,
) -> Observable[T]:
    """Poll a task forever, one ``get_task`` per tick of a timer the server drives.

    The first tick is at once; each next one is due the result's interval hint after the
    response (``pollInterval``, ``pollIntervalMs``, their snake_case names, or the same
    keys of a ``dict``; ``default_interval_ms`` when there is none; an unusable hint falls
    back to it with one warning). At most one call is in flight. It never ends by itself:
    pipe it through `until_terminal` (which `poll` does, fused). Disposing it cancels the
    call in flight and the timer; an error of ``get_task`` ends it.

    ``w---w---i---w-c---c---c--`` : ``w`` working, ``i`` input_required, ``c`` completed.

    It is the composition ``fetch.pipe(ops.expand(lambda result: timer(interval(result))
    .pipe(ops.flat_map(fetch))))`` with ``fetch = from_async(get_task, task_id)``, and it
    runs wherever `poll` does (`AnyioScheduler`, `iterate`, ``AsyncIOScheduler``,
    ``TestScheduler``).

    Args:
        get_task: Async function returning the task's current state (``tasks/get``).
        task_id: The task.
        default_interval_ms: Interval when a result has no usable hint, in milliseconds.
        policy: Only its floor and cap apply here (`PollPolicy.clamp`): the interval
            is kept between ``min_interval_ms`` and ``max_interval_ms``.
        initial: A known state (the created task's): emitted first, and the first tick
            is due its interval after it: ``reactivex.just(initial)`` in place of the
            first ``fetch`` in the composition above.

    Returns:
        An observable of every result, forever.

    Raises:
        ArgumentTypeError: If ``default_interval_ms`` is not a number.
        ArgumentError: If ``default_interval_ms`` is negative, NaN or infinite.

    Example:
        >>> statuses = rxtasks.server_timer(get_task, "t1").pipe(
        ...     rxtasks.until_terminal(), ops.map(lambda task: task.status)
        ... )
        >>> async for status in rxtasks.iterate(statuses):
        ...     print(status)
        working
        completed
    """
    from reactivex import operators as ops  # on first use: 5% of `import rxtasks`

    default_ms = check_ms(default_interval_ms, name="default_interval_ms")

    def ticks(_: abc.SchedulerBase | None) -> Observable[T]:
        reader = ResultReader(task_id, default_ms)  # one per subscription: warns once
        fetch = from_async(get_task, task_id)

        def next_tick(result: T) -> Observable[T]:
            delay = reader.delay_seconds(result)
            if policy is not None:
                delay = policy.clamp(delay)
            return reactivex.timer(delay).pipe(ops.flat_map(lambda _: fetch))

        first = fetch if initial is None else reactivex.just(initial)
        return first.pipe(ops.expand(next_tick))

    return reactivex.defer(ticks)


def until_terminal() -> Callable[[Observable[T]], Observable[T]]:
    """Take task results up to and including the first terminal one, then complete.

    The operator ``ops.take_while(lambda r: not is_terminal(status of r), inclusive=True)``
    for every result shape: the status is read as `poll` reads it (an unknown one is not
    terminal, warned about once; a result without any ``status`` ends the stream with
    `InvalidResultError`).

    ``w--i--w--c--w|`` -> ``w--i--w--c|``

    Returns:
        The operator, for ``pipe``.

    Example:
        >>> rxtasks.server_timer(get_task, "t1").pipe(rxtasks.until_terminal())
    """
    from reactivex import operators as ops  # on first use: 5% of `import rxtasks`

    def operator(source: Observable[T]) -> Observable[T]:
        def subscribe(
            observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            reader: ResultReader | None = None

            def going_on(result: T) -> bool:
                nonlocal reader
                if reader is None:  # named after the first result's task, for messages
                    reader = ResultReader(str(task_id_of(result)), 0)
                return not reader.terminal(result)

            taken = source.pipe(ops.take_while(going_on, inclusive=True))
            return taken.subscribe(observer, scheduler=scheduler)

        return Observable(subscribe)

    return operator
