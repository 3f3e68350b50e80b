"""`poll_many`: many tasks as one stream, with a bound on concurrent calls."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from reactivex import Observable, abc

from .._core._errors import ArgumentTypeError, PollManyError
from .._core._status import id_and_state, logger, task_id_of
from .._core._validate import check_count
from .._runtime import AwaitCall, Runtime, resolve_scheduler
from .fused import Poller, PollSpec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from .policy import PollPolicy

__all__ = ["poll_many"]

T = TypeVar("T")


def poll_many(
    get_task: Callable[[str], Awaitable[T]],
    task_ids: Iterable[str | T] | Observable[str | T],
    default_interval_ms: float = 500,
    *,
    policy: PollPolicy | None = None,
    max_in_flight: int | None = None,
    scheduler: abc.SchedulerBase | None = None,
    notifications: Observable[Any] | None = None,
    cancel_task: Callable[[str], Awaitable[object]] | None = None,
    cancel_moot_calls: bool = True,
) -> Observable[T]:
    """Poll many tasks as one stream: the results of all, each at its own pace.

    Every task is polled as by `poll` (its own interval, one call in flight at most,
    the same ``policy``); their results are merged as they come. Tasks join as their ids
    arrive: ``task_ids`` may be an iterable or an observable (tasks created over time). A
    repeated id is polled once. An item may also be a task's known state (the created
    task, with its ``taskId``) instead of its id: it is then polled as by
    ``poll(..., initial=state)``, emitted first and first called its interval later. The
    stream completes when every task is terminal and the ids have completed.

    ``max_in_flight`` bounds the ``get_task`` calls in flight across all tasks; calls
    wait their turn first come, first served, so no task starves.

    One task's error does not end the others: its results so far stay delivered, the
    others go on, and when they are done the stream ends with `PollManyError`, an
    ``ExceptionGroup`` of every failed task's error (unchanged), by task id in
    ``failures``. An error of ``task_ids`` itself (the observable's, or one raised while
    iterating the iterable) ends the stream at once and stops every poll.

    ``notifications`` are subscribed once and routed to each task by id.

    Args:
        get_task: Async function returning a task's current state.
        task_ids: The tasks to poll: an iterable, or an observable, of ids or of known
            states (created tasks). A state without a string task id ends the stream
            with `ArgumentTypeError`.
        default_interval_ms: Interval when a result has no usable hint, in milliseconds.
        policy: As for `poll`, applied to each task.
        max_in_flight: At most this many calls in flight at once; None: no bound.
        scheduler: As for `poll`.
        notifications: Pushed results for any tasks, as for `poll`.
        cancel_task: As for `poll`: sent for each task not terminal at disposal.
        cancel_moot_calls: As for `poll`.

    Returns:
        An observable of every task's results.

    Raises:
        ArgumentTypeError: If ``default_interval_ms`` is not a number or ``max_in_flight``
            not None or an int.
        ArgumentError: If ``default_interval_ms`` is negative, NaN or infinite, or
            ``max_in_flight`` is less than 1.

    Example:
        >>> ids = [await tasks.start("work", {"n": n}) for n in range(100)]
        >>> async with rxtasks.open_stream(rxtasks.poll_many(tasks.get_task, ids,
        ...                                max_in_flight=16)) as results:
        ...     async for task in results:
        ...         print(task.taskId, task.status)
    """
    spec = PollSpec(
        get_task,
        default_interval_ms,
        cancel_task=cancel_task,
        policy=policy,
        cancel_moot_calls=cancel_moot_calls,
    )
    _check_max_in_flight(max_in_flight)

    def subscribe(
        observer: abc.ObserverBase[T], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        chosen, runtime = resolve_scheduler(scheduler or subscribe_scheduler, caller="poll_many()")
        if max_in_flight is not None:
            runtime = _LimitedRuntime(runtime, max_in_flight)
        group = _Group(observer, spec, scheduler=chosen, runtime=runtime)
        group.start(task_ids, notifications)
        return group

    return Observable(subscribe)


def _check_max_in_flight(value: int | None) -> None:
    if value is not None:
        check_count(value, name="max_in_flight", least=1)


class _Member(abc.ObserverBase[T], Generic[T]):
    """The observer of one task's poller: forwards results, reports the end."""

    __slots__ = ("_group", "task_id")

    def __init__(self, group: _Group[T], task_id: str) -> None:
        self._group = group
        self.task_id = task_id

    def on_next(self, value: T) -> None:
        self._group.observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        self._group.task_ended(self.task_id, error)

    def on_completed(self) -> None:
        self._group.task_ended(self.task_id, None)


