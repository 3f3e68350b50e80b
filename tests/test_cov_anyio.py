"""AnyioScheduler's edges: other threads, the end of the block, and after the loop has ended."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.lowlevel
import looptime
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from rxtasks import AnyioScheduler, SchedulerError, SchedulerStatistics

from ._helpers import in_thread, record

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from reactivex import abc

    from rxtasks._runtime._await import AwaitCall

    from .conftest import AnyioBackend, VirtualClock


class Outcomes:
    """Callbacks for schedule_await that record what they were called with, and where."""

    def __init__(self) -> None:
        self.results: list[object] = []
        self.errors: list[BaseException] = []
        self.threads: list[int] = []

    def on_result(self, value: object) -> None:
        """Record a result."""
        self.results.append(value)
        self.threads.append(threading.get_ident())

    def on_error(self, error: Exception) -> None:
        """Record an error."""
        self.errors.append(error)
        self.threads.append(threading.get_ident())


class Fail(Exception):
    """An action's error."""


def fail(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
    """An action that raises."""
    raise Fail


class Abort(BaseException):
    """Neither an error nor a cancellation: a detached await must survive it."""


# -- before and around the block ------------------------------------------------------------


async def test_cancel_outside_the_block_does_nothing() -> None:
    """cancel() before entering or after leaving is a no-op, not an error."""
    scheduler = AnyioScheduler()
    scheduler.cancel()
    async with scheduler:
        pass
    scheduler.cancel()
    assert scheduler.statistics() == SchedulerStatistics(0, 0, 0)


async def test_awaits_before_the_block_are_refused() -> None:
    """schedule_await on a scheduler not yet entered says how to use it."""
    scheduler = AnyioScheduler()
    called: list[bool] = []

    async def func() -> None:
        called.append(True)

    with pytest.raises(SchedulerError, match="async with AnyioScheduler"):
        scheduler.schedule_await(func, print, print)
    with pytest.raises(SchedulerError, match="async with AnyioScheduler"):
        scheduler.schedule_await(func, print, print, protect_s=1)
    assert called == []


async def test_body_and_action_errors_leave_together() -> None:
    """When an action and the block's body both fail, both leave the block in one group."""
    scheduler = AnyioScheduler()

    async def run() -> None:
        async with scheduler:
            scheduler.schedule(fail)
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                raise KeyError("body") from None

    with pytest.raises(BaseExceptionGroup) as info:
        await run()
    assert sorted(type(e).__name__ for e in info.value.exceptions) == ["Fail", "KeyError"]


@pytest.mark.parametrize("error", [Fail, Abort])
async def test_an_action_error_starts_no_queued_await(error: type[BaseException]) -> None:
    """An action's error ends the scheduler: awaits still queued never start.

    Neither while the error unwinds (no worker replaces the failed one), nor for an
    exception that is no error (``Abort``, a ``BaseException``).
    """
    started: list[str] = []
    scheduler = AnyioScheduler()

    def action(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        raise error

    async def func() -> str:
        started.append("func")
        await anyio.lowlevel.checkpoint()
        return "never"

    outcomes = Outcomes()

    async def run() -> None:
        async with scheduler:
            scheduler.schedule(action)
            scheduler.schedule_await(func, outcomes.on_result, outcomes.on_error)
            await anyio.sleep_forever()

    with pytest.raises(error):
        await run()
    assert scheduler.statistics() == SchedulerStatistics(0, 0, 0)
    assert (outcomes.results, outcomes.errors) == ([], [])
    assert started == []


async def test_a_shielded_await_disposed_during_cancel_never_starts() -> None:
    """cancel() starts queued shielded awaits on their own; one disposed first never runs."""
    started: list[str] = []

    async def cleanup() -> str:
        started.append("cleanup")
        return "sent"

    outcomes = Outcomes()
    async with AnyioScheduler() as scheduler:
        call = scheduler.schedule_await(cleanup, outcomes.on_result, outcomes.on_error, protect_s=5)
        scheduler.cancel()
        call.dispose()
    assert started == []
    assert (outcomes.results, outcomes.errors) == ([], [])


# -- other threads --------------------------------------------------------------------------


async def test_earlier_timer_from_another_thread_wakes_the_sleeper(
    virtual_time: VirtualClock,
) -> None:
    """A timer handed over by a thread, due before the one slept toward, fires on time."""
    log: list[tuple[str, float]] = []
    async with AnyioScheduler() as scheduler:
        scheduler.schedule_relative(10, record(log, "late"))
        await anyio.sleep(1)
        in_thread(lambda: scheduler.schedule_relative(2.0, record(log, "early")))
    assert log == [("early", 3.0), ("late", 10.0)]


async def test_later_timer_from_another_thread_leaves_the_sleeper(
    virtual_time: VirtualClock,
) -> None:
    """A timer handed over by a thread, due after the one slept toward, waits its turn."""
    log: list[tuple[str, float]] = []
    async with AnyioScheduler() as scheduler:
        scheduler.schedule_relative(2, record(log, "first"))
        await anyio.sleep(1)
        in_thread(lambda: scheduler.schedule_relative(5.0, record(log, "second")))
    assert log == [("first", 2.0), ("second", 6.0)]


async def test_awaits_from_another_thread_run_in_the_loop(virtual_time: VirtualClock) -> None:
    """An await scheduled from a thread runs on a worker; its outcome comes in the loop."""
    loop_thread = threading.get_ident()
    outcomes = Outcomes()
    answered = anyio.Event()

    async def answer() -> str:
        await anyio.sleep(1)
        return "answer"

    def on_result(value: object) -> None:
        outcomes.on_result(value)
        answered.set()

    async with AnyioScheduler() as scheduler:
        in_thread(lambda: scheduler.schedule_await(answer, on_result, outcomes.on_error))
        await answered.wait()
    assert outcomes.results == ["answer"]
    assert outcomes.threads == [loop_thread]
    assert anyio.current_time() == 1


async def test_await_disposed_in_its_thread_never_starts() -> None:
    """An await a thread schedules and disposes before the hand-over lands never starts."""
    started: list[str] = []

    async def func() -> str:
        started.append("func")
        return "never"

    outcomes = Outcomes()

    def schedule_and_dispose(scheduler: AnyioScheduler) -> None:
        scheduler.schedule_await(func, outcomes.on_result, outcomes.on_error).dispose()

    async with AnyioScheduler() as scheduler:
        scheduler.schedule_relative(1, record([], "keep a worker up"))
        in_thread(lambda: schedule_and_dispose(scheduler))
    assert started == []
    assert (outcomes.results, outcomes.errors) == ([], [])
    assert scheduler.statistics() == SchedulerStatistics(0, 0, 0)


async def test_await_handed_over_after_cancel_runs_only_if_shielded() -> None:
    """After cancel(), a thread's plain await is dropped and its shielded one still runs."""
    started: list[str] = []
    shielded_done = anyio.Event()

    def func(name: str) -> Callable[[], Awaitable[str]]:
        async def run() -> str:
            started.append(name)
            return name

        return run

    outcomes = Outcomes()

    def on_result(value: object) -> None:
        outcomes.on_result(value)
        shielded_done.set()

    def schedule_both(scheduler: AnyioScheduler) -> None:
        scheduler.schedule_await(func("plain"), on_result, outcomes.on_error)
        scheduler.schedule_await(func("shielded"), on_result, outcomes.on_error, protect_s=5)

    async with AnyioScheduler() as scheduler:
        scheduler.cancel()
        in_thread(lambda: schedule_both(scheduler))
        with anyio.CancelScope(shield=True), anyio.fail_after(5):
            await shielded_done.wait()  # the hand-overs land while the block is open
    assert started == ["shielded"]
    assert outcomes.results == ["shielded"]
    assert scheduler.statistics() == SchedulerStatistics(0, 0, 0)


async def test_the_block_waits_for_hand_overs_with_no_worker_alive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Work handed over by a thread just before the block ends still runs in the block."""
    outcomes = Outcomes()
    log: list[tuple[str, float]] = []

    async def answer() -> str:
        return "answer"

    def schedule_both(scheduler: AnyioScheduler) -> None:
        scheduler.schedule_await(answer, outcomes.on_result, outcomes.on_error)
        scheduler.schedule_relative(0.0, record(log, "timer"))

    try:
        async with AnyioScheduler() as scheduler:
            in_thread(lambda: schedule_both(scheduler))
        assert outcomes.results == ["answer"]
        assert [name for name, _ in log] == ["timer"]
    finally:
        await anyio.wait_all_tasks_blocked()  # one landing late lands here, not in a later test
    assert "failed" not in caplog.text


async def hand_over_as_the_last_task_ends(*, cancelled: bool) -> list[object]:
    """A block whose last await hands work over from its continuation as it ends.

    Returns:
        The results of both awaits, as the block ended.
    """
    protect_s = 5.0 if cancelled else None  # after cancel(), only shielded awaits run
    outcomes = Outcomes()
    scheduler = AnyioScheduler()
    release = anyio.Event()

    async def last() -> str:
        await release.wait()
        return "last"

    async def answer() -> str:
        return "answer"

    def hand_over() -> None:
        in_thread(
            lambda: scheduler.schedule_await(
                answer, outcomes.on_result, outcomes.on_error, protect_s=protect_s
            )
        )

    async def dispose_at_the_end(call: abc.DisposableBase) -> None:
        await anyio.wait_all_tasks_blocked()  # the block's end waits for the last await
        call.dispose()

    async with anyio.create_task_group() as task_group, scheduler:
        call = scheduler.schedule_await(
            last, outcomes.on_result, outcomes.on_error, protect_s=protect_s
        )
        call.when_settled(hand_over)
        if cancelled:
            scheduler.cancel()  # the await starts in a task of its own
            release.set()  # it ends in its first step, once the block waits for it
        else:
            task_group.start_soon(dispose_at_the_end, call)
    assert scheduler.statistics() == SchedulerStatistics(0, 0, 0)
    return outcomes.results


@pytest.mark.parametrize("cancelled", [False, True], ids=["interrupted", "cancelled"])
async def test_the_block_waits_for_a_hand_over_as_its_last_task_ends(cancelled: bool) -> None:
    """Work handed over as the block's last await ends still runs in the block.

    The thread hands the work over from the await's continuation (``when_settled``), in
    the last step of the group's last task: a worker whose await was disposed during the
    block's end, or, once cancel() was called, the task a shielded await runs in alone.
    On trio that task's end and the hand-over's landing are then ready in one batch, run
    in a random order, so the test repeats the race.
    """
    for _ in range(20):
        results = await hand_over_as_the_last_task_ends(cancelled=cancelled)
        assert results == (["last", "answer"] if cancelled else ["answer"])


# -- after the block ------------------------------------------------------------------------


async def test_shielded_await_after_the_block_from_a_thread_still_runs() -> None:
    """Best-effort cleanup handed over by a thread after the block runs while the loop does."""
    outcomes = Outcomes()
    done = anyio.Event()
    loop_thread = threading.get_ident()

    async def cleanup() -> str:
        return "sent"

    def on_result(value: object) -> None:
        outcomes.on_result(value)
        done.set()

    async with AnyioScheduler() as scheduler:
        pass
    in_thread(lambda: scheduler.schedule_await(cleanup, on_result, outcomes.on_error, protect_s=5))
    with anyio.fail_after(5):
        await done.wait()
    assert outcomes.results == ["sent"]
    assert outcomes.threads == [loop_thread]


async def test_shielded_await_disposed_after_the_block_never_starts() -> None:
    """Cleanup scheduled after the block and disposed at once is never awaited."""
    started: list[str] = []

    async def cleanup() -> str:
        started.append("cleanup")
        return "sent"

    outcomes = Outcomes()
    async with AnyioScheduler() as scheduler:
        pass
    scheduler.schedule_await(cleanup, outcomes.on_result, outcomes.on_error, protect_s=5).dispose()
    await anyio.wait_all_tasks_blocked()  # the detached task has had its turn
    assert started == []
    assert (outcomes.results, outcomes.errors) == ([], [])


def test_detached_await_ending_abnormally_ends_quietly(anyio_backend: AnyioBackend) -> None:
    """A detached await that raises a BaseException reports nothing and ends the run cleanly."""
    backend, options = anyio_backend
    outcomes = Outcomes()
    started: list[str] = []

    async def cleanup() -> str:
        started.append("cleanup")
        raise Abort

    async def main() -> None:
        async with AnyioScheduler() as scheduler:
            pass
        scheduler.schedule_await(cleanup, outcomes.on_result, outcomes.on_error, protect_s=5)
        await anyio.wait_all_tasks_blocked()  # the detached task has run and ended

    anyio.run(main, backend=backend, backend_options=options)
    assert started == ["cleanup"]
    assert (outcomes.results, outcomes.errors) == ([], [])


def test_shielded_await_after_the_loop_ended_fails_at_once(anyio_backend: AnyioBackend) -> None:
    """Cleanup scheduled once the event loop is gone fails with SchedulerError, any thread."""
    backend, options = anyio_backend

    async def main() -> AnyioScheduler:
        async with AnyioScheduler() as scheduler:
            pass
        return scheduler

    scheduler = anyio.run(main, backend=backend, backend_options=options)
    started: list[str] = []

    async def cleanup() -> str:
        started.append("cleanup")
        return "sent"

    here, there = Outcomes(), Outcomes()
    here_call = scheduler.schedule_await(cleanup, here.on_result, here.on_error, protect_s=5)
    there_call = in_thread(
        lambda: scheduler.schedule_await(cleanup, there.on_result, there.on_error, protect_s=5)
    )
    assert started == []
    assert here_call.settled
    assert there_call.settled
    for outcomes in (here, there):
        assert outcomes.results == []
        [error] = outcomes.errors
        assert isinstance(error, SchedulerError)
        assert "event loop has ended" in str(error)


# -- disposal -------------------------------------------------------------------------------


async def test_cancel_counts_a_disposed_queued_await_once() -> None:
    """An await disposed while queued, then cancel(): nothing is left in flight, not -1."""
    started: list[str] = []

    async def func() -> str:
        started.append("func")
        return "never"

    async with AnyioScheduler() as scheduler:
        scheduler.schedule_await(func, print, print).dispose()
        assert scheduler.statistics().awaits_in_flight == 0
        scheduler.cancel()
        assert scheduler.statistics().awaits_in_flight == 0
    assert started == []
    assert scheduler.statistics() == SchedulerStatistics(0, 0, 0)


async def test_the_end_counts_a_disposed_queued_await_once() -> None:
    """An await disposed while queued, left queued as the group ends: counted once, not twice.

    An action that raises something other than an error (no cancel() then) ends the
    worker before it has taken the await out of the queue.
    """

    def abort(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        raise Abort

    async def func() -> str:
        raise AssertionError  # pragma: no cover -- never started

    scheduler = AnyioScheduler()

    async def run() -> None:
        async with scheduler:
            scheduler.schedule(abort)
            scheduler.schedule_await(func, print, print).dispose()

    with pytest.raises(Abort):
        await run()
    assert scheduler.statistics() == SchedulerStatistics(0, 0, 0)


async def test_a_timer_handed_over_can_be_disposed_from_the_loop() -> None:
    """A thread's timer, disposed in the loop before or after it landed, never runs."""
    log: list[tuple[str, float]] = []
    async with AnyioScheduler() as scheduler:
        keep_alive = scheduler.schedule_relative(60, record(log, "keep alive"))
        landed = in_thread(lambda: scheduler.schedule_relative(1.0, record(log, "landed")))
        await anyio.wait_all_tasks_blocked()  # the hand-over has landed: a timer is queued
        assert scheduler.statistics().timers_pending == 2
        landed.dispose()
        assert scheduler.statistics().timers_pending == 1
        early = in_thread(lambda: scheduler.schedule_relative(1.0, record(log, "early")))
        early.dispose()  # before it landed: it is never queued
        early.dispose()  # twice is harmless
        await anyio.wait_all_tasks_blocked()
        assert scheduler.statistics().timers_pending == 1
        keep_alive.dispose()
    assert log == []


async def test_an_action_disposing_a_later_one_in_its_batch() -> None:
    """Among actions due at once, one disposed by an earlier one does not run; the rest do."""
    log: list[tuple[str, float]] = []
    async with AnyioScheduler() as scheduler:
        entries: list[abc.DisposableBase] = []

        def first(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
            log.append(("first", anyio.current_time()))
            entries[0].dispose()

        scheduler.schedule(first)
        entries.append(scheduler.schedule(record(log, "second")))
        scheduler.schedule(record(log, "third"))
    assert [name for name, _ in log] == ["first", "third"]


# -- random interleavings -------------------------------------------------------------------

#: Examples per backend; ``RXTASKS_STRESS_EXAMPLES`` raises it, as for the interleavings.
EXAMPLES = int(os.environ.get("RXTASKS_STRESS_EXAMPLES", "60"))
#: The grid of every time: a power of two, so that sums are exact on both virtual clocks.
TICK = 0.125

_RANDOM = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[phase for phase in Phase if phase is not Phase.explain],
)


def run_virtual(backend: str, main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` in virtual time on a backend (a @given test cannot take the fixtures)."""
    if backend == "trio":
        anyio.run(main, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)})
    else:
        anyio.run(
            main, backend="asyncio", backend_options={"loop_factory": looptime.new_event_loop}
        )


class Logged(logging.Handler):
    """What rxtasks logs while it is installed: a callback of its own that failed, for one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the message."""
        self.messages.append(record.getMessage())

    def __enter__(self) -> Self:
        logging.getLogger("rxtasks").addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        logging.getLogger("rxtasks").removeHandler(self)


@dataclass(frozen=True)
class Failing:
    """Awaits in flight, and timers due at random ticks, one of whose actions raises.

    Attributes:
        awaits: Started at 0: (ticks asleep, checkpoints after, whether its result
            schedules another await).
        timers: (tick, kind): "await" schedules an await, "fail" raises, "noop" does
            nothing. Timers due at the same tick run as one batch, in order.
    """

    awaits: tuple[tuple[int, int, bool], ...]
    timers: tuple[tuple[int, str], ...]


@st.composite
def failings(draw: st.DrawFn) -> Failing:
    """A `Failing` with exactly one failing action."""
    one_await = st.tuples(st.integers(0, 3), st.integers(0, 2), st.booleans())
    awaits = draw(st.lists(one_await, max_size=4))
    timers = draw(
        st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["await", "noop"])), max_size=5)
    )
    timers.insert(draw(st.integers(0, len(timers))), (draw(st.integers(0, 3)), "fail"))
    return Failing(tuple(awaits), tuple(timers))


class FailingTrial:
    """Runs a `Failing` and records which awaits started once the action had raised."""

    def __init__(self, failing: Failing) -> None:
        self.failing = failing
        self.scheduler = AnyioScheduler()
        self.failed = False
        self.late: list[str] = []  # awaits started after the failure
        self.outcomes: dict[str, list[object]] = {}

    def func(self, name: str, ticks: int, checkpoints: int) -> Callable[[], Awaitable[str]]:
        """An await that notes whether it starts after the failure."""

        async def run() -> str:
            if self.failed:
                self.late.append(name)
            await anyio.sleep(ticks * TICK)
            for _ in range(checkpoints):
                await anyio.lowlevel.checkpoint()
            return name

        return run

    def start(self, name: str, ticks: int = 0, checkpoints: int = 0, *, more: bool = False) -> None:
        """Schedule an await; with ``more``, its result schedules another."""
        seen = self.outcomes[name] = []

        def on_result(value: object) -> None:
            seen.append(value)
            if more:
                self.start(f"{name}+")

        self.scheduler.schedule_await(self.func(name, ticks, checkpoints), on_result, seen.append)

    def action(self, name: str, kind: str) -> abc.ScheduledAction[Any]:
        """A timer's action of the given kind."""

        def run(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
            if kind == "fail":
                self.failed = True
                raise Fail
            if kind == "await":
                self.start(name)

        return run

    async def run(self) -> None:
        """Run the block: it fails with the action's error."""
        with pytest.raises(Fail):
            await self.block()

    async def block(self) -> None:
        """Start the awaits and the timers, then wait until the scheduler fails."""
        async with self.scheduler as scheduler:
            for i, (ticks, checkpoints, more) in enumerate(self.failing.awaits):
                self.start(f"a{i}", ticks, checkpoints, more=more)
            for i, (tick, kind) in enumerate(self.failing.timers):
                scheduler.schedule_relative(tick * TICK, self.action(f"t{i}", kind))
            await anyio.sleep_forever()


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
@_RANDOM
@given(failing=failings())
def test_no_await_starts_after_an_action_failed(backend: str, failing: Failing) -> None:
    """Whatever runs, ends or is scheduled around it, after an action raised no await starts.

    Awaits may be queued behind the failing action in its batch, other workers may resume
    from their awaits at the very tick it raises, and their results schedule more awaits.
    """
    trial = FailingTrial(failing)
    run_virtual(backend, trial.run)
    assert trial.failed
    assert trial.late == [], f"started after the failure: {trial.late}"
    assert all(len(seen) <= 1 for seen in trial.outcomes.values()), trial.outcomes
    assert trial.scheduler.statistics() == SchedulerStatistics(0, 0, 0)


@dataclass(frozen=True)
class HandOver:
    """Work a thread hands over to the scheduler.

    Attributes:
        kind: A plain await, a shielded one (``protect_s``), or a timer.
        ticks: The await's latency, or the timer's delay.
        dispose: The thread disposes it right after, before it has landed.
    """

    kind: str
    ticks: int
    dispose: bool


@dataclass(frozen=True)
class Ending:
    """How a block ends while other threads hand work over to it.

    Attributes:
        idle: An await ran to its end first, so a worker idles at the end.
        running: Latencies (ticks) of the awaits scheduled last in the body.
        dispose_queued: The body disposes the last of them at once, while it is queued.
        timers: Delays (ticks) of the timers scheduled in the body.
        before: Handed over by a thread just before the block ends.
        later_at: When (ticks) a sibling task hands ``later`` over, if the block still
            waits for an await (or, when it ends normally, a timer) then.
        later: What the sibling hands over through a thread.
        interrupt: The sibling then disposes the first running await.
        exit: The block's end: normal, ``cancel()`` before, or the body raises.
    """

    idle: bool
    running: tuple[int, ...]
    dispose_queued: bool
    timers: tuple[int, ...]
    before: tuple[HandOver, ...]
    later_at: int
    later: tuple[HandOver, ...]
    interrupt: bool
    exit: str


_HAND_OVERS = st.lists(
    st.builds(
        HandOver,
        kind=st.sampled_from(["await", "shielded", "timer"]),
        ticks=st.integers(0, 2),
        dispose=st.booleans(),
    ),
    max_size=3,
).map(tuple)

_ENDINGS = st.builds(
    Ending,
    idle=st.booleans(),
    running=st.lists(st.integers(0, 3), max_size=2).map(tuple),
    dispose_queued=st.booleans(),
    timers=st.lists(st.integers(0, 3), max_size=2).map(tuple),
    before=_HAND_OVERS,
    later_at=st.integers(0, 4),
    later=_HAND_OVERS,
    interrupt=st.booleans(),
    exit=st.sampled_from(["normal", "cancel", "raise"]),
)


class Boom(Exception):
    """The body's error."""


class EndingTrial:
    """Runs an `Ending` and records what ran, what was answered, and what came too late."""

    def __init__(self, ending: Ending) -> None:
        self.ending = ending
        self.scheduler = AnyioScheduler()
        self.over = False  # the block has ended
        self.after: list[str] = []  # what happened after it
        self.started: set[str] = set()
        self.outcomes: dict[str, list[object]] = {}
        self.fired: set[str] = set()
        self.expected: set[str] = set()  # answered or fired if the block ends normally
        self.shielded: set[str] = set()  # answered even if it is cancelled
        self.running: list[AwaitCall[str]] = []
        self.stats = SchedulerStatistics(-1, -1, -1)  # as the block ended

    def seen(self, event: str) -> None:
        """Note an event that must not happen after the block."""
        if self.over:
            self.after.append(event)

    def func(self, name: str, ticks: int) -> Callable[[], Awaitable[str]]:
        """An await that sleeps ``ticks``."""

        async def run() -> str:
            self.seen(f"{name} started")
            self.started.add(name)
            await anyio.sleep(ticks * TICK)
            return name

        return run

    def schedule_await(
        self, name: str, ticks: int, protect_s: float | None = None
    ) -> AwaitCall[str]:
        """Schedule an await whose outcome is recorded."""
        seen = self.outcomes[name] = []

        def on_outcome(value: object) -> None:
            self.seen(f"{name} answered")
            seen.append(value)

        func = self.func(name, ticks)
        return self.scheduler.schedule_await(func, on_outcome, on_outcome, protect_s=protect_s)

    def timer(self, name: str, ticks: int) -> abc.DisposableBase:
        """Schedule a timer whose firing is recorded."""

        def run(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
            self.seen(f"{name} fired")
            self.fired.add(name)

        return self.scheduler.schedule_relative(ticks * TICK, run)

    def hand_over(self, items: tuple[HandOver, ...], prefix: str) -> None:
        """In a thread: schedule each item, and dispose it at once if it says so."""
        for i, item in enumerate(items):
            name = f"{prefix}{i}"
            work: abc.DisposableBase
            if item.kind == "timer":
                work = self.timer(name, item.ticks)
            else:
                protect_s = 60.0 if item.kind == "shielded" else None
                work = self.schedule_await(name, item.ticks, protect_s)
            if item.dispose:
                work.dispose()
                continue
            self.expected.add(name)
            if item.kind == "shielded":
                self.shielded.add(name)

    async def sibling(self) -> None:
        """Hand ``later`` over while the block waits for work, then maybe interrupt."""
        ending = self.ending
        await anyio.sleep(ending.later_at * TICK)
        stats = self.scheduler.statistics()
        if self.over or not (
            stats.awaits_in_flight or (ending.exit == "normal" and stats.timers_pending)
        ):
            return  # the block may be ending right now: no promise for what comes
        in_thread(lambda: self.hand_over(ending.later, "later"))
        if ending.interrupt and self.running and not self.running[0].settled:
            self.running[0].dispose()
            self.expected.discard("r0")

    async def body(self) -> None:
        """The block's body: work of its own, a thread's hand-over, then its end."""
        ending = self.ending
        scheduler = self.scheduler
        if ending.idle:
            done = anyio.Event()
            scheduler.schedule_await(self.func("idle", 0), lambda _: done.set(), print)
            await done.wait()
        for i, ticks in enumerate(ending.running):
            self.running.append(self.schedule_await(f"r{i}", ticks))
            self.expected.add(f"r{i}")
        if ending.dispose_queued and self.running:
            self.running[-1].dispose()
            self.expected.discard(f"r{len(self.running) - 1}")
        for i, ticks in enumerate(ending.timers):
            self.timer(f"t{i}", ticks)
            self.expected.add(f"t{i}")
        in_thread(lambda: self.hand_over(ending.before, "before"))
        if ending.exit == "cancel":
            scheduler.cancel()
        elif ending.exit == "raise":
            raise Boom

    async def run(self) -> None:
        """Run the block beside the sibling task, then let anything late land."""
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(self.sibling)
            try:
                async with self.scheduler:
                    await self.body()
            except Boom:
                pass
            finally:
                self.over = True
                self.stats = self.scheduler.statistics()
        await anyio.wait_all_tasks_blocked()  # whatever was handed over late lands now

    def check(self) -> None:
        """Assert what must hold however the block ended."""
        assert self.after == [], f"after the block: {self.after}"
        assert self.stats == SchedulerStatistics(0, 0, 0)
        assert all(len(seen) <= 1 for seen in self.outcomes.values()), self.outcomes
        answered = {name for name, seen in self.outcomes.items() if seen}
        if self.ending.exit == "normal":
            assert answered | self.fired == self.expected
            return
        handed_over = {name for name in self.started if name.startswith(("before", "later"))}
        assert handed_over <= self.shielded, "a plain await started after cancel()"
        assert self.shielded <= answered, f"shielded, not run: {self.shielded - answered}"


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
@_RANDOM
@given(ending=_ENDINGS)
def test_the_block_waits_for_every_hand_over(backend: str, ending: Ending) -> None:
    """Work handed over while the block has not ended runs in the block, or is dropped.

    Handed over before the block ends, or while it still waits for work, whatever the
    workers do then (none alive, idle, asleep, running, interrupted): if the block ends
    normally, every await and timer not disposed runs in it; cancelled, only the shielded
    awaits do. Nothing runs after the block, nothing is logged, nothing is left, and no
    await is answered twice, or once disposed.
    """
    trial = EndingTrial(ending)
    with Logged() as logged:
        run_virtual(backend, trial.run)
    assert logged.messages == []
    trial.check()
