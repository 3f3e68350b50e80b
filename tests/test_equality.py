"""poll is the model fused: the same notifications at the same times, the same calls.

The model is ``server_timer(get_task, task_id).pipe(until_terminal())``; each policy
element has a reference composition in reactivex terms (the clamp inside
`server_timer`, the deadline as ``ops.timeout`` at an absolute time, retry as a ``catch``
that resubscribes after the backoff, pushes as a ``switch_latest`` restarted by each
fresh push). On hypothesis-generated scripts (unknown statuses, unusable hints, results
without a status, errors, latencies) with pushes and a disposal at random times, `poll`
and the reference give the same notifications at the same times and call ``get_task`` at
the same times, on reactivex's TestScheduler, trio's MockClock and asyncio's looptime.
`poll_until_terminal` is held to ``iterate`` of the model the same way. Each case may
start from a known state (``initial=``, the created task): emitted first, the first call
due its interval later.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import rxtasks
from rxtasks import PollPolicy, PollTimeoutError, Retry
from rxtasks._core._status import ResultReader, task_id_of, updated_at_of
from rxtasks.testing import MISSING, FakeTaskServer, Step, Task

from .test_properties import run_on

if TYPE_CHECKING:
    from collections.abc import Callable

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Clock = Literal["test_scheduler", "trio", "asyncio"]
Element = Literal["none", "clamp", "deadline", "retry", "pushes"]
Event = tuple[float, str, object]
ELEMENTS: tuple[Element, ...] = ("none", "clamp", "deadline", "retry", "pushes")


@dataclass(frozen=True)
class Case:
    """One generated run: the script, the policy element, pushes and a disposal."""

    script: tuple[Step, ...]
    default_ms: int
    element: Element
    pushes: tuple[tuple[float, str, int | None], ...]  # (at, status, hint)
    dispose_at: float | None
    seed: int
    initial: tuple[str, int | None] | None = None  # a created task: (status, hint)


# Times on a grid of 1/20 s; pushes, disposals and deadlines off it (1/70, 1/40, 3/64
# s), so that no two events tie by accident: a tie's order is a scheduler's choice, not
# part of the model.
_HINTS = st.sampled_from([None, 0, 50, 100, 250, -1, "fast", 10**8])
_LATENCY_MS = st.sampled_from([0, 0, 50, 300])


@st.composite
def steps(draw: st.DrawFn, *, latency: bool) -> tuple[Step, ...]:
    """A script: some non-terminal answers (with faults), then a terminal one."""
    script: list[Step] = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["ok", "ok", "ok", "unknown", "error", "missing"]))
        wait = draw(_LATENCY_MS) if latency else 0
        if kind == "error":
            script.append(Step(error=ConnectionError("transient"), latency_ms=wait))
        elif kind == "missing":
            script.append(Step(MISSING, draw(_HINTS), latency_ms=wait))
        else:
            status = (
                "paused"
                if kind == "unknown"
                else draw(st.sampled_from(["working", "input_required"]))
            )
            script.append(Step(status, draw(_HINTS), latency_ms=wait))
    final = draw(st.sampled_from(["completed", "failed", "cancelled"]))
    script.append(Step(final, draw(_HINTS), latency_ms=draw(_LATENCY_MS) if latency else 0))
    return tuple(script)


@st.composite
def cases(draw: st.DrawFn, *, latency: bool) -> Case:
    """A case for one clock."""
    element = draw(st.sampled_from(ELEMENTS))
    pushes: tuple[tuple[float, str, int | None], ...] = ()
    if element == "pushes":  # at distinct times: two at once would tie
        pushes = tuple(
            (
                at / 20 + 1 / 70,
                draw(st.sampled_from(["working", "completed"])),
                draw(st.sampled_from([None, 0, 100])),
            )
            for at in draw(st.lists(st.integers(0, 60), min_size=1, max_size=3, unique=True))
        )
    dispose = draw(st.none() | st.integers(1, 80))
    initial = draw(
        st.none()
        | st.tuples(
            st.sampled_from(["working", "working", "input_required", "completed"]),
            st.sampled_from([None, 0, 100, 250, -1]),
        )
    )
    return Case(
        script=draw(steps(latency=latency)),
        default_ms=draw(st.sampled_from([0, 100, 500])),
        element=element,
        pushes=tuple(sorted(pushes, key=lambda push: push[0])),
        dispose_at=None if dispose is None else dispose / 20 + 1 / 40,
        seed=draw(st.integers(0, 2**16)),
        initial=initial,
    )


def initial_of(case: Case) -> Task | None:
    """The case's created task, as the server would have answered tools/call."""
    if case.initial is None:
        return None
    status, hint = case.initial
    return Task("t", status, hint, None, T0, T0)