class _Group(abc.DisposableBase, Generic[T]):
    """One subscription of `poll_many`: a poller per task, and the merged end."""

    def __init__(
        self,
        observer: abc.ObserverBase[T],
        spec: PollSpec[T],
        *,
        scheduler: abc.SchedulerBase,
        runtime: Runtime,
    ) -> None:
        self.observer = observer
        self._spec = spec
        self._scheduler = scheduler
        self._runtime = runtime
        self._pollers: dict[str, Poller[T]] = {}
        self._seen: set[str] = set()
        self._failures: dict[str, Exception] = {}
        self._ids_done = False
        self._listening = False
        self._ids: abc.DisposableBase | None = None
        self._pushes: abc.DisposableBase | None = None
        self.disposed = False

    def start(self, task_ids: Iterable[str | T] | Observable[str | T], notifications: Any) -> None:
        if notifications is not None:
            self._listening = True
            self._runtime.expect_pushes()
            self._pushes = notifications.subscribe(
                self._on_push, self._on_push_error, scheduler=self._scheduler
            )
        if isinstance(task_ids, Observable):
            self._ids = task_ids.subscribe(
                self._on_id, self._on_ids_error, self._on_ids_completed, scheduler=self._scheduler
            )
            return
        try:
            for task_id in task_ids:
                if self.disposed:
                    return
                self.add(task_id)
        except Exception as exc:  # noqa: BLE001 -- the iterable's error ends the stream
            self._on_ids_error(exc)
            return
        self._on_ids_completed()

    def _on_id(self, item: str | T) -> None:
        runtime = self._runtime
        if not runtime.in_loop_thread():  # an id from another thread: add it in the loop's
            runtime.call_soon_threadsafe(lambda: self._on_id(item))
            return
        try:
            self.add(item)
        except ArgumentTypeError as exc:
            self._on_ids_error(exc)

    def add(self, item: str | T) -> None:
        """Start polling one more task, given its id or a known state of it.

        Raises:
            ArgumentTypeError: If a state has no string task id.
        """
        if self.disposed:
            return
        task_id, initial = id_and_state(item, "poll_many")
        if task_id in self._seen:
            logger.warning("poll_many: task %s is already polled; ignoring it again", task_id)
            return
        self._seen.add(task_id)
        poller = Poller(
            _Member(self, task_id),
            self._spec,
            task_id,
            scheduler=self._scheduler,
            runtime=self._runtime,
        )
        self._pollers[task_id] = poller
        if self._listening:
            poller.race_pushes()
        poller.start(None, initial)

    def task_ended(self, task_id: str, error: Exception | None) -> None:
        self._pollers.pop(task_id, None)
        if error is not None:
            self._failures[task_id] = error
        self._maybe_end()

    def _on_ids_completed(self) -> None:
        runtime = self._runtime
        if not runtime.in_loop_thread():
            runtime.call_soon_threadsafe(self._on_ids_completed)
            return
        self._ids_done = True
        self._maybe_end()

    def _on_ids_error(self, error: Exception) -> None:
        runtime = self._runtime
        if not runtime.in_loop_thread():
            runtime.call_soon_threadsafe(lambda: self._on_ids_error(error))
            return
        if not self.disposed:
            self.dispose()
            self.observer.on_error(error)

    def _maybe_end(self) -> None:
        if self.disposed or not self._ids_done or self._pollers:
            return
        self.disposed = True
        self._drop_subscriptions()
        if self._failures:
            self.observer.on_error(PollManyError.from_failures(self._failures))
        else:
            self.observer.on_completed()

    def _on_push(self, result: Any) -> None:
        runtime = self._runtime
        if not runtime.in_loop_thread():  # pushed from another thread: route it in the loop's
            runtime.call_soon_threadsafe(lambda: self._on_push(result))
            return
        task_id = task_id_of(result)
        poller = self._pollers.get(task_id) if isinstance(task_id, str) else None
        if poller is not None:
            poller.race_pushes().push(result)

    def _on_push_error(self, error: Exception) -> None:
        logger.warning("poll_many: notifications failed (%r); polling goes on", error)

    def _drop_subscriptions(self) -> None:
        for subscription in (self._ids, self._pushes):
            if subscription is not None:
                subscription.dispose()
        self._ids = self._pushes = None

    def dispose(self) -> None:
        if self.disposed:
            return
        self.disposed = True
        self._drop_subscriptions()
        pollers, self._pollers = self._pollers, {}
        for poller in pollers.values():
            poller.dispose()


