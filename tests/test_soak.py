"""A soak test: 10,000 tasks with random faults through poll_many, in virtual time.

Run by ``nox -s soak`` (marked ``soak``; not part of the default test run).
"""

from __future__ import annotations

import gc
import logging
import random
import tracemalloc
from typing import Any

import anyio
import pytest
from trio.testing import MockClock

import rxtasks
from rxtasks import AnyioScheduler, PollManyError, PollPolicy, Retry
from rxtasks.testing import FakeTaskServer, random_script

pytestmark = [pytest.mark.soak, pytest.mark.timeout(600)]

TASKS = 10_000


def soak(outcome: dict[str, Any]) -> None:
    """Poll 10,000 faulty tasks to their ends; record what happened in ``outcome``."""
    rng = random.Random(20261126)
    scripts = {f"task-{i}": random_script(rng, length=rng.randint(2, 20)) for i in range(TASKS)}
    server = FakeTaskServer(scripts)
    policy = PollPolicy(max_interval_ms=2000, retry=Retry(attempts=3, rng=random.Random(1)))

    async def main() -> None:
        done = anyio.Event()
        async with AnyioScheduler() as scheduler:
            source = rxtasks.poll_many(server.get_task, scripts, policy=policy, max_in_flight=256)

            def on_next(_: object) -> None:
                outcome["results"] += 1

            def on_error(error: Exception) -> None:
                outcome["error"] = type(error), len(getattr(error, "exceptions", ()))
                done.set()

            source.subscribe(on_next, on_error, done.set, scheduler=scheduler)
            await done.wait()
            outcome["left"] = scheduler.statistics()
            outcome["ended_at"] = anyio.current_time()
        outcome["exited_at"] = anyio.current_time()

    anyio.run(main, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)})
    outcome["calls"] = len(server.calls)
    outcome["overlaps"] = len(server.overlaps)
    outcome["max_in_flight"] = server.max_in_flight


def test_ten_thousand_tasks_with_faults() -> None:
    """Everything ends; no task, timer or memory is left behind; the bounds held."""
    # Every fault is logged; pytest keeps log records (with their tracebacks, which hold
    # frames and objects) for its report, which would measure the harness, not rxtasks.
    quiet = logging.getLogger("rxtasks")
    quiet.disabled = True
    outcome: dict[str, Any] = {"results": 0}
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    try:
        soak(outcome)  # the scripts, the fake server and its log of calls are gone after it
    finally:
        quiet.disabled = False
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    top = [(str(s.traceback), s.size) for s in tracemalloc.take_snapshot().statistics("filename")]
    tracemalloc.stop()

    assert outcome["overlaps"] == 0
    assert outcome["max_in_flight"] <= 256
    assert outcome["calls"] > 5 * TASKS
    assert outcome["results"] > TASKS
    # Some tasks failed (faults beyond the retries, results without a status): they ended
    # the stream as one PollManyError, after every other task had ended.
    if "error" in outcome:
        error_type, failed = outcome["error"]
        assert error_type is PollManyError
        assert 0 < failed < TASKS
    # Nothing left: no await, no timer, and leaving the block took no time.
    left: rxtasks.SchedulerStatistics = outcome["left"]
    assert (left.awaits_in_flight, left.timers_pending) == (0, 0)
    assert outcome["exited_at"] == outcome["ended_at"]
    # Memory back near where it started (the peak is tens of MB).
    assert after - before < 0.02 * (peak - before), (after - before, peak - before, top[:5])
