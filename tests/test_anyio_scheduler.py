"""AnyioScheduler: a reactivex scheduler on an anyio task group, on asyncio and trio."""

from __future__ import annotations

import threading
import weakref
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

import rxtasks
from rxtasks import AnyioScheduler, SchedulerError

from ._helpers import in_thread, record

if TYPE_CHECKING:
    from .conftest import VirtualClock


def noop(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
    """An action that does nothing."""


async def test_timers_run_in_due_order_at_exact_times(virtual_time: VirtualClock) -> None:
    """Relative timers fire at their due time on the loop's clock; ties keep FIFO order."""
    log: list[tuple[str, float]] = []
    async with AnyioScheduler() as scheduler:
        scheduler.schedule_relative(1.0, record(log, "b"))
        scheduler.schedule_relative(0.25, record(log, "a"))
        scheduler.schedule_relative(timedelta(seconds=1), record(log, "c"))
        scheduler.schedule(record(log, "now"))
        scheduler.schedule_relative(-5, record(log, "negative is now"))
    assert log == [("now", 0), ("negative is now", 0), ("a", 0.25), ("b", 1.0), ("c", 1.0)]


async def test_earlier_timer_wakes_the_sleeping_queue(virtual_time: VirtualClock) -> None:
    """A timer added while the queue sleeps toward a later one still fires on time."""
    log: list[tuple[str, float]] = []
    async with AnyioScheduler() as scheduler:
        scheduler.schedule_relative(10, record(log, "late"))
        await anyio.sleep(1)
        scheduler.schedule_relative(2, record(log, "early"))
    assert log == [("early", 3.0), ("late", 10.0)]


async def test_leaving_waits_for_pending_work(virtual_time: VirtualClock) -> None:
    """Like a task group, the block ends when no timer or await is left."""
    async with AnyioScheduler() as scheduler:
        scheduler.schedule_relative(5, noop)
    assert anyio.current_time() == 5


async def test_cancel_drops_everything(virtual_time: VirtualClock) -> None:
    """cancel() drops pending timers and cancels awaits; the block ends at once."""
    log: list[tuple[str, float]] = []
    cancelled: list[bool] = []

    async def slow() -> None:
        try:
            await anyio.sleep(100)
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    async with AnyioScheduler() as scheduler:
        scheduler.schedule_relative(5, record(log, "never"))
        scheduler.schedule_await(slow, lambda _: None, lambda _: None)
        await anyio.sleep(1)
        stats = scheduler.statistics()
        assert (stats.timers_pending, stats.awaits_in_flight) == (1, 1)
        scheduler.cancel()
    assert anyio.current_time() == 1
    assert log == []
    assert cancelled == [True]


class Payload:
    """A state object whose lifetime the test watches."""


async def test_disposed_timers_are_forgotten(virtual_time: VirtualClock) -> None:
    """Disposing many timers lets go of their actions and states; none of them runs."""
    log: list[tuple[str, float]] = []
    async with AnyioScheduler() as scheduler:
        payloads = [Payload() for _ in range(1000)]
        alive = [weakref.ref(payload) for payload in payloads]
        timers = [
            scheduler.schedule_relative(1 + i, record(log, str(i)), payload)
            for i, payload in enumerate(payloads)
        ]
        del payloads
        for timer in timers[:-1]:
            timer.dispose()
        assert scheduler.statistics().timers_pending == 1
        assert sum(ref() is not None for ref in alive) == 1
    assert log == [("999", 1000.0)]


async def test_action_error_is_raised_from_the_block_unwrapped() -> None:
    """An action that raises cancels the scheduler; the error leaves `async with` as is."""
    error = KeyError("boom")

    def fail(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        raise error

    async def run() -> None:
        async with AnyioScheduler() as scheduler:
            scheduler.schedule(fail)
            await anyio.sleep_forever()

    with pytest.raises(KeyError) as info:
        await run()
    assert info.value is error


async def test_awaits_report_results_and_errors(virtual_time: VirtualClock) -> None:
    """schedule_await calls on_result or on_error, once."""
    outcomes: list[object] = []

    async def ok() -> int:
        await anyio.sleep(1)
        return 1

    async def bad() -> int:
        raise ValueError("bad")

    async with AnyioScheduler() as scheduler:
        scheduler.schedule_await(ok, outcomes.append, outcomes.append)
        scheduler.schedule_await(bad, outcomes.append, outcomes.append)
    assert outcomes[1] == 1
    assert isinstance(outcomes[0], ValueError)


async def test_not_running_is_a_clear_error() -> None:
    """Scheduling outside the block says how to use it."""
    scheduler = AnyioScheduler()
    with pytest.raises(SchedulerError, match="async with AnyioScheduler"):
        scheduler.schedule(noop)
    async with scheduler:
        pass
    with pytest.raises(SchedulerError, match="not running"):
        scheduler.schedule_relative(1, noop)
    with pytest.raises(SchedulerError, match="only once"):
        async with scheduler:
            pass


async def test_other_threads_hand_work_over() -> None:
    """Work scheduled from another thread runs in the loop's thread, never blocking it."""
    ran_in: list[int] = []
    loop_thread = threading.get_ident()

    def action(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        ran_in.append(threading.get_ident())

    async with AnyioScheduler() as scheduler:

        def from_thread() -> None:
            scheduler.schedule(action)
            scheduler.schedule_relative(0.01, action)
            scheduler.schedule_relative(100, action).dispose()  # dropped, from here too

        # Joined from the loop's thread: no virtual time passes before all its hand-overs
        # are queued (awaiting the thread instead lets the clock jump to 100 s, so the
        # timer may fire before its disposal lands).
        in_thread(from_thread)
    assert ran_in == [loop_thread, loop_thread]


async def test_now_follows_the_loop_clock(virtual_time: VirtualClock) -> None:
    """Now is wall-clock time advanced by the loop's clock; absolute times use it."""
    log: list[tuple[str, float]] = []
    async with AnyioScheduler() as scheduler:
        start = scheduler.now
        await anyio.sleep(2.5)
        assert scheduler.now - start == timedelta(seconds=2.5)
        scheduler.schedule_absolute(scheduler.now + timedelta(seconds=1.5), record(log, "abs"))
    assert log == [("abs", 4.0)]


async def test_reactivex_time_operators(virtual_time: VirtualClock) -> None:
    """interval, delay and periodic scheduling run in virtual time on the scheduler."""
    seen: list[tuple[int, float]] = []
    async with AnyioScheduler() as scheduler:
        reactivex.interval(0.5).pipe(ops.take(3), ops.delay(1.0)).subscribe(
            lambda i: seen.append((i, anyio.current_time())), scheduler=scheduler
        )
    assert seen == [(0, 1.5), (1, 2.0), (2, 2.5)]


async def test_schedule_periodic(virtual_time: VirtualClock) -> None:
    """schedule_periodic repeats at its period until disposed."""
    ticks: list[float] = []

    def tick(state: Any) -> Any:
        ticks.append(anyio.current_time())
        return state

    async with AnyioScheduler() as scheduler:
        periodic = scheduler.schedule_periodic(0.25, tick)
        await anyio.sleep(1.1)
        periodic.dispose()
    assert ticks == [0.25, 0.5, 0.75, 1.0]


async def test_nan_due_time_is_refused() -> None:
    """NaN would corrupt the timer queue."""
    async with AnyioScheduler() as scheduler:
        with pytest.raises(ValueError, match="NaN"):
            scheduler.schedule_relative(float("nan"), noop)


async def test_returned_disposable_is_disposed_with_the_entry(virtual_time: VirtualClock) -> None:
    """An action's returned disposable goes with its entry, as reactivex expects."""
    disposed = threading.Event()

    def action(_scheduler: abc.SchedulerBase, _state: Any = None) -> abc.DisposableBase:
        return Disposable(disposed.set)

    async with AnyioScheduler() as scheduler:
        entry = scheduler.schedule(action)
        await anyio.sleep(0.1)
        entry.dispose()
    assert disposed.is_set()


async def test_awaits_run_concurrently_on_a_bounded_pool(virtual_time: VirtualClock) -> None:
    """Blocked awaits each get a worker; after the burst, idle workers are few."""
    done: list[float] = []

    async def slow() -> float:
        await anyio.sleep(1)
        return anyio.current_time()

    async with AnyioScheduler() as scheduler:
        for _ in range(100):
            scheduler.schedule_await(slow, done.append, _raise)
        await anyio.sleep(0.5)
        assert scheduler.statistics().awaits_in_flight == 100
        assert scheduler.statistics().workers == 100
        await anyio.sleep(1)
        assert scheduler.statistics().workers <= 32
    assert done == [1.0] * 100


async def test_a_shielded_await_survives_cancel(virtual_time: VirtualClock) -> None:
    """Shielded cleanup (protect_s) runs to its end after cancel(); other awaits never start."""
    results: list[str] = []
    started: list[str] = []

    async def cleanup() -> str:
        started.append("cleanup")
        await anyio.sleep(2)
        return "sent"

    async def poll() -> str:
        started.append("poll")
        return "polled"

    async with AnyioScheduler() as scheduler:
        scheduler.schedule_await(cleanup, results.append, _raise, protect_s=5)
        scheduler.schedule_await(poll, results.append, _raise)
        scheduler.cancel()
        scheduler.schedule_await(poll, results.append, _raise)  # shutting down: dropped
    assert (results, started) == (["sent"], ["cleanup"])
    assert anyio.current_time() == 2
    assert scheduler.statistics() == rxtasks.SchedulerStatistics(0, 0, 0)


async def test_disposed_running_await_frees_its_worker(virtual_time: VirtualClock) -> None:
    """Disposing a running await cancels it; queued work still gets a worker."""
    results: list[str] = []

    async def slow(name: str) -> str:
        await anyio.sleep(10)
        return name

    async with AnyioScheduler() as scheduler:
        first = scheduler.schedule_await(lambda: slow("first"), results.append, _raise)
        await anyio.sleep(1)
        first.dispose()
        scheduler.schedule_await(lambda: slow("second"), results.append, _raise)
    assert results == ["second"]
    assert anyio.current_time() == 11


def _raise(error: Exception) -> None:
    raise error
