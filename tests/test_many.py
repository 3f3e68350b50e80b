"""poll_many: many tasks, one stream, bounded concurrency, errors that do not end the rest."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import reactivex
from reactivex.subject import Subject

import rxtasks
from rxtasks import PollManyError
from rxtasks.testing import FakeTaskServer, Step, Task, TaskNotFound, steps

if TYPE_CHECKING:
    from .conftest import VirtualClock


async def collect(source: reactivex.Observable[Any]) -> list[tuple[float, str, object]]:
    """Run a poll_many on open_stream; return (time, task id, status) per result."""
    async with rxtasks.open_stream(source) as results:
        return [(round(anyio.current_time(), 6), r.taskId, r.status) async for r in results]


def times(server: FakeTaskServer, task_id: str) -> list[float]:
    """The call times of one task."""
    return [round(c.started, 6) for c in server.calls_for(task_id)]


async def test_each_task_at_its_own_pace(virtual_time: VirtualClock) -> None:
    """Results of all tasks, merged; each polled at its own server-given interval."""
    server = FakeTaskServer(
        {
            "fast": steps("working", "working", "working", "completed", interval_ms=100),
            "slow": steps("working", "completed", interval_ms=250),
        }
    )
    seen = await collect(rxtasks.poll_many(server.get_task, ["fast", "slow"]))
    assert times(server, "fast") == [0.0, 0.1, 0.2, 0.3]
    assert times(server, "slow") == [0.0, 0.25]
    assert [s for s in seen if s[1] == "fast"][-1] == (0.3, "fast", "completed")
    assert len(seen) == 6


async def test_no_ids_completes_at_once(virtual_time: VirtualClock) -> None:
    """An empty batch is an empty stream."""
    server = FakeTaskServer({})
    assert await collect(rxtasks.poll_many(server.get_task, [])) == []


async def test_tasks_join_as_their_ids_arrive(virtual_time: VirtualClock) -> None:
    """An observable of ids: tasks are polled from when they arrive; the end waits for it."""
    server = FakeTaskServer({t: steps("working", "completed", interval_ms=100) for t in "abc"})
    ids = Subject[str]()

    async def create() -> None:
        for task_id in "abc":
            await anyio.sleep(1)
            ids.on_next(task_id)
        await anyio.sleep(1)
        ids.on_completed()

    seen: list[Any] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(create)
        seen += await collect(rxtasks.poll_many(server.get_task, ids))
    assert [times(server, t) for t in "abc"] == [[1.0, 1.1], [2.0, 2.1], [3.0, 3.1]]
    assert anyio.current_time() == 4.0  # completed when the ids did
    assert len(seen) == 6


async def test_max_in_flight_bounds_calls_fairly(virtual_time: VirtualClock) -> None:
    """At most max_in_flight calls at once; first come, first served: nobody starves."""
    server = FakeTaskServer(
        {f"t{i}": steps("working", "completed", interval_ms=0, latency_ms=1000) for i in range(6)}
    )
    await collect(rxtasks.poll_many(server.get_task, [f"t{i}" for i in range(6)], max_in_flight=2))
    assert server.max_in_flight == 2
    assert server.overlaps == []
    firsts = sorted(times(server, f"t{i}")[0] for i in range(6))
    assert firsts == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]  # every task's first call before any second
    assert anyio.current_time() == 6.0


async def test_one_task_failing_does_not_end_the_others(virtual_time: VirtualClock) -> None:
    """Others run to the end; then PollManyError holds the failure, by task id."""
    gone = TaskNotFound("Task not found: bad")
    server = FakeTaskServer(
        {
            "good": steps("working", "working", "completed", interval_ms=500),
            "bad": [Step("working", 100), Step(error=gone)],
        }
    )
    seen: list[tuple[str, object]] = []

    async def consume() -> None:
        async with rxtasks.open_stream(rxtasks.poll_many(server.get_task, ["good", "bad"])) as rs:
            async for r in rs:
                seen.append((r.taskId, r.status))  # noqa: PERF401 -- kept if iteration fails

    with pytest.raises(PollManyError) as info:
        await consume()
    assert info.value.failures == {"bad": gone}
    assert info.value.exceptions == (gone,)
    assert ("good", "completed") in seen
    assert anyio.current_time() == 1.0  # after the good task's end, not at the failure


async def test_repeated_ids_are_polled_once(
    virtual_time: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A duplicate id is warned about and ignored."""
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=100)})
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        seen = await collect(rxtasks.poll_many(server.get_task, ["t", "t"]))
    assert len(seen) == 2
    assert "already polled" in caplog.text


async def test_id_source_error_ends_everything(virtual_time: VirtualClock) -> None:
    """An error of the ids themselves ends the stream at once; polling stops."""
    server = FakeTaskServer({"t": steps("working", "working", "completed", interval_ms=1000)})
    error = OSError("the ids broke")
    ids = reactivex.concat(reactivex.of("t"), reactivex.timer(0.5).pipe(_raise(error)))
    with pytest.raises(OSError, match="the ids broke"):
        await collect(rxtasks.poll_many(server.get_task, ids))
    await anyio.sleep(10)
    assert times(server, "t") == [0.0]


def _raise(error: Exception) -> Any:
    from reactivex import operators as ops

    def fail(_: object) -> str:
        raise error

    return ops.map(fail)


async def test_notifications_are_routed_by_id(virtual_time: VirtualClock) -> None:
    """One notification stream for all; each push reaches its task only."""
    server = FakeTaskServer({t: steps("working", "completed", interval_ms=10_000) for t in "ab"})
    pushes = Subject[Any]()

    async def push() -> None:
        await anyio.sleep(1)
        assert server.epoch is not None
        pushes.on_next(Task("b", "completed", None, None, server.epoch, server.epoch))

    seen: list[Any] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(push)
        seen += await collect(rxtasks.poll_many(server.get_task, "ab", notifications=pushes))
    assert (1.0, "b", "completed") in seen
    assert times(server, "b") == [0.0]  # no poll after the terminal push
    assert times(server, "a") == [0.0, 10.0]


async def test_dispose_stops_every_task(virtual_time: VirtualClock) -> None:
    """Leaving the stream cancels calls in flight and stops all timers."""
    server = FakeTaskServer({t: [Step("working", 100, latency_ms=300)] for t in "abc"})
    async with rxtasks.open_stream(rxtasks.poll_many(server.get_task, "abc")) as results:
        for _ in range(4):
            await anext(results)
    at = anyio.current_time()
    await anyio.sleep(10)
    assert all(c.started <= at for c in server.calls)
    assert server.in_flight == 0


async def test_poll_many_with_iterate(virtual_time: VirtualClock) -> None:
    """The pull bridge serialises the calls but polls every task to the end."""
    server = FakeTaskServer({t: steps("working", "completed", interval_ms=100) for t in "ab"})
    source = rxtasks.poll_many(server.get_task, "ab", max_in_flight=1)
    results = [r.status async for r in rxtasks.iterate(source)]
    assert sorted(results) == ["completed", "completed", "working", "working"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_max_in_flight_must_be_positive(bad: Any) -> None:
    """max_in_flight is None or an int >= 1."""
    with pytest.raises(ValueError, match="max_in_flight"):
        rxtasks.poll_many(FakeTaskServer({}).get_task, [], max_in_flight=bad)
