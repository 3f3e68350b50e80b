"""rxtasks.testing's fake server: its less common options and what it records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import anyio
import pytest

from rxtasks import ArgumentError
from rxtasks.testing import MISSING, FakeTaskServer, Shape, Step, TaskNotFound

if TYPE_CHECKING:
    from .conftest import VirtualClock


def test_missing_reads_as_its_name() -> None:
    """The no-status marker shows as MISSING in reprs of scripts."""
    assert repr(MISSING) == "MISSING"
    assert "MISSING" in repr(Step(MISSING))


def test_a_script_without_steps_is_refused() -> None:
    """A task with no steps has no answer to give: refused when the server is made."""
    with pytest.raises(ArgumentError, match="'t2'"):
        FakeTaskServer({"t1": [Step()], "t2": []})


async def test_overlapping_calls_for_one_task_are_recorded(virtual_time: VirtualClock) -> None:
    """Two calls for one task in flight at once are a poller bug, and the server says so."""
    server = FakeTaskServer({"t": [Step("working", latency_ms=100)]})
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.get_task, "t")
        tg.start_soon(server.get_task, "t")
    assert server.overlaps == ["t"]
    assert server.max_in_flight == 2
    assert server.in_flight == 0


async def test_ttl_per_task(virtual_time: VirtualClock) -> None:
    """A ttl given per task id expires only that task; others are unlimited."""
    server = FakeTaskServer({"a": [Step()], "b": [Step()]}, ttl_ms={"a": 1000})
    first = await server.get_task("a")
    assert first.ttl == 1000
    assert (await server.get_task("b")).ttl is None
    await anyio.sleep(1)
    with pytest.raises(TaskNotFound, match="expired"):
        await server.get_task("a")
    assert (await server.get_task("b")).status == "working"


@pytest.mark.parametrize(
    ("shape", "hint_key"),
    [("json-2025-11-25", "pollInterval"), ("json-extension", "pollIntervalMs")],
)
def test_json_results_carry_the_status_message(shape: Shape, hint_key: str) -> None:
    """Raw JSON results have statusMessage and the hint only when the step has them."""
    server = FakeTaskServer({"t": [Step()]}, shape=shape, clock=lambda: 0.0)
    with_message = cast("dict[str, Any]", server.result("t", Step("working", 5, message="hi")))
    assert (with_message["statusMessage"], with_message[hint_key]) == ("hi", 5)
    bare = cast("dict[str, Any]", server.result("t", Step("working")))
    assert "statusMessage" not in bare
    assert hint_key not in bare
