"""poll_until_terminal's dedicated iterator is equal to ``iterate(poll(...))``.

The fused iterator is an optimisation: on hypothesis-generated scripts with faults
(latency, errors, unusable hints, unknown statuses, results without a status) and a
consumer that takes its own time between items, both yield the same results at the same
virtual times, call ``get_task`` at the same times, and end the same way.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.subject import Subject

import rxtasks
from rxtasks.testing import FakeTaskServer, Step, Task, random_script

from .test_properties import run_on

T0 = datetime(2026, 1, 1, tzinfo=UTC)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def summary(result: object) -> object:
    """What a result says, comparable across two servers' fresh objects."""
    return dict(cast("dict[str, object]", result)) if isinstance(result, dict) else vars(result)


async def consume(
    items: AsyncIterator[Any], pauses: list[float]
) -> tuple[list[tuple[float, object]], str]:
    """Collect (time, result) pairs, pausing as the consumer would; say how it ended."""
    seen: list[tuple[float, object]] = []
    try:
        async for item in items:
            seen.append((anyio.current_time(), summary(item)))
            if pauses:
                await anyio.sleep(pauses[len(seen) % len(pauses)])
    except Exception as exc:  # noqa: BLE001 -- the way it ended is compared
        return seen, type(exc).__name__
    return seen, "end"


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    fault_rate=st.floats(min_value=0, max_value=0.5),
    pauses=st.lists(st.sampled_from([0.0, 0.01, 0.2, 1.5]), max_size=4),
    default_ms=st.sampled_from([0, 100, 500]),
    shape=st.sampled_from(["mcp1", "mcp2", "extension", "json-2025-11-25", "json-extension"]),
    backend=st.sampled_from(["trio", "asyncio"]),
)
def test_poll_until_terminal_equals_iterate_poll(
    seed: int, fault_rate: float, pauses: list[float], default_ms: int, shape: Any, backend: str
) -> None:
    """Same results at the same times, same calls, same end, whatever the script."""
    script = random_script(random.Random(seed), length=8, fault_rate=fault_rate)
    outcomes: list[tuple[list[tuple[float, object]], str, list[float]]] = []

    for fused in (True, False):
        server = FakeTaskServer({"t": script}, shape=shape, epoch=random_epoch(seed))

        async def main(server: FakeTaskServer = server, fused: bool = fused) -> None:
            start = anyio.current_time()
            items = (
                rxtasks.poll_until_terminal(server.get_task, "t", default_ms)
                if fused
                else rxtasks.iterate(rxtasks.poll(server.get_task, "t", default_ms))
            )
            seen, end = await consume(items, pauses)
            outcomes.append(
                (
                    [(round(t - start, 6), r) for t, r in seen],
                    end,
                    [round(c.started - start, 6) for c in server.calls],
                )
            )

        run_on(backend, main)
    assert outcomes[0] == outcomes[1]


def random_epoch(seed: int) -> datetime:
    """One wall-clock origin per example, so both servers stamp the same times."""
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seed % 1000)


@pytest.mark.parametrize("cancel", [True, False])
def test_a_call_made_moot_by_a_push_is_cancelled_or_left_to_finish(cancel: bool) -> None:
    """cancel_moot_calls: the call in flight a push made moot is cancelled, or finishes.

    Either way its answer is not emitted and the next call waits for it: with False the
    server sees it answered (at 1.0 s), and the next poll comes the push's interval
    after the push, once that call has returned.
    """
    seen: list[tuple[float, object]] = []
    outcome: dict[str, object] = {}

    async def main() -> None:
        server = FakeTaskServer(
            {"t": (Step("working", 100, latency_ms=1000), Step("completed"))}, epoch=T0
        )
        pushes: Subject[Any] = Subject()
        async with rxtasks.AnyioScheduler() as scheduler:
            rxtasks.poll(
                server.get_task, "t", notifications=pushes, cancel_moot_calls=cancel
            ).subscribe(
                lambda task: seen.append((round(anyio.current_time(), 6), task.status)),
                scheduler=scheduler,
            )
            await anyio.sleep(0.5)
            pushes.on_next(Task("t", "working", 200, None, T0, T0 + timedelta(seconds=0.5)))
        outcome["calls"] = [(round(c.started, 6), c.cancelled) for c in server.calls]

    run_on("trio", main)
    assert seen[0] == (0.5, "working")  # the push; the call in flight is moot
    assert seen[-1][1] == "completed"
    calls = cast("list[tuple[float, bool]]", outcome["calls"])
    assert calls[0][0] == 0.0
    assert calls[0][1] is cancel  # left to finish: answered, unheard
    # The next call: the push's 200 ms after the push, or after the moot call returned.
    assert calls[1][0] == (0.7 if cancel else 1.0)