class _LimitedRuntime(Runtime):
    """At most ``limit`` awaits in flight; the others wait, first come, first served.

    A slot is taken when the inner await is scheduled and given back when it has settled
    (returned, or cancelled and unwound), so the bound holds for calls being cancelled
    too. Shielded awaits (best-effort cleanup) are not ``get_task`` calls and pass by.
    """

    __slots__ = ("_limit", "_releasing", "_runtime", "_waiting", "active")

    def __init__(self, runtime: Runtime, limit: int) -> None:
        self._runtime = runtime
        self._limit = limit
        self.active = 0
        self._waiting: deque[AwaitCall[Any]] = deque()
        self._releasing = False

    def schedule_await(
        self,
        func: Callable[[], Awaitable[T]],
        on_result: Callable[[T], None],
        on_error: Callable[[Exception], None],
        *,
        protect_s: float | None = None,
    ) -> AwaitCall[T]:
        """Schedule ``func()`` on the inner runtime when a slot is free."""
        if protect_s is not None:
            return self._runtime.schedule_await(func, on_result, on_error, protect_s=protect_s)
        slot = AwaitCall(func, on_result, on_error)
        if self.active < self._limit:
            self._start(slot)
        else:
            self._waiting.append(slot)
        return slot

    def _start(self, slot: AwaitCall[Any]) -> None:
        self.active += 1
        slot.settle_hook = self._release
        inner = self._runtime.schedule_await(slot.func, _succeed(slot), _fail(slot))
        # Disposing the slot disposes the inner await; the slot settles with it.
        slot.begin(inner.dispose)
        inner.when_settled(slot.end_cancelled)

    def _release(self) -> None:
        self.active -= 1
        if self._releasing:
            # A slot started here settled at once (its runtime is shutting down): the
            # loop below goes on, rather than one nested call per waiting slot.
            return
        self._releasing = True
        try:
            waiting = self._waiting
            while waiting and self.active < self._limit:
                slot = waiting.popleft()
                if not slot.settled:
                    self._start(slot)
        finally:
            self._releasing = False

    def expect_pushes(self) -> None:
        """Pass it on to the inner runtime."""
        self._runtime.expect_pushes()

    def in_loop_thread(self) -> bool:
        """As the inner runtime says."""
        return self._runtime.in_loop_thread()

    def call_soon_threadsafe(self, fn: Callable[[], None]) -> bool:
        """As the inner runtime does."""
        return self._runtime.call_soon_threadsafe(fn)


def _succeed(slot: AwaitCall[T]) -> Callable[[T], None]:
    return lambda result: slot.succeed(result, _call)


def _fail(slot: AwaitCall[Any]) -> Callable[[Exception], None]:
    return lambda error: slot.fail(error, _call)


def _call(callback: Callable[[Any], None], value: Any) -> None:
    callback(value)