def policy_of(case: Case) -> PollPolicy | None:
    """The fused path's policy for the case's element."""
    match case.element:
        case "clamp":
            return PollPolicy(min_interval_ms=40, max_interval_ms=400, ttl_backstop=False)
        case "deadline":
            return PollPolicy(timeout_ms=1046.875, ttl_backstop=False)  # exact in µs and binary
        case "retry":
            return PollPolicy(retry=retry_of(case), ttl_backstop=False)
        case _:
            return None


def retry_of(case: Case) -> Retry:
    """The same retry, with the same random jitter, for each side."""
    return Retry(attempts=2, backoff_ms=50, max_backoff_ms=400, rng=random.Random(case.seed))


def summary(result: object) -> object:
    """What a result says, comparable across two servers' fresh objects."""
    return dict(cast("dict[str, object]", result)) if isinstance(result, dict) else vars(result)


# -- the reference compositions ------------------------------------------------------------


def model(case: Case, server: FakeTaskServer, pushes: Observable[Any]) -> Observable[Any]:
    """The model and the reference of the case's policy element, in reactivex terms."""
    policy = policy_of(case)

    def timer(first: bool = True) -> Observable[Any]:
        """The timer; from the created task on the first subscription only."""
        initial = initial_of(case) if first else None
        return rxtasks.server_timer(
            server.get_task, "t", case.default_ms, policy=policy, initial=initial
        )

    match case.element:
        case "deadline":
            assert policy is not None
            assert policy.timeout_ms is not None
            timeout = timedelta(milliseconds=policy.timeout_ms)
            return reactivex.defer(
                lambda scheduler: timer().pipe(
                    rxtasks.until_terminal(),
                    ops.timeout(
                        scheduler.now + timeout,
                        other=reactivex.throw(
                            PollTimeoutError("", task_id="t", last_result=None, timeout_ms=0)
                        ),
                    ),
                )
            )
        case "retry":
            return retried(timer, retry_of(case)).pipe(rxtasks.until_terminal())
        case "pushes":
            return raced(timer, pushes, case).pipe(rxtasks.until_terminal())
        case _:
            return timer().pipe(rxtasks.until_terminal())


def retried(source: Callable[[bool], Observable[Any]], retry: Retry) -> Observable[Any]:
    """Retry as a ``catch`` that resubscribes after the backoff; a success resets the count."""

    def subscribe(_: abc.SchedulerBase | None) -> Observable[Any]:
        failures = 0
        attempts = 0

        def succeeded(_: object) -> None:
            nonlocal failures
            failures = 0

        def attempt() -> Observable[Any]:
            nonlocal attempts
            attempts += 1
            first = attempts == 1  # a resubscription polls; the known state was emitted
            return source(first).pipe(ops.do_action(succeeded), ops.catch(on_error))

        def on_error(error: Exception, _: Observable[Any]) -> Observable[Any]:
            nonlocal failures
            if failures >= retry.attempts or not retry.is_transient(error):
                return reactivex.throw(error)
            delay = retry.delay_ms(failures) / 1000
            failures += 1
            return reactivex.timer(delay).pipe(ops.flat_map(lambda _: attempt()))

        return attempt()

    return reactivex.defer(subscribe)


