"""Random interleavings of responses, pushes, disposals and cancellations (hypothesis).

Each example is a schedule: 1-4 tasks with short scripts (statuses, hints of 0 and more,
latencies, transient errors, hangs), checkpoints inside every ``get_task`` call (before it
answers, and in a shielded cleanup that runs after a cancellation too, so that a call
really returns later than it was cancelled), pushed task states at random virtual times
(one of them maybe from a real thread), a disposal at a random time, a consumer
cancellation at a random time, ``max_in_flight``, and the bridge the consumer reads
through: ``AnyioScheduler`` with ``subscribe``, `open_stream` (1-3 readers), or
`iterate`. It runs through the real pipeline in virtual time, on trio (``MockClock``) and
on asyncio (looptime), and for every way a run can end these must hold:

- at most one ``get_task`` call in flight per task, until the call has really returned;
- at most ``max_in_flight`` calls in flight for `poll_many`, counted the same way;
- one end (``on_completed`` or ``on_error``) per subscription, or none after disposal;
- no call starts after its task's terminal result was emitted, after the stream ended,
  after a disposal, or after the block;
- nothing left running after the block: no call in flight, no subscription to the pushes,
  an ``AnyioScheduler`` with all statistics at zero;
- no item lost between the pipeline and the consumer: all of them, or a prefix when the
  consumer left early;
- however an iterator ends (by itself, by a disposal or a cancellation from any task),
  each of its readers ends, the documented way;
- nothing hangs: every run ends within 10000 virtual seconds.

``RXTASKS_STRESS_EXAMPLES`` sets the number of examples per backend (default 100).
"""

from __future__ import annotations

import math
import os
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.from_thread
import anyio.lowlevel
import looptime
import pytest
import reactivex
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from trio.testing import MockClock

import rxtasks
from rxtasks.testing import FakeTaskServer, Step

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from anyio.abc import TaskGroup
    from anyio.lowlevel import EventLoopToken
    from reactivex import Observable, abc

EXAMPLES = int(os.environ.get("RXTASKS_STRESS_EXAMPLES", "100"))

#: The grid of every time and interval: a power of two, so that sums are exact on trio's
#: float clock and on looptime's microseconds, and events coincide as often as they can.
TICK = 0.125
#: A run still going after this many virtual seconds hangs (a correct one ends within seconds).
BOUND = 10_000.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ONGOING = ("working", "input_required")
TERMINAL = ("completed", "failed", "cancelled")
DEFAULT_INTERVAL_MS = 125

Bridge = Literal["subscribe", "open_stream", "iterate"]
Source = Literal["poll_many", "merge"]


@dataclass(frozen=True)
class Answer:
    """One answer of a task's script, and the checkpoints of the call that gives it.

    Attributes:
        status: The task's status in the answer.
        hint_ms: The interval hint; ``None`` for none (the default then: 125 ms).
        latency: Virtual seconds before answering; ``math.inf`` hangs until cancelled.
        error: Raise ``ConnectionError`` instead of answering.
        before: Checkpoints before the call answers.
        cleanup: Checkpoints in the call's shielded cleanup, also after a cancellation.
    """

    status: str = "working"
    hint_ms: int | None = None
    latency: float = 0.0
    error: bool = False
    before: int = 0
    cleanup: int = 0


@dataclass(frozen=True)
class Push:
    """A task state the server pushes at a virtual time.

    Attributes:
        at: When, in virtual seconds.
        task: The index of the task.
        status: The pushed status.
        hint_ms: The pushed interval hint.
        jitter: Checkpoints between waking up at ``at`` and pushing.
    """

    at: float
    task: int
    status: str
    hint_ms: int | None = None
    jitter: int = 0


