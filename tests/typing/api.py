"""Type-checked, never run: the caller's own result type comes back out of rxtasks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_type

from reactivex import Observable

import rxtasks


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