_START = object()


def raced(
    source: Callable[[bool], Observable[Any]], pushes: Observable[Any], case: Case
) -> Observable[Any]:
    """Pushes as ``switch_latest``: each fresh push is emitted and restarts the timer.

    A push for this task that is not older than what was emitted (``lastUpdatedAt``) and
    has a status replaces the polling in progress (its call in flight and timer): it is
    emitted, and the next poll is due its interval after it. Stale polled results are
    not emitted.
    """

    def subscribe(_: abc.SchedulerBase | None) -> Observable[Any]:
        last: datetime | None = None
        reader = ResultReader("t", case.default_ms)

        def fresh(result: object) -> bool:
            updated = updated_at_of(result)
            return last is None or updated is None or updated >= last

        def emitted(result: object) -> None:
            nonlocal last
            updated = updated_at_of(result)
            if updated is not None:
                last = updated

        def has_status(result: object) -> bool:
            try:
                reader.status(result)
            except rxtasks.InvalidResultError:
                return False
            return True

        def restart(push: object) -> Observable[Any]:
            if push is _START:
                return source(True)
            after = reactivex.timer(reader.delay_seconds(push)).pipe(
                ops.flat_map(lambda _: source(False))
            )
            return reactivex.concat(reactivex.just(push), after)

        mine = pushes.pipe(
            ops.filter(lambda r: task_id_of(r) == "t"), ops.filter(fresh), ops.filter(has_status)
        )
        return mine.pipe(
            ops.start_with(_START),
            ops.map(restart),
            ops.switch_latest(),
            ops.filter(fresh),
            ops.do_action(emitted),
        )

    return reactivex.defer(subscribe)


def fused(case: Case, server: FakeTaskServer, pushes: Observable[Any]) -> Observable[Any]:
    """rxtasks.poll, with the case's policy element."""
    return rxtasks.poll(
        server.get_task,
        "t",
        case.default_ms,
        policy=policy_of(case),
        notifications=pushes if case.element == "pushes" else None,
        initial=initial_of(case),
    )


def pushed(case: Case) -> list[tuple[float, Task]]:
    """The case's pushes as the server would push them (lastUpdatedAt = when)."""
    return [
        (at, Task("t", status, hint, None, T0, T0 + timedelta(seconds=at)))
        for at, status, hint in case.pushes
    ]


# -- running a side on each clock -----------------------------------------------------------


def on_test_scheduler(
    case: Case, build: Callable[[Case, FakeTaskServer, Observable[Any]], Observable[Any]]
) -> tuple[list[Event], list[float]]:
    """Subscribe at 0 on a TestScheduler (ticks are seconds); dispose at the case's time."""
    scheduler = TestScheduler()
    server = FakeTaskServer({"t": case.script}, clock=lambda: scheduler.clock, epoch=T0)
    pushes: Subject[Any] = Subject()
    for at, task in pushed(case):
        scheduler.schedule_absolute(at, _action(partial(pushes.on_next, task)))
    events: list[Event] = []
    subscription = build(case, server, pushes).subscribe(
        lambda r: events.append((scheduler.clock, "next", summary(r))),
        lambda e: events.append((scheduler.clock, "error", type(e).__name__)),
        lambda: events.append((scheduler.clock, "completed", None)),
        scheduler=scheduler,
    )
    if case.dispose_at is not None:
        scheduler.schedule_absolute(case.dispose_at, _action(subscription.dispose))
    scheduler.advance_to(200)
    subscription.dispose()
    return events, [round(c.started, 6) for c in server.calls]


def _action(do: Callable[[], None]) -> abc.ScheduledAction[Any]:
    """A scheduler action that does ``do()``."""

    def action(_scheduler: abc.SchedulerBase, _state: object = None) -> None:
        do()

    return action