@dataclass(frozen=True)
class Schedule:
    """One example: what the server answers and pushes, and what the consumer does.

    Attributes:
        bridge: How the consumer reads: ``subscribe`` on an ``AnyioScheduler``,
            `open_stream`, or `iterate`.
        source: `poll_many` of all tasks, or a ``reactivex.merge`` of one `poll` each.
        scripts: The answers of each task, the last one terminal.
        max_in_flight: The bound given to `poll_many`.
        retry: Whether a policy retries transient errors (twice, 125 ms apart).
        pushes: Pushes from tasks of the event loop.
        thread_push: A push handed over from a real thread, if any.
        dispose_at: When another task disposes: the subscription (``subscribe``), the
            `open_stream` block (cancelled from outside), or the iterator (``aclose``).
        dispose_jitter: Checkpoints before that disposal.
        cancel_at: When the consumer is cancelled (``move_on_after``).
        readers: How many tasks read the `open_stream` iterator at once.
        pauses: Checkpoints each reader takes after each item, cycled.
    """

    bridge: Bridge
    source: Source
    scripts: tuple[tuple[Answer, ...], ...]
    max_in_flight: int | None = None
    retry: bool = False
    pushes: tuple[Push, ...] = ()
    thread_push: Push | None = None
    dispose_at: float | None = None
    dispose_jitter: int = 0
    cancel_at: float | None = None
    readers: int = 1
    pauses: tuple[int, ...] = (0,)


# -- strategies ---------------------------------------------------------------------------

_ticks = st.integers(min_value=0, max_value=12).map(lambda k: k * TICK)
_hints = st.sampled_from([None, 0, 125, 250])
_checkpoints = st.integers(min_value=0, max_value=3)


def _answers(*, terminal: bool, may_hang: bool) -> st.SearchStrategy[Answer]:
    """One answer: mostly a plain one, sometimes an error or (if allowed) a hang."""
    kinds = ["answer"] if terminal else ["answer", "answer", "answer", "error"]
    if may_hang and not terminal:
        kinds.append("hang")

    def answer(
        status: str, kind: str, latency: float, hint: int | None, cps: tuple[int, int]
    ) -> Answer:
        latency = math.inf if kind == "hang" else latency
        return Answer(status, hint, latency, kind == "error", *cps)

    return st.builds(
        answer,
        st.sampled_from(TERMINAL if terminal else ONGOING),
        st.sampled_from(kinds),
        st.sampled_from([0.0, TICK, 2 * TICK]),
        _hints,
        st.tuples(_checkpoints, _checkpoints),
    )


def _scripts(*, may_hang: bool) -> st.SearchStrategy[tuple[Answer, ...]]:
    """A task's script: up to three answers that are not terminal, then a terminal one."""

    def script(ongoing: list[Answer], last: Answer) -> tuple[Answer, ...]:
        return (*ongoing, last)

    return st.builds(
        script,
        st.lists(_answers(terminal=False, may_hang=may_hang), max_size=3),
        _answers(terminal=True, may_hang=False),
    )


def _pushes(tasks: int) -> st.SearchStrategy[Push]:
    """A push of any status for one of ``tasks`` tasks, at a time on the grid."""
    return st.builds(
        Push,
        at=_ticks,
        task=st.integers(min_value=0, max_value=tasks - 1),
        status=st.sampled_from(ONGOING + TERMINAL),
        hint_ms=_hints,
        jitter=_checkpoints,
    )


# Built once: hypothesis pays for every strategy object it sees for the first time.
_SCRIPTS = {may_hang: _scripts(may_hang=may_hang) for may_hang in (False, True)}
_PUSHES = {tasks: _pushes(tasks) for tasks in range(1, 5)}


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    """A schedule; a call may hang only when something is scheduled to end the run."""
    bridge: Bridge = draw(st.sampled_from(["subscribe", "open_stream", "iterate"]))
    dispose_at = draw(st.none() | _ticks)
    cancel_at = draw(st.none() | _ticks)
    # iterate() awaits in the consumer's task: only cancelling the consumer ends a hang.
    may_hang = cancel_at is not None or (bridge != "iterate" and dispose_at is not None)
    tasks = draw(st.integers(min_value=1, max_value=4))
    scripts = tuple(draw(_SCRIPTS[may_hang]) for _ in range(tasks))
    source: Source = draw(st.sampled_from(["poll_many", "merge"]))
    limit = draw(st.none() | st.integers(min_value=1, max_value=3))
    # Real threads are slow and leave virtual time: rare (1 in 8), and shrunk away.
    thread = draw(st.integers(min_value=0, max_value=7)) == 7
    return Schedule(
        bridge=bridge,
        source=source,
        scripts=scripts,
        max_in_flight=limit if source == "poll_many" else None,
        retry=draw(st.booleans()),
        pushes=tuple(draw(st.lists(_PUSHES[tasks], max_size=4))),
        thread_push=draw(_PUSHES[tasks]) if thread else None,
        dispose_at=dispose_at,
        dispose_jitter=draw(_checkpoints),
        cancel_at=cancel_at,
        readers=draw(st.integers(min_value=1, max_value=3)) if bridge == "open_stream" else 1,
        pauses=tuple(draw(st.lists(st.integers(min_value=0, max_value=2), min_size=1))),
    )


