"""The bridges to ``async for``: poll_until_terminal and iterate (pull), open_stream (push)."""

from __future__ import annotations

import gc
import logging
import threading
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.lowlevel
import pytest
import reactivex
from reactivex import operators as ops
from reactivex.scheduler import NewThreadScheduler
from reactivex.subject import Subject
from trio.testing import MockClock

import rxtasks
from rxtasks import BufferOverflowError, InvalidResultError, StalledError
from rxtasks.testing import FakeTaskServer, Shape, Step, Task, steps

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .conftest import VirtualClock

SHAPES: list[Shape] = ["mcp1", "mcp2", "extension", "json-2025-11-25", "json-extension"]


def status_of(result: Any) -> object:
    """Return the status of a result of any shape."""
    if isinstance(result, dict):
        return cast("dict[str, object]", result)["status"]
    return cast("object", result.status)


async def collect(items: AsyncIterator[Any]) -> list[Any]:
    """Drain an async iterator."""
    return [item async for item in items]


async def drain(items: AsyncIterator[Any], into: list[Any]) -> None:
    """Append every item to ``into`` as it comes, so that items before an error are kept."""
    async for item in items:
        into.append(item)  # noqa: PERF401 -- a comprehension would lose them on error


async def drain_stream(
    observable: reactivex.Observable[Any], into: list[Any], **kwargs: Any
) -> None:
    """Drain ``observable`` through open_stream into ``into``."""
    async with rxtasks.open_stream(observable, **kwargs) as items:
        await drain(items, into)


# -- poll_until_terminal ------------------------------------------------------------------


async def test_first_call_happens_on_first_anext(virtual_time: VirtualClock) -> None:
    """Like the SDK's generator, creating the iterator calls nothing."""
    server = FakeTaskServer({"t": steps("working", "completed")})
    results = rxtasks.poll_until_terminal(server.get_task, "t")
    await anyio.sleep(1)
    assert server.calls == []
    first = await anext(results)
    assert first.status == "working"
    assert [call.started for call in server.calls] == [1.0]


async def test_yields_every_result_at_the_server_pace(virtual_time: VirtualClock) -> None:
    """Each call is due the hint after the previous response; the default when absent."""
    server = FakeTaskServer(
        {
            "t": [
                Step("working", 100),
                Step("input_required", 250),
                Step("working"),
                Step("completed"),
            ]
        }
    )
    results = await collect(rxtasks.poll_until_terminal(server.get_task, "t"))
    assert [r.status for r in results] == ["working", "input_required", "working", "completed"]
    assert [round(c.started, 6) for c in server.calls] == [0.0, 0.1, 0.35, 0.85]


async def test_interval_counts_from_the_response(virtual_time: VirtualClock) -> None:
    """Latency does not shorten the interval: at most one call in flight, never early."""
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=100, latency_ms=500)}
    )
    await collect(rxtasks.poll_until_terminal(server.get_task, "t"))
    assert [(round(c.started, 6), round(c.finished or -1, 6)) for c in server.calls] == [
        (0.0, 0.5),
        (0.6, 1.1),
        (1.2, 1.7),
    ]


async def test_consumer_time_counts_toward_the_interval(virtual_time: VirtualClock) -> None:
    """Intended difference: time spent in the loop body is not added to the interval."""
    server = FakeTaskServer({"t": steps("working", "working", "completed", interval_ms=100)})
    async for _ in rxtasks.poll_until_terminal(server.get_task, "t"):
        await anyio.sleep(0.04)
    assert [round(c.started, 6) for c in server.calls] == [0.0, 0.1, 0.2]


async def test_zero_interval_polls_back_to_back_yielding_to_the_loop(
    virtual_time: VirtualClock,
) -> None:
    """An interval of 0 takes no time but still lets other tasks run between polls."""
    server = FakeTaskServer(
        {"t": [*steps("working", "working", "working", interval_ms=0), Step("completed")]}
    )
    counter = ran_meanwhile = 0

    async def other_task() -> None:
        nonlocal counter
        while True:
            counter += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other_task)
        await collect(rxtasks.poll_until_terminal(server.get_task, "t"))
        ran_meanwhile = counter
        tg.cancel_scope.cancel()
    # Three sleeps of 0 between four polls: the other task ran during at least two of
    # them (a busy loop would give 0). Which side runs first in a batch is up to trio.
    assert ran_meanwhile >= 2
    assert {c.started for c in server.calls} == {0.0}
    assert len(server.calls) == 4


async def test_completes_after_terminal_without_another_call(virtual_time: VirtualClock) -> None:
    """After the terminal result the loop ends and nothing more is called."""
    for terminal in ("completed", "failed", "cancelled"):
        server = FakeTaskServer({"t": steps("working", terminal)})
        results = await collect(rxtasks.poll_until_terminal(server.get_task, "t"))
        await anyio.sleep(10)
        assert [r.status for r in results] == ["working", terminal]
        assert len(server.calls) == 2


