"""Properties of polling under random faults, checked on random scripts (hypothesis).

For every script: each result the server returned for a subscribed, undisposed poll is
emitted exactly once and in order; no call follows a terminal result or a dispose;
never two calls in flight for one task; ``max_in_flight`` is never exceeded.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from typing import Any, cast

import anyio
import looptime
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

import rxtasks
from rxtasks import AnyioScheduler, InvalidResultError, PollPolicy, Retry
from rxtasks.testing import FakeTaskServer, random_script


def run_on(backend: str, main: Any) -> None:
    """Run ``main`` in virtual time on a backend."""
    if backend == "trio":
        anyio.run(main, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)})
    else:
        anyio.run(
            main, backend="asyncio", backend_options={"loop_factory": looptime.new_event_loop}
        )


def has_status(result: object) -> bool:
    """Whether a result carries a status (random scripts include ones that do not)."""
    return not isinstance(result, dict) or "status" in result


@settings(max_examples=80, deadline=None)
@given(
    tasks=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    fault_rate=st.floats(min_value=0, max_value=0.6),
    max_in_flight=st.none() | st.integers(min_value=1, max_value=4),
    retry=st.booleans(),
    dispose_at=st.none() | st.floats(min_value=0.05, max_value=15),
    backend=st.sampled_from(["trio", "asyncio"]),
)
def test_nothing_lost_nothing_extra(
    tasks: int,
    seed: int,
    fault_rate: float,
    max_in_flight: int | None,
    retry: bool,
    dispose_at: float | None,
    backend: str,
) -> None:
    """poll_many under faults: results exactly once, in order; calls well-behaved."""
    rng = random.Random(seed)
    scripts = {
        # Every call takes a little time, so that calls of different tasks overlap.
        f"t{i}": [
            replace(step, latency_ms=max(step.latency_ms, 10))
            for step in random_script(rng, length=rng.randint(0, 8), fault_rate=fault_rate)
        ]
        for i in range(tasks)
    }
    server = FakeTaskServer(scripts)
    policy = (
        PollPolicy(retry=Retry(attempts=2, backoff_ms=50, rng=random.Random(seed)))
        if retry
        else None
    )
    emitted: dict[str, list[object]] = defaultdict(list)
    ended: list[BaseException | None] = []
    disposed: list[float] = []

    def on_next(result: Any) -> None:
        emitted[str(field(result, "taskId"))].append(result)

    async def main() -> None:
        async with AnyioScheduler() as scheduler:
            source = rxtasks.poll_many(
                server.get_task, scripts, policy=policy, max_in_flight=max_in_flight
            )
            subscription = source.subscribe(
                on_next, ended.append, lambda: ended.append(None), scheduler=scheduler
            )
            if dispose_at is not None:
                await anyio.sleep(dispose_at)
                subscription.dispose()
                disposed.append(anyio.current_time())

    run_on(backend, main)

    assert server.overlaps == []
    if max_in_flight is not None:
        assert server.max_in_flight <= max_in_flight
    invalid = _invalid_results(ended)
    for task_id in scripts:
        calls = server.calls_for(task_id)
        returned = [c.result for c in calls if c.finished is not None and c.result is not None]
        valid = [r for r in returned if has_status(r)]
        got = emitted[task_id]
        if disposed:
            # Disposed: a prefix of what returned; nothing after the dispose.
            assert [id(r) for r in got] == [id(r) for r in valid[: len(got)]]
            assert all(c.started <= disposed[0] for c in calls)
        else:
            assert [id(r) for r in got] == [id(r) for r in valid]
            assert all(r in invalid for r in returned if not has_status(r))
        statuses = [status_of(r) for r in got]
        if statuses and statuses[-1] in rxtasks.TERMINAL_STATUSES:
            # Nothing after the terminal result: it was the task's last call.
            assert calls[-1].result is got[-1]
    if not disposed:
        assert len(ended) == 1


def field(result: object, name: str) -> object:
    """A field of a result of any shape (a fake's object, or a dict)."""
    if isinstance(result, dict):
        return cast("dict[str, object]", result)[name]
    return cast("object", getattr(result, name))


def status_of(result: object) -> object:
    """The status of a result of any shape."""
    return field(result, "status")


def _invalid_results(ended: list[BaseException | None]) -> list[object]:
    """The malformed results carried by InvalidResultErrors in the final error."""
    if not ended or ended[0] is None:
        return []
    error = ended[0]
    errors: list[BaseException] = [error]
    if isinstance(error, BaseExceptionGroup):
        errors = list(cast("BaseExceptionGroup[BaseException]", error).exceptions)
    return [e.result for e in errors if isinstance(e, InvalidResultError)]
