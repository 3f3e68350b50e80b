"""Type-checked, never run: the caller's own result type comes back out of rxtasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, assert_type

from reactivex import Observable

import rxtasks

if TYPE_CHECKING:
    from rxtasks.mcp._common import TaskAdapter


@dataclass
class MyResult:
    status: str
    pollInterval: int | None


async def get_task(task_id: str) -> MyResult:
    """A caller's own get_task."""
    return MyResult("completed", None)


async def check() -> None:
    """Each public entry point keeps the result type."""
    assert_type(rxtasks.poll(get_task, "t"), Observable[MyResult])
    assert_type(rxtasks.poll(get_task, "t", 250, scheduler=None), Observable[MyResult])
    assert_type(rxtasks.from_async(get_task, "t"), Observable[MyResult])
    async for result in rxtasks.poll_until_terminal(get_task, "t"):
        assert_type(result, MyResult)
    async for result in rxtasks.iterate(rxtasks.poll(get_task, "t")):
        assert_type(result, MyResult)
    async with rxtasks.open_stream(rxtasks.poll(get_task, "t"), buffer="latest") as results:
        async for result in results:
            assert_type(result, MyResult)
    async with rxtasks.AnyioScheduler() as scheduler:
        assert_type(scheduler, rxtasks.AnyioScheduler)
        assert_type(scheduler.statistics().timers_pending, int)
    assert_type(rxtasks.is_terminal("working"), bool)


async def get_status(task_id: str, verbose: bool) -> MyResult:
    """An async function of more than one argument."""
    return MyResult("completed", None)


def check_model_and_policies(adapter: TaskAdapter[MyResult]) -> None:
    """The model, poll_many, policies and adapters keep the result type too."""
    assert_type(rxtasks.server_timer(get_task, "t"), Observable[MyResult])
    policy = rxtasks.PollPolicy(min_interval_ms=100, retry=rxtasks.Retry(attempts=5))
    assert_type(rxtasks.server_timer(get_task, "t", 250, policy=policy), Observable[MyResult])
    model = rxtasks.server_timer(get_task, "t").pipe(rxtasks.until_terminal())
    assert_type(model, Observable[MyResult])
    assert_type(rxtasks.poll_many(get_task, ["a", "b"], max_in_flight=4), Observable[MyResult])
    assert_type(rxtasks.poll(get_task, "t", policy=policy), Observable[MyResult])
    assert_type(policy.clamp(0.5), float)
    # from_async keeps its arguments' types: a wrong one is a type error.
    assert_type(rxtasks.from_async(get_status, "t", True), Observable[MyResult])
    rxtasks.from_async(get_status, "t", "yes")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    assert_type(adapter.poll("t", policy=policy), Observable[MyResult])
    assert_type(adapter.poll_many(["a"], max_in_flight=2), Observable[MyResult])