@pytest.mark.parametrize("shape", SHAPES)
async def test_every_result_shape(shape: Shape, virtual_time: VirtualClock) -> None:
    """Both protocol revisions, as SDK models and as raw JSON, poll the same way."""
    server = FakeTaskServer(
        {"t": steps("working", "input_required", "completed", interval_ms=250)}, shape=shape
    )
    results = await collect(rxtasks.poll_until_terminal(server.get_task, "t"))
    assert [status_of(r) for r in results] == ["working", "input_required", "completed"]
    assert [c.started for c in server.calls] == [0.0, 0.25, 0.5]


async def test_invalid_hints_fall_back_with_one_warning(
    virtual_time: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Negative, NaN and boolean hints use the default: no crash, no busy loop."""
    server = FakeTaskServer(
        {
            "t": [
                Step("working", -1),
                Step("working", float("nan")),
                Step("working", True),
                Step("completed"),
            ]
        }
    )
    with caplog.at_level(logging.WARNING, logger="rxtasks"):
        await collect(rxtasks.poll_until_terminal(server.get_task, "t", default_interval_ms=200))
    assert [round(c.started, 6) for c in server.calls] == [0.0, 0.2, 0.4, 0.6]
    assert [r.getMessage() for r in caplog.records if "hint" in r.getMessage()] == [
        (
            "task t: invalid poll interval hint -1 (expected a finite number of milliseconds"
            " >= 0); using the default of 200 ms"
        )
    ]


async def test_error_mid_poll_propagates_unchanged(virtual_time: VirtualClock) -> None:
    """An error of get_task is raised from async for as the same object; polling stops."""
    error = ConnectionError("server went away")
    server = FakeTaskServer({"t": [Step("working", 100), Step(error=error), Step("completed")]})
    seen: list[Any] = []
    with pytest.raises(ConnectionError) as info:
        await drain(rxtasks.poll_until_terminal(server.get_task, "t"), seen)
    assert info.value is error
    assert len(seen) == 1
    await anyio.sleep(10)
    assert len(server.calls) == 2


async def test_result_without_status_is_an_error(virtual_time: VirtualClock) -> None:
    """Returning something that is not a task result fails clearly instead of polling on."""
    create_result = {"task": {"taskId": "t", "status": "working"}}

    async def get_task(task_id: str) -> dict[str, Any]:
        return create_result

    with pytest.raises(InvalidResultError) as info:
        await collect(rxtasks.poll_until_terminal(get_task, "t"))
    assert info.value.result is create_result


async def test_cancelling_the_consumer_cancels_the_call(virtual_time: VirtualClock) -> None:
    """A consumer cancelled during an in-flight get_task cancels that call."""
    server = FakeTaskServer(
        {"t": [Step("working", 100), Step("working", latency_ms=60000), Step("completed")]}
    )
    results = rxtasks.poll_until_terminal(server.get_task, "t")
    with anyio.move_on_after(5):
        async for _ in results:
            pass
    assert [(c.started, c.cancelled) for c in server.calls] == [(0.0, False), (0.1, True)]
    await anyio.sleep(100)
    assert len(server.calls) == 2
    with pytest.raises(StopAsyncIteration):
        await anext(results)


async def test_break_leaves_no_work_behind(virtual_time: VirtualClock) -> None:
    """After break, with no aclose(), nothing is called, even after gc and more loop work."""
    server = FakeTaskServer({"t": steps("working", "working", "completed", interval_ms=100)})
    async for _ in rxtasks.poll_until_terminal(server.get_task, "t"):
        break
    gc.collect()
    await anyio.sleep(10)
    assert len(server.calls) == 1


def test_break_without_aclose_is_silent_at_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    """Abandoning the iterator logs nothing at gc or loop shutdown, on asyncio and trio."""
    server = FakeTaskServer(
        {"t": steps("working", "working", "completed", interval_ms=100, latency_ms=10)}
    )

    async def main() -> None:
        async for _ in rxtasks.poll_until_terminal(server.get_task, "t"):
            break
        await anyio.sleep(0.3)

    with caplog.at_level(logging.DEBUG):
        anyio.run(main, backend="asyncio")
        anyio.run(main, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)})
        gc.collect()
    assert len(server.calls) == 2
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_aclose_stops_iteration(virtual_time: VirtualClock) -> None:
    """aclose() disposes the subscription; the iterator is then exhausted."""
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=100)})
    async with rxtasks.poll_until_terminal(server.get_task, "t") as results:
        await anext(results)
    with pytest.raises(StopAsyncIteration):
        await anext(results)
    assert len(server.calls) == 1


async def test_concurrent_anext_is_refused(virtual_time: VirtualClock) -> None:
    """Two tasks cannot drive the same iterator at once, as with async generators."""
    server = FakeTaskServer({"t": [Step("working", latency_ms=1000), Step("completed")]})
    results = rxtasks.poll_until_terminal(server.get_task, "t")
    async with anyio.create_task_group() as tg:
        tg.start_soon(anext, results)
        await anyio.sleep(0.5)
        with pytest.raises(rxtasks.IteratorBusyError, match="being read by another task"):
            await anext(results)


@pytest.mark.parametrize("value", [-1, float("nan"), "500"])
def test_invalid_default_interval_is_refused(value: Any) -> None:
    """The caller's default must be a number of milliseconds >= 0."""
    server = FakeTaskServer({"t": steps("completed")})
    with pytest.raises((ValueError, TypeError), match="default_interval_ms"):
        rxtasks.poll_until_terminal(server.get_task, "t", default_interval_ms=value)


# -- iterate ------------------------------------------------------------------------------


async def test_iterate_runs_reactivex_operators(virtual_time: VirtualClock) -> None:
    """Operators run on the pull scheduler, in virtual time."""
    server = FakeTaskServer({"t": steps("working", "working", "completed", interval_ms=250)})
    statuses: reactivex.Observable[object] = rxtasks.poll(server.get_task, "t").pipe(
        ops.map(status_of)
    )
    statuses = statuses.pipe(ops.distinct_until_changed())
    assert await collect(rxtasks.iterate(statuses)) == ["working", "completed"]

    def now(_: int) -> float:
        return anyio.current_time()

    timed = reactivex.timer(1.5).pipe(ops.map(now))
    start = anyio.current_time()
    assert [t - start for t in await collect(rxtasks.iterate(timed))] == [1.5]


async def test_iterate_sequences_and_errors() -> None:
    """Synchronous sources work; an error comes after the items before it, unchanged."""
    error = ValueError("boom")
    source = reactivex.concat(reactivex.of(1, 2, 3), reactivex.throw(error))
    seen: list[int] = []
    with pytest.raises(ValueError, match="boom") as info:
        await drain(rxtasks.iterate(source), seen)
    assert seen == [1, 2, 3]
    assert info.value is error


async def test_iterate_retry_polls_again(virtual_time: VirtualClock) -> None:
    """Poll is cold: retry resubscribes and starts a fresh poll at once."""
    server = FakeTaskServer(
        {"t": [Step("working", 100), Step(error=OSError("blip")), Step("completed")]}
    )
    results = await collect(rxtasks.iterate(rxtasks.poll(server.get_task, "t").pipe(ops.retry(2))))
    assert [r.status for r in results] == ["working", "completed"]
    assert [round(c.started, 6) for c in server.calls] == [0.0, 0.1, 0.1]


@pytest.mark.parametrize("source", [reactivex.never(), Subject[int]()], ids=["never", "subject"])
async def test_iterate_refuses_to_hang(source: reactivex.Observable[int]) -> None:
    """A pipeline iterate() cannot drive raises StalledError instead of hanging."""
    with pytest.raises(StalledError, match="open_stream"):
        await collect(rxtasks.iterate(source))


# -- open_stream --------------------------------------------------------------------------


async def test_open_stream_delivers_everything(virtual_time: VirtualClock) -> None:
    """All items arrive in order, losslessly, and the stream ends with the observable."""
    server = FakeTaskServer({"t": steps("working", "input_required", "completed", interval_ms=100)})
    async with rxtasks.open_stream(rxtasks.poll(server.get_task, "t")) as results:
        statuses = [r.status async for r in results]
    assert statuses == ["working", "input_required", "completed"]
    assert [round(c.started, 6) for c in server.calls] == [0.0, 0.1, 0.2]


async def test_open_stream_merges_concurrent_polls(virtual_time: VirtualClock) -> None:
    """Many tasks merged: each is polled at its own pace, concurrently."""
    server = FakeTaskServer(
        {
            "a": steps("working", "working", "completed", interval_ms=300, latency_ms=100),
            "b": steps(
                "working", "working", "working", "completed", interval_ms=100, latency_ms=100
            ),
        }
    )

    def key(result: Task) -> tuple[str, object]:
        return result.taskId, result.status

    merged = reactivex.merge(*(rxtasks.poll(server.get_task, t).pipe(ops.map(key)) for t in "ab"))
    async with rxtasks.open_stream(merged) as items:
        assert len([item async for item in items]) == 7
    assert [round(c.started, 6) for c in server.calls_for("a")] == [0.0, 0.4, 0.8]
    assert [round(c.started, 6) for c in server.calls_for("b")] == [0.0, 0.2, 0.4, 0.6]


async def test_open_stream_error_is_the_same_object(virtual_time: VirtualClock) -> None:
    """The pipeline's error is raised in the consumer, not wrapped in an ExceptionGroup."""
    error = ConnectionError("gone")
    server = FakeTaskServer({"t": [Step("working", 100), Step(error=error)]})
    seen: list[Any] = []
    with pytest.raises(ConnectionError) as info:
        await drain_stream(rxtasks.poll(server.get_task, "t"), seen)
    assert info.value is error
    assert len(seen) == 1


async def test_leaving_open_stream_cancels_the_call_in_flight(virtual_time: VirtualClock) -> None:
    """Leaving the block disposes the subscription and cancels the in-flight call."""
    server = FakeTaskServer(
        {"t": [Step("working", 500), Step("working", latency_ms=60000), Step("completed")]}
    )
    async with rxtasks.open_stream(rxtasks.poll(server.get_task, "t")) as results:
        await anext(results)
        with anyio.move_on_after(1):
            await anext(results)
    assert [(c.started, c.cancelled) for c in server.calls] == [(0.0, False), (0.5, True)]
    await anyio.sleep(100)
    assert len(server.calls) == 2
    with pytest.raises(anyio.ClosedResourceError):
        await anext(results)


async def test_break_out_of_open_stream(virtual_time: VirtualClock) -> None:
    """Break inside the block, then leaving it, stops all polling."""
    server = FakeTaskServer({"t": steps("working", "working", "completed", interval_ms=100)})
    async with rxtasks.open_stream(rxtasks.poll(server.get_task, "t")) as results:
        async for _ in results:
            break
    await anyio.sleep(10)
    assert len(server.calls) == 1


async def test_open_stream_latest_keeps_only_the_newest(virtual_time: VirtualClock) -> None:
    """buffer="latest" conflates: a slow consumer sees the newest state, then the end."""
    server = FakeTaskServer(
        {"t": [*(Step("working", 10, message=str(i)) for i in range(20)), Step("completed")]}
    )
    seen: list[Any] = []
    async with rxtasks.open_stream(rxtasks.poll(server.get_task, "t"), buffer="latest") as results:
        async for result in results:
            seen.append(result)
            await anyio.sleep(0.095)
    assert seen[0].statusMessage == "0"
    assert seen[-1].status == "completed"
    assert 2 < len(seen) < 21


async def test_open_stream_bounded_buffer_overflows_loudly(virtual_time: VirtualClock) -> None:
    """A bounded buffer never drops silently: the items, then BufferOverflowError."""
    source = reactivex.of(*range(10))
    seen: list[int] = []
    with pytest.raises(BufferOverflowError) as info:
        await drain_stream(source, seen, buffer=3)
    assert seen == [0, 1, 2]
    assert info.value.buffer == 3


@pytest.mark.parametrize("buffer", [0, -1, 1.5, "all", True])
async def test_open_stream_refuses_bad_buffer(buffer: Any) -> None:
    """Buffer must be None, "latest" or an int >= 1."""
    with pytest.raises(ValueError, match="`buffer`"):
        async with rxtasks.open_stream(reactivex.empty(), buffer=buffer):
            pass


async def test_open_stream_accepts_items_from_other_threads() -> None:
    """Items emitted on a reactivex thread scheduler are handed to the loop's thread."""
    threads: set[int] = set()
    source = reactivex.from_iterable(range(5), scheduler=NewThreadScheduler()).pipe(
        ops.do_action(lambda _: threads.add(threading.get_ident()))
    )
    async with rxtasks.open_stream(source) as items:
        assert [item async for item in items] == [0, 1, 2, 3, 4]
    assert threading.get_ident() not in threads


async def test_open_stream_subject_fed_by_another_task(virtual_time: VirtualClock) -> None:
    """What iterate() refuses, open_stream handles: pushes from another task."""
    subject = Subject[int]()

    async def feed() -> None:
        for i in range(3):
            await anyio.sleep(1)
            subject.on_next(i)
        subject.on_completed()

    async with anyio.create_task_group() as tg, rxtasks.open_stream(subject) as items:
        tg.start_soon(feed)
        assert [(item, anyio.current_time()) async for item in items] == [(0, 1), (1, 2), (2, 3)]


async def test_pull_results_are_the_server_objects(virtual_time: VirtualClock) -> None:
    """The bridges hand over the very objects get_task returned."""
    returned: list[Task] = []
    server = FakeTaskServer({"t": steps("working", "completed", interval_ms=0)})

    async def get_task(task_id: str) -> Task:
        result = await server.get_task(task_id)
        returned.append(result)
        return result  # type: ignore[no-any-return]

    pulled = await collect(rxtasks.poll_until_terminal(get_task, "t"))
    assert all(a is b for a, b in zip(pulled, returned, strict=True))