# -- one run ------------------------------------------------------------------------------


def watched(source: Observable[Any], on_dispose: Callable[[], None]) -> Observable[Any]:
    """``source``, calling ``on_dispose`` when a subscription is disposed, before it is."""

    def subscribe(
        observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        inner = source.subscribe(observer, scheduler=scheduler)

        def dispose() -> None:
            on_dispose()
            inner.dispose()

        return Disposable(dispose)

    return reactivex.Observable(subscribe)


def _ignore(_: object) -> None:
    """Take an error and do nothing: the pipeline records it."""


class Trial:
    """One schedule run through the real pipeline, with everything it did recorded.

    ``get_task`` wraps the fake server's: it counts a call from its start until it has
    really returned, after its shielded cleanup. The pipeline is the source with a
    ``do_action`` recording what it emitted and how it ended, and a wrapper recording
    when it was disposed; every event is numbered, so that "after" means after in the
    order things happened, not merely at a later virtual time.
    """

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.ids = [f"t{i}" for i in range(len(schedule.scripts))]
        self.plans = dict(zip(self.ids, schedule.scripts, strict=True))
        self.server = FakeTaskServer(
            {task_id: [_step(a) for a in plan] for task_id, plan in self.plans.items()},
            epoch=T0,
        )
        self.subject = Subject[Any]()
        self.violations: dict[str, list[str]] = defaultdict(list)
        self.trace: list[str] = []
        self.seq = 0
        self.calls: dict[str, int] = defaultdict(int)
        self.active: dict[str, int] = defaultdict(int)
        self.in_flight = 0
        self.closed: dict[str, str] = {}  # task id -> why no call may start any more
        self.block_over = False
        self.emitted: list[object] = []
        self.received: list[object] = []
        self.ends: list[tuple[int, float, Exception | None]] = []  # (event, time, error)
        self.dispose_seq: int | None = None
        self.dispose_time = math.inf
        self.opened = False  # whether the consumer's block was entered
        self.early = False  # the consumer's block ended before all its readers had
        self.cut = False  # the consumer's move_on_after fired
        self.aclosed = False  # another task closed the iterator while it was read
        self.hung = False
        self.outcomes: dict[int, object] = {}
        self.ended_at: dict[int, float] = {}  # when each reader ended
        self.pending_readers = schedule.readers
        self.readers_done: anyio.Event | None = None
        self.scheduler: rxtasks.AnyioScheduler | None = None

    # -- records --

    def log(self, message: str) -> int:
        """Number an event and add it to the trace."""
        self.seq += 1
        self.trace.append(f"#{self.seq} {anyio.current_time():.3f} {message}")
        return self.seq

    def violate(self, kind: str, message: str) -> None:
        """Record a broken invariant."""
        self.violations[kind].append(f"{anyio.current_time():.3f} {message}")
        self.log(f"VIOLATION {kind}: {message}")

    def explain(self, kind: str) -> str:
        """The violations of one kind, and the trace that led to them."""
        lines = [*self.violations[kind], "trace:", *self.trace[-80:]]
        return "\n".join(lines)

    def close(self, task_id: str, why: str) -> None:
        """From now on no call for ``task_id`` may start."""
        self.closed.setdefault(task_id, why)

    def close_all(self, why: str) -> None:
        """From now on no call may start."""
        for task_id in self.ids:
            self.close(task_id, why)

    # -- the server --

    async def get_task(self, task_id: str) -> Any:
        """The fake's ``get_task``, with checkpoints, a shielded cleanup, and counts."""
        plan = self.plans[task_id]
        number = self.calls[task_id]
        self.calls[task_id] = number + 1
        answer = plan[min(number, len(plan) - 1)]
        self._enter(task_id, number)
        how = "was cancelled"
        try:
            for _ in range(answer.before):
                await anyio.lowlevel.checkpoint()
            result = await self.server.get_task(task_id)
            how = f"returned {result.status}"
            return result
        except Exception as exc:
            how = f"raised {exc!r}"
            raise
        finally:
            with anyio.CancelScope(shield=True):
                for _ in range(answer.cleanup):
                    await anyio.lowlevel.checkpoint()
            self._leave(task_id, number, how)

    def _enter(self, task_id: str, number: int) -> None:
        self.log(f"call {task_id}#{number} starts")
        why = self.closed.get(task_id)
        if why is not None:
            self.violate("call_after_end", f"call {task_id}#{number} started {why}")
        if self.block_over:
            self.violate("call_after_end", f"call {task_id}#{number} started after the block")
        self.active[task_id] += 1
        if self.active[task_id] > 1:
            self.violate("overlap", f"{self.active[task_id]} calls for {task_id} in flight")
        self.in_flight += 1
        limit = self.schedule.max_in_flight
        if limit is not None and self.in_flight > limit:
            self.violate("max_in_flight", f"{self.in_flight} calls in flight, max {limit}")

    def _leave(self, task_id: str, number: int, how: str) -> None:
        self.active[task_id] -= 1
        self.in_flight -= 1
        self.log(f"call {task_id}#{number} {how}")

    def pushed(self, push: Push) -> Any:
        """The result pushed by ``push``, as the server would have it now."""
        return self.server.result(
            self.ids[push.task], Step(push.status, push.hint_ms), at=anyio.current_time()
        )

    # -- the pipeline --

    def pipeline(self) -> Observable[Any]:
        """The source, recorded: its items and end, then its disposal."""
        schedule = self.schedule
        policy = (
            rxtasks.PollPolicy(retry=rxtasks.Retry(attempts=2, backoff_ms=125, jitter=0))
            if schedule.retry
            else None
        )
        source: Observable[Any]
        if schedule.source == "poll_many":
            source = rxtasks.poll_many(
                self.get_task,
                self.ids,
                DEFAULT_INTERVAL_MS,
                policy=policy,
                max_in_flight=schedule.max_in_flight,
                notifications=self.subject,
            )
        else:
            source = reactivex.merge(
                *(
                    watched(
                        rxtasks.poll(
                            self.get_task,
                            task_id,
                            DEFAULT_INTERVAL_MS,
                            notifications=self.subject,
                            policy=policy,
                        ),
                        partial(self.close, task_id, "after its poll was disposed"),
                    )
                    for task_id in self.ids
                )
            )
        recorded = source.pipe(ops.do_action(self._on_item, self._on_error, self._on_completed))
        return watched(recorded, self._on_dispose)

    def _on_item(self, result: Any) -> None:
        self.log(f"emitted {result.taskId} {result.status}")
        self.emitted.append(result)
        if result.status in TERMINAL:
            self.close(result.taskId, "after its terminal result was emitted")

    def _on_error(self, error: Exception) -> None:
        self.ends.append((self.log(f"ended with {error!r}"), anyio.current_time(), error))
        self.close_all("after the stream ended")

    def _on_completed(self) -> None:
        self.ends.append((self.log("completed"), anyio.current_time(), None))
        self.close_all("after the stream ended")

    def _on_dispose(self) -> None:
        seq = self.log("subscription disposed")
        if self.dispose_seq is None:
            self.dispose_seq = seq
            self.dispose_time = anyio.current_time()
        self.close_all("after the subscription was disposed")

    # -- drivers: pushes, the thread's push, the disposal --

    def start_drivers(self, tg: TaskGroup, dispose: Callable[[], Awaitable[None]]) -> None:
        """Start the tasks that push and dispose at their virtual times."""
        for push in self.schedule.pushes:
            tg.start_soon(self.push_later, push)
        if self.schedule.thread_push is not None:
            token = anyio.lowlevel.current_token()
            tg.start_soon(self.push_from_thread, self.schedule.thread_push, token)
        if self.schedule.dispose_at is not None:
            tg.start_soon(self.dispose_later, self.schedule.dispose_at, dispose)

    def deliver(self, result: Any) -> None:
        """Push a result into the notifications (on the event loop's thread)."""
        self.log(f"push {result.taskId} {result.status}")
        try:
            self.subject.on_next(result)
        except Exception as exc:  # noqa: BLE001 -- a push must not fail: recorded
            self.violate("driver", f"a push raised {exc!r}")

    async def push_later(self, push: Push) -> None:
        """Push at ``push.at``, after its checkpoints."""
        await anyio.sleep_until(push.at)
        for _ in range(push.jitter):
            await anyio.lowlevel.checkpoint()
        self.deliver(self.pushed(push))

    async def push_from_thread(self, push: Push, token: EventLoopToken) -> None:
        """Push at ``push.at`` from a real thread, which hands it over to the loop.

        The handshake is explicit: this task keeps the loop busy (checkpoints, shielded)
        until the thread has handed the push over, so the virtual clock cannot jump while
        the thread runs, and the thread has ended before this task does.
        """
        await anyio.sleep_until(push.at)
        result = self.pushed(push)
        handed = threading.Event()
        failures: list[BaseException] = []

        def hand_over() -> None:
            try:
                anyio.from_thread.run_sync(self.deliver, result, token=token)
            except BaseException as exc:  # noqa: BLE001 -- reported by the loop's task
                failures.append(exc)
            finally:
                handed.set()

        thread = threading.Thread(target=hand_over, name="rxtasks-test-push", daemon=True)
        with anyio.CancelScope(shield=True):
            thread.start()
            while not handed.is_set():
                await anyio.lowlevel.checkpoint()
        thread.join()
        for failure in failures:
            self.violate("driver", f"the thread's push failed: {failure!r}")

    async def dispose_later(self, at: float, dispose: Callable[[], Awaitable[None]]) -> None:
        """Dispose at ``at``, after the schedule's checkpoints."""
        await anyio.sleep_until(at)
        for _ in range(self.schedule.dispose_jitter):
            await anyio.lowlevel.checkpoint()
        self.log("dispose")
        if self.schedule.bridge == "iterate" and self.pending_readers:
            self.aclosed = self.early = True
        try:
            await dispose()
        except Exception as exc:  # noqa: BLE001 -- disposing must not fail: recorded
            self.violate("driver", f"disposing raised {exc!r}")

    # -- bridges --

    async def run(self) -> None:
        """Run the schedule through its bridge."""
        self.readers_done = anyio.Event()
        match self.schedule.bridge:
            case "subscribe":
                await self.via_subscribe()
            case "open_stream":
                await self.via_open_stream()
            case "iterate":
                await self.via_iterate()

    async def via_subscribe(self) -> None:
        """Subscribe on an ``AnyioScheduler``; the drivers run inside its block."""
        with anyio.move_on_after(self.schedule.cancel_at) as consumer:
            async with rxtasks.AnyioScheduler() as scheduler:
                self.scheduler = scheduler
                subscription = self.pipeline().subscribe(on_error=_ignore, scheduler=scheduler)

                async def dispose() -> None:
                    subscription.dispose()

                async with anyio.create_task_group() as drivers:
                    self.start_drivers(drivers, dispose)
        self.cut = consumer.cancel_called
        self.after_block()

    async def via_open_stream(self) -> None:
        """Read an `open_stream` from its block's task and from other tasks.

        The block waits for every reader, unless it is left early: cancelled by the
        consumer's ``move_on_after``, or from the disposing task.
        """
        assert self.readers_done is not None
        block = anyio.CancelScope()

        async def dispose() -> None:
            block.cancel()

        async with anyio.create_task_group() as tg:
            self.start_drivers(tg, dispose)
            self.early = True  # unless all the readers end first (below)
            with anyio.move_on_after(self.schedule.cancel_at) as consumer, block:
                async with rxtasks.open_stream(self.pipeline()) as stream:
                    self.opened = True
                    try:
                        for index in range(1, self.schedule.readers):
                            tg.start_soon(self.read, index, stream)
                        await self.read(0, stream)
                        await self.readers_done.wait()
                    finally:
                        self.early = self.pending_readers > 0 or self.outcomes.get(0) == "cancelled"
            self.cut = consumer.cancel_called
            self.after_block()

    async def via_iterate(self) -> None:
        """Read `iterate` in ``async with``; another task may ``aclose`` it."""
        iterator = rxtasks.iterate(self.pipeline())

        async def dispose() -> None:
            await iterator.aclose()

        async with anyio.create_task_group() as tg:
            self.start_drivers(tg, dispose)
            with anyio.move_on_after(self.schedule.cancel_at) as consumer:
                async with iterator:
                    self.opened = True
                    await self.read(0, iterator)
            self.cut = consumer.cancel_called
            self.early = self.early or self.cut
            self.after_block()

    async def read(self, index: int, items: AsyncIterator[Any]) -> None:
        """Read items until the iterator ends; record how it ended for this reader."""
        outcome: object = "cancelled"  # unless one of the ends below is reached
        pauses = self.schedule.pauses
        try:
            count = 0
            async for item in items:
                self.received.append(item)
                self.log(f"reader {index} got {item.taskId} {item.status}")
                for _ in range(pauses[count % len(pauses)]):
                    await anyio.lowlevel.checkpoint()
                count += 1
            outcome = "stop"
        except anyio.ClosedResourceError:
            outcome = "closed"
        except Exception as exc:  # noqa: BLE001 -- the outcome is checked afterwards
            outcome = exc
        finally:
            self.outcomes[index] = outcome
            self.ended_at[index] = anyio.current_time()
            self.log(f"reader {index} ended: {outcome!r}")
            self.pending_readers -= 1
            if not self.pending_readers and self.readers_done is not None:
                self.readers_done.set()

    def after_block(self) -> None:
        """Right after the consumer's block: nothing of the pipeline may be left."""
        self.block_over = True
        self.log("block over")
        if self.in_flight:
            busy = {task_id: n for task_id, n in self.active.items() if n}
            self.violate("leftover", f"get_task calls in flight after the block: {busy}")
        if self.scheduler is not None:
            statistics = self.scheduler.statistics()
            if statistics != rxtasks.SchedulerStatistics(0, 0, 0):
                self.violate("leftover", f"after the block: {statistics}")
        ended = self.ends or self.dispose_seq is not None
        if self.subject.observers and (self.schedule.bridge != "subscribe" or ended):
            count = len(self.subject.observers)
            self.violate("leftover", f"{count} subscriptions to the pushes after the block")

    # -- the checks after the run --

    def check(self) -> None:
        """Check the ends, the readers and the items (unless the run hung)."""
        if self.hung:
            return
        natural = self._check_ends()
        if self.schedule.bridge != "subscribe":
            self._check_readers(natural)
            self._check_items()

    def _check_ends(self) -> tuple[bool, Exception | None]:
        """One end, or none after a disposal; return whether it ended by itself, and how."""
        ends, disposed = self.ends, self.dispose_seq
        if len(ends) > 1:
            self.violations["ends"].append(f"{len(ends)} ends: {[e for _, _, e in ends]}")
        if ends and disposed is not None and ends[0][0] > disposed:
            self.violations["ends"].append(f"ended after the disposal: {ends[0][2]!r}")
        if not ends and disposed is None and not self.cut:
            self.violations["ends"].append("neither ended nor disposed nor cancelled")
        natural = bool(ends) and (disposed is None or ends[0][0] < disposed)
        return natural, ends[0][2] if natural else None

    def _check_readers(self, natural_end: tuple[bool, Exception | None]) -> None:
        """Each reader ended once, the documented way for how the iterator ended."""
        natural, error = natural_end
        bridge = self.schedule.bridge
        raised = 0
        for index in range(self.schedule.readers):
            outcome = self.outcomes.get(index, "no outcome")
            raised += isinstance(outcome, Exception)
            if not self._reader_ended_well(index, outcome, natural, error):
                self.violations[f"readers/{bridge}"].append(
                    f"reader {index}: {outcome!r} (stream ended by itself: {natural},"
                    f" with {error!r}; left early: {self.early}; cancelled: {self.cut})"
                )
        if natural and error is not None and not self.early and not raised:
            self.violations[f"readers/{bridge}"].append("no reader got the stream's error")
        if bridge == "open_stream":
            # Readers drain without virtual time passing: when the stream ends or its
            # block does, every reader ends at that same virtual time.
            over = min(self.ends[0][1] if natural else math.inf, self.dispose_time)
            for index, at in sorted(self.ended_at.items()):
                if at > over:
                    self.violations[f"readers/{bridge}"].append(
                        f"reader {index} ended {at - over} s after the stream or its block"
                        f" did ({self.outcomes[index]!r})"
                    )

    def _reader_ended_well(
        self, index: int, outcome: object, natural: bool, error: Exception | None
    ) -> bool:
        """Whether one reader's end is the documented one for how the iterator ended."""
        open_stream = self.schedule.bridge == "open_stream"
        if outcome == "stop":  # after the stream's end, or `aclose` (iterate)
            return (natural and error is None) or self.aclosed
        if outcome == "closed":
            return open_stream and self.early
        if outcome == "cancelled":
            return index == 0 and (self.cut or (open_stream and self.early))
        if isinstance(outcome, Exception):  # every reader raises the stream's error
            return natural and outcome is error
        return not self.opened  # never read: the block was cancelled before it opened

    def _check_items(self) -> None:
        """The readers got what the pipeline emitted, in order; a prefix if left early."""
        got = [id(item) for item in self.received]
        sent = [id(item) for item in self.emitted]
        if got != (sent[: len(got)] if self.early else sent):
            self.violations["items"].append(
                f"received {len(got)} of {len(sent)} emitted, not in order or not all"
                f" (left early: {self.early})"
            )


def _step(answer: Answer) -> Step:
    """The fake server's step for an answer (a fresh error for each run)."""
    error = ConnectionError("transient fault") if answer.error else None
    return Step(answer.status, answer.hint_ms, answer.latency * 1000, error)


def run_on(backend: str, main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` in virtual time on a backend."""
    if backend == "trio":
        anyio.run(main, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)})
    else:
        anyio.run(
            main, backend="asyncio", backend_options={"loop_factory": looptime.new_event_loop}
        )


def run_trial(schedule: Schedule, backend: str) -> Trial:
    """Run a schedule on a backend, bounded in virtual time, and check what it did."""
    trial = Trial(schedule)

    async def main() -> None:
        with anyio.move_on_after(BOUND) as bound:
            await trial.run()
        if bound.cancelled_caught:
            trial.hung = True
            if trial.ends or trial.dispose_seq is not None:
                trial.violate("hang_after_end", f"the stream was over; still waiting at {BOUND}")
            else:
                trial.violate("hang", f"the stream never ended; still waiting at {BOUND}")

    run_on(backend, main)
    trial.check()
    return trial


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # Not the explain phase: on a failure it reruns the example hundreds of times to
    # comment on which parts matter, which costs more than finding and shrinking it.
    phases=[phase for phase in Phase if phase is not Phase.explain],
)
@given(schedule=schedules())
def test_every_interleaving_keeps_the_invariants(backend: str, schedule: Schedule) -> None:
    """Responses, pushes, disposals and cancellations in any order keep every invariant."""
    trial = run_trial(schedule, backend)
    found = trial.violations
    # One assert per invariant, so that hypothesis reports (and shrinks) each one apart.
    assert not found["overlap"], trial.explain("overlap")
    assert not found["max_in_flight"], trial.explain("max_in_flight")
    assert not found["call_after_end"], trial.explain("call_after_end")
    assert not found["hang"], trial.explain("hang")
    assert not found["hang_after_end"], trial.explain("hang_after_end")
    assert not found["ends"], trial.explain("ends")
    assert not found["readers/iterate"], trial.explain("readers/iterate")
    assert not found["readers/open_stream"], trial.explain("readers/open_stream")
    assert not found["items"], trial.explain("items")
    assert not found["leftover"], trial.explain("leftover")
    assert not found["driver"], trial.explain("driver")