def on_event_loop(
    clock: Literal["trio", "asyncio"],
    case: Case,
    build: Callable[[Case, FakeTaskServer, Observable[Any]], Observable[Any]],
) -> tuple[list[Event], list[float]]:
    """Subscribe at 0 on an AnyioScheduler in virtual time; dispose at the case's time."""
    result: list[Any] = []

    async def main() -> None:
        server = FakeTaskServer({"t": case.script}, epoch=T0)
        pushes: Subject[Any] = Subject()
        events: list[Event] = []

        def now() -> float:
            return round(anyio.current_time(), 6)

        async def push_all() -> None:
            for at, task in pushed(case):
                await anyio.sleep_until(at)
                pushes.on_next(task)

        with anyio.move_on_after(200):
            async with rxtasks.AnyioScheduler() as scheduler, anyio.create_task_group() as tg:
                tg.start_soon(push_all)
                subscription = build(case, server, pushes).subscribe(
                    lambda r: events.append((now(), "next", summary(r))),
                    lambda e: events.append((now(), "error", type(e).__name__)),
                    lambda: events.append((now(), "completed", None)),
                    scheduler=scheduler,
                )
                if case.dispose_at is not None:
                    await anyio.sleep_until(case.dispose_at)
                    subscription.dispose()
                await anyio.sleep(150)
                subscription.dispose()
        result.extend([events, [round(c.started, 6) for c in server.calls]])

    run_on(clock, main)
    return result[0], result[1]


def observe(clock: Clock, case: Case, build: Any) -> tuple[list[Event], list[float]]:
    """One side's notifications and call times on one clock."""
    if clock == "test_scheduler":
        return on_test_scheduler(case, build)
    return on_event_loop(clock, case, build)


#: ``RXTASKS_STRESS_EXAMPLES`` raises the count, as for the interleavings (``nox -s stress``).
_SETTINGS = settings(
    max_examples=int(os.environ.get("RXTASKS_STRESS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@_SETTINGS
@given(case=cases(latency=False))
def test_poll_equals_the_model_on_the_test_scheduler(case: Case) -> None:
    """On TestScheduler (get_task completes at once): the same events and calls."""
    assert observe("test_scheduler", case, fused) == observe("test_scheduler", case, model)


@_SETTINGS
@given(case=cases(latency=True), clock=st.sampled_from(["trio", "asyncio"]))
def test_poll_equals_the_model_on_the_event_loops(case: Case, clock: Clock) -> None:
    """On trio's MockClock and asyncio's looptime: the same events and calls."""
    assert observe(clock, case, fused) == observe(clock, case, model)


@_SETTINGS
@given(case=cases(latency=True), clock=st.sampled_from(["trio", "asyncio"]))
def test_poll_until_terminal_equals_iterate_of_the_model(case: Case, clock: Clock) -> None:
    """The fused pull iterator and ``iterate(model)``: the same items, times and calls."""
    plain = Case(case.script, case.default_ms, "none", (), None, case.seed, case.initial)
    sides: list[Any] = []
    for fused_side in (True, False):

        async def main(fused_side: bool = fused_side) -> None:
            server = FakeTaskServer({"t": plain.script}, epoch=T0)
            items = (
                rxtasks.poll_until_terminal(
                    server.get_task, "t", plain.default_ms, initial=initial_of(plain)
                )
                if fused_side
                else rxtasks.iterate(model(plain, server, reactivex.never()))
            )
            seen: list[Event] = []
            try:
                async for item in items:
                    seen.append((round(anyio.current_time(), 6), "next", summary(item)))  # noqa: PERF401 -- items before an error are kept
            except Exception as exc:  # noqa: BLE001 -- the end is compared
                seen.append((round(anyio.current_time(), 6), "error", type(exc).__name__))
            sides.append((seen, [round(c.started, 6) for c in server.calls]))

        run_on(clock, main)
    assert sides[0] == sides[1]
