"""rxtasks.poll_until_terminal against the MCP SDK's own generator (mcp>=1.23,<2).

Hypothesis draws scripts (``working``/``input_required`` statuses, then one terminal
status; hints None, 0 or positive), and both pollers run each script from a fresh
virtual clock, on trio (MockClock) and asyncio (looptime). They must yield the very same
objects, make the same number of calls, at the same times.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from importlib.util import find_spec
from typing import Any

import anyio
import anyio.lowlevel
import looptime
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

import rxtasks

pytest.importorskip("mcp", reason="the differential test needs mcp>=1.23,<2")
if find_spec("mcp_types") is not None:
    pytest.skip("needs mcp 1.x, whose generator mcp 2.x removed", allow_module_level=True)

with warnings.catch_warnings():
    # mcp 1.28+ deprecates the experimental tasks API that this test compares against.
    warnings.simplefilter("ignore", DeprecationWarning)
    from mcp.shared.experimental.tasks.polling import poll_until_terminal as sdk_poll
    from mcp.types import GetTaskResult

pytestmark = pytest.mark.mcp1

Poller = Callable[
    [Callable[[str], Awaitable[GetTaskResult]], str, int], AsyncIterator[GetTaskResult]
]

_CREATED = datetime(2026, 11, 1, tzinfo=UTC)

hints = st.one_of(st.none(), st.just(0), st.integers(min_value=1, max_value=5000))
scripts = st.tuples(
    st.lists(st.tuples(st.sampled_from(["working", "input_required"]), hints), max_size=12),
    st.tuples(st.sampled_from(["completed", "failed", "cancelled"]), hints),
).map(lambda parts: [*parts[0], parts[1]])


def build(script: list[tuple[str, int | None]]) -> list[GetTaskResult]:
    """The results a 2025-11-25 server would answer, as mcp 1.x models."""
    return [
        GetTaskResult(
            taskId="t",
            status=status,  # type: ignore[arg-type]
            createdAt=_CREATED,
            lastUpdatedAt=_CREATED,
            ttl=None,
            pollInterval=hint,
        )
        for status, hint in script
    ]


def run(
    poller: Poller, results: list[GetTaskResult], default_ms: int, backend: str
) -> tuple[list[GetTaskResult], list[float]]:
    """Drive one poller over the script; return what it yielded and the call times."""
    yielded: list[GetTaskResult] = []
    call_times: list[float] = []

    async def get_task(task_id: str) -> GetTaskResult:
        call_times.append(anyio.current_time())
        await anyio.lowlevel.checkpoint()  # a real call awaits something
        return results[min(len(call_times) - 1, len(results) - 1)]

    async def main() -> None:
        yielded.extend([result async for result in poller(get_task, "t", default_ms)])

    if backend == "trio":
        anyio.run(main, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)})
    else:
        anyio.run(
            main, backend="asyncio", backend_options={"loop_factory": looptime.new_event_loop}
        )
    return yielded, call_times


def sdk(get_task: Any, task_id: str, default_ms: int) -> AsyncIterator[GetTaskResult]:
    """The SDK's generator, without its deprecation warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return sdk_poll(get_task, task_id, default_ms)


def ours(get_task: Any, task_id: str, default_ms: int) -> AsyncIterator[GetTaskResult]:
    """Rxtasks' drop-in."""
    return rxtasks.poll_until_terminal(get_task, task_id, default_ms)


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
@settings(max_examples=150, deadline=None)
@given(script=scripts, default_ms=st.sampled_from([0, 1, 250, 500, 1000]))
def test_same_results_same_calls_same_times(
    backend: str, script: list[tuple[str, int | None]], default_ms: int
) -> None:
    """For every valid script the drop-in behaves exactly as the SDK's generator."""
    results = build(script)
    expected_items, expected_times = run(sdk, results, default_ms, backend)
    items, times = run(ours, results, default_ms, backend)
    assert len(items) == len(expected_items) == len(results)
    assert all(a is b for a, b in zip(items, expected_items, strict=True))
    assert times == expected_times


def test_signature_matches_the_sdk() -> None:
    """Same parameter names and defaults: a drop-in by keyword too.

    rxtasks' additions come after the SDK's, keyword-only and optional.
    """
    import inspect

    ours = list(inspect.signature(rxtasks.poll_until_terminal).parameters.values())
    sdk = list(inspect.signature(sdk_poll).parameters.values())
    assert [p.name for p in ours[: len(sdk)]] == [p.name for p in sdk]
    assert [p.default for p in ours[: len(sdk)]] == [p.default for p in sdk]
    extra = ours[len(sdk) :]
    assert [p.name for p in extra] == ["initial"]
    assert all(p.kind is p.KEYWORD_ONLY and p.default is None for p in extra)
