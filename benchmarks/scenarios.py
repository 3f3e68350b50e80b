"""One measurement, in the process that runs this file: `run.py` starts one per cell and repeat.

    python benchmarks/scenarios.py '{"scenario": "per_poll", "impl": "pull", "backend": "trio"}'

prints one JSON object (the figures) as its last line of output. Each measurement runs in
a fresh interpreter so that its peak RSS, its imports and its garbage are its own.

The subjects, all polling the same scripted ``get_task`` (see `Script`):

- ``floor``: the bare ``get_task`` calls in a loop (the backend's own sleep between them
  when the interval is above 0): what polling costs with no machinery at all.
- ``generator``: the MCP SDK's ``poll_until_terminal`` (mcp 1.23-1.30), an async generator.
- ``pull``: rxtasks' drop-in ``poll_until_terminal``, the lazy pull bridge.
- ``push``: ``rxtasks.poll`` subscribed on an ``rxtasks.AnyioScheduler``.
- ``push_rx``: ``rxtasks.poll`` subscribed on reactivex's ``AsyncIOScheduler`` (asyncio only).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import math
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Self

import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine

# Every child imports the same modules whatever it measures, so that RSS, import-time
# garbage and the cost of the collector's full passes are the same for every subject.
import reactivex
from reactivex.scheduler.eventloop import AsyncIOScheduler

import rxtasks

try:
    from mcp.shared.experimental.tasks.polling import (
        poll_until_terminal as sdk_poll_until_terminal,
    )
    from mcp.types import GetTaskResult

    HAVE_MCP = True
except ImportError:  # outside the bench environment: no generator, stand-in results
    HAVE_MCP = False

IMPLS = ("floor", "generator", "pull", "push", "push_rx")
BACKENDS = ("asyncio", "uvloop", "trio")
TERMINAL = frozenset({"completed", "failed", "cancelled"})


class SlotsResult:
    """The two fields of an mcp 1.x ``GetTaskResult`` that polling reads, for runs without mcp."""

    __slots__ = ("pollInterval", "status", "taskId")

    def __init__(self, status: str, poll_interval: int | None) -> None:
        self.taskId = "t"
        self.status = status
        self.pollInterval = poll_interval


def make_result(status: str, poll_interval_ms: int | None) -> Any:
    """A ``tasks/get`` result as the SDK's generator reads it (``.status``, ``.pollInterval``)."""
    if not HAVE_MCP:
        return SlotsResult(status, poll_interval_ms)
    now = "2026-01-01T00:00:00Z"
    return GetTaskResult(
        taskId="t",
        status=status,  # type: ignore[arg-type]
        createdAt=now,  # type: ignore[arg-type]
        lastUpdatedAt=now,  # type: ignore[arg-type]
        ttl=None,
        pollInterval=poll_interval_ms,
    )


class Script:
    """The fake server: every task answers ``working`` ``polls - 1`` times, then ``completed``.

    The two result objects are built once and shared, so that memory measures the polling
    machinery and not the results. ``awaits`` makes ``get_task`` await ``anyio.sleep(0)``
    (one event-loop round trip, like a real call); otherwise it returns without suspending.
    ``record`` keeps the perf_counter time at which each call started and returned.
    """

    def __init__(
        self, polls: int, interval_ms: int, *, awaits: bool = False, record: bool = False
    ) -> None:
        self.polls = polls
        self.awaits = awaits
        self.working = make_result("working", interval_ms)
        self.completed = make_result("completed", None)
        self.counts: dict[str, int] = {}
        self.starts: list[float] = []
        self.ends: list[float] = []
        if record:
            self.get_task = self._get_task_recorded
        elif awaits:
            self.get_task = self._get_task_sleep0
        else:
            self.get_task = self._get_task

    def reset(self, task_ids: list[str]) -> None:
        self.counts = dict.fromkeys(task_ids, 0)
        self.starts.clear()
        self.ends.clear()

    async def _get_task(self, task_id: str) -> Any:
        counts = self.counts
        n = counts[task_id] + 1
        counts[task_id] = n
        return self.working if n < self.polls else self.completed

    async def _get_task_sleep0(self, task_id: str) -> Any:
        await anyio.sleep(0)  # noqa: ASYNC115 -- issue 5 measures exactly this call
        counts = self.counts
        n = counts[task_id] + 1
        counts[task_id] = n
        return self.working if n < self.polls else self.completed

    async def _get_task_recorded(self, task_id: str) -> Any:
        self.starts.append(time.perf_counter())
        counts = self.counts
        n = counts[task_id] + 1
        counts[task_id] = n
        result = self.working if n < self.polls else self.completed
        self.ends.append(time.perf_counter())
        return result


# -- the subjects: poll one task to its end ------------------------------------------------


def native_sleep(backend: str) -> Callable[[float], Awaitable[None]]:
    if backend == "trio":
        import trio

        return trio.sleep
    return asyncio.sleep


async def poll_floor(
    get_task: Callable[[str], Awaitable[Any]],
    task_id: str,
    interval_s: float,
    sleep: Callable[[float], Awaitable[None]],
) -> int:
    n = 0
    while True:
        result = await get_task(task_id)
        n += 1
        if result.status in TERMINAL:
            return n
        if interval_s:
            await sleep(interval_s)


async def consume(results: AsyncIterator[Any]) -> int:
    n = 0
    async for _ in results:
        n += 1
    return n


def push_many(
    get_task: Callable[[str], Awaitable[Any]],
    task_ids: list[str],
    on_next: Callable[[Any], None],
    scheduler: reactivex.abc.SchedulerBase,
    on_completed: Callable[[], None] | None = None,
) -> None:
    """Poll tasks on one push scheduler, the way an app would.

    One task: ``rxtasks.poll`` (what the per-poll targets are about). Many:
    ``rxtasks.poll_many``, or, in versions without it, one ``reactivex.merge`` of the
    per-task ``poll`` observables.
    """
    poll_many = getattr(rxtasks, "poll_many", None)
    if len(task_ids) == 1:
        source = rxtasks.poll(get_task, task_ids[0])
    elif poll_many is not None:
        source = poll_many(get_task, task_ids)
    else:
        source = reactivex.merge(*(rxtasks.poll(get_task, task_id) for task_id in task_ids))
    source.subscribe(on_next, _raise, on_completed, scheduler=scheduler)


def _raise(error: Exception) -> None:
    raise error


async def run_subject(
    impl: str, backend: str, script: Script, task_ids: list[str], interval_ms: int
) -> int:
    """Poll every task in ``task_ids`` to its end with ``impl``; return the results seen."""
    get_task = script.get_task
    interval_s = interval_ms / 1000
    seen = [0]

    def count(_: object) -> None:
        seen[0] += 1

    if impl == "push":
        async with rxtasks.AnyioScheduler() as scheduler:
            push_many(get_task, task_ids, count, scheduler)
        return seen[0]
    if impl == "push_rx":
        done = asyncio.Event()
        push_many(get_task, task_ids, count, AsyncIOScheduler(asyncio.get_running_loop()), done.set)
        await done.wait()
        return seen[0]

    def one(task_id: str) -> Coroutine[Any, Any, int]:
        if impl == "floor":
            return poll_floor(get_task, task_id, interval_s, native_sleep(backend))
        if impl == "generator":
            return consume(sdk_poll_until_terminal(get_task, task_id))
        if impl == "pull":
            return consume(rxtasks.poll_until_terminal(get_task, task_id))
        raise ValueError(f"unknown impl {impl!r}")

    if len(task_ids) == 1:
        return await one(task_ids[0])

    async def tally(task_id: str) -> None:
        polled = await one(task_id)
        seen[0] += polled

    async with anyio.create_task_group() as tg:
        for task_id in task_ids:
            tg.start_soon(tally, task_id)
    return seen[0]


# -- scenarios -----------------------------------------------------------------------------


async def per_poll(spec: dict[str, Any]) -> dict[str, Any]:
    """CPU and wall time per poll of one task, for each interval and each kind of get_task."""
    impl, backend = spec["impl"], spec["backend"]
    out: dict[str, Any] = {}
    for interval_ms in spec["intervals_ms"]:
        polls = spec["polls_interval0"] if interval_ms == 0 else spec["polls_timed"]
        for awaits in (False, True):
            variant = f"{interval_ms}ms/{'sleep0' if awaits else 'return'}"
            warm = Script(spec["warmup_polls"], 0, awaits=awaits)
            warm.reset(["t"])
            await run_subject(impl, backend, warm, ["t"], 0)
            script = Script(polls, interval_ms, awaits=awaits)
            script.reset(["t"])
            gc.collect()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            seen = await run_subject(impl, backend, script, ["t"], interval_ms)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            assert seen == polls, (impl, seen, polls)
            out[variant] = {"cpu_us": cpu / polls * 1e6, "wall_us": wall / polls * 1e6}
    return out


async def timer(spec: dict[str, Any]) -> dict[str, Any]:
    """How late each poll comes after its due time (the response + the interval)."""
    impl, backend = spec["impl"], spec["backend"]
    interval_ms = spec["interval_ms"]
    polls = spec["polls"]
    warm = Script(10, interval_ms, record=True)  # the first wake-ups of a fresh process
    warm.reset(["t"])
    await run_subject(impl, backend, warm, ["t"], interval_ms)
    script = Script(polls, interval_ms, record=True)
    script.reset(["t"])
    await run_subject(impl, backend, script, ["t"], interval_ms)
    interval_s = interval_ms / 1000
    starts, ends = script.starts, script.ends
    late_ms = [(starts[k] - ends[k - 1] - interval_s) * 1e3 for k in range(1, len(starts))]
    drift_ms = (starts[-1] - starts[0] - (len(starts) - 1) * interval_s) * 1e3
    return {
        "late_mean_ms": sum(late_ms) / len(late_ms),
        "late_p50_ms": quantile(late_ms, 0.5),
        "late_p99_ms": quantile(late_ms, 0.99),
        "late_min_ms": min(late_ms),
        "drift_ms": drift_ms,
        "polls": len(starts),
    }


async def scale(spec: dict[str, Any]) -> dict[str, Any]:
    """N tasks polled concurrently: memory, CPU per poll, wall time, event-loop lag."""
    impl, backend = spec["impl"], spec["backend"]
    n, polls, interval_ms = spec["n"], spec["polls"], spec["interval_ms"]
    script = Script(polls, interval_ms, awaits=spec.get("awaits", False))
    task_ids = [f"task-{i}" for i in range(n)]
    script.reset(task_ids)
    sleep = native_sleep(backend)
    lags: list[float] = []
    rss_kb: list[int] = []
    sampling_cpu = [0.0]
    running = True

    def sample_rss() -> None:
        cpu = time.process_time()
        rss_kb.append(exact_rss_kb())
        sampling_cpu[0] += time.process_time() - cpu  # not the subject's: taken off below

    async def probe() -> None:
        # The event loop's responsiveness while it polls: how late a 1 ms sleep wakes up.
        # It also samples the RSS, every 0.25 s or as often as it gets to run.
        next_sample = 0.0
        while running:
            t0 = time.perf_counter()
            if t0 >= next_sample:
                sample_rss()
                next_sample = time.perf_counter() + 0.25
                t0 = time.perf_counter()
            await sleep(0.001)
            lags.append((time.perf_counter() - t0 - 0.001) * 1e3)

    # A small run first: it touches (and so copies, in a forked child) the pages of the code
    # and objects that the real run uses, so that the RSS growth below is the polls' own.
    warm = Script(3, 1, awaits=script.awaits)
    warm_ids = task_ids[:100]
    warm.reset(warm_ids)
    await run_subject(impl, backend, warm, warm_ids, 1)
    gc.collect()
    release_free_memory()
    rss0_kb = exact_rss_kb()
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe)
        await sleep(0.01)  # the probe is running
        lags.clear()
        rss_kb.clear()
        sampling_cpu[0] = 0.0
        with GcTimer() as collector:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            seen = await run_subject(impl, backend, script, task_ids, interval_ms)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        running = False
    sample_rss()
    cpu -= sampling_cpu[0]
    assert seen == n * polls, (impl, seen, n * polls)
    growth_kb = max(rss_kb) - rss0_kb
    ideal = (polls - 1) * interval_ms / 1000
    return {
        "rss_growth_mb": growth_kb / 1024,
        "kb_per_poll": growth_kb / n,
        "rss_samples": len(rss_kb),
        "cpu_us_per_poll": cpu / seen * 1e6,
        "cpu_s": cpu,
        "wall_s": wall,
        "wall_over_ideal": wall / ideal,
        "lag_p50_ms": quantile(lags, 0.5) if lags else math.nan,
        "lag_p99_ms": quantile(lags, 0.99) if lags else math.nan,
        "lag_samples": len(lags),
        "gc_share": collector.seconds / cpu,
        "full_gcs": collector.full_collections,
    }


# -- helpers --------------------------------------------------------------------------------


class GcTimer:
    """Time spent in the cyclic garbage collector, and how many full collections it made.

    At scale, objects that live one poll interval outlast the young generations and die
    in the old one; each 25% growth of the old generation then costs a full collection,
    a walk over every object in the process.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full_collections = 0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.full_collections += info["generation"] == 2

    def __enter__(self) -> Self:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)


def quantile(values: list[float], q: float) -> float:
    """The q-quantile by linear interpolation (numpy's default), without numpy."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the OS, so that new pollers need new pages.

    Otherwise a small N of small pollers fits in memory freed earlier (the imports'
    garbage), and the RSS does not grow at all.
    """
    with contextlib.suppress(OSError, AttributeError):  # not glibc: the figure is coarser
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def exact_rss_kb() -> int:
    """The resident set, exactly: the kernel walks the page tables (a few ms per 100 MB).

    ``/proc/self/statm`` and ``ru_maxrss`` come from per-CPU counters that can be a few
    hundred KB off, as much as 1,000 pollers take on the push scheduler.
    """
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                return int(line.split()[1])
    raise RuntimeError("no Rss in /proc/self/smaps_rollup")


def current_rss_kb() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


async def calls(spec: dict[str, Any]) -> dict[str, Any]:
    """Function calls per poll (Python and C, as cProfile counts them): a figure free of noise."""
    import cProfile
    import pstats

    impl, backend, polls = spec["impl"], spec["backend"], spec["polls"]
    for profiled in (False, True):  # the first pass warms up
        script = Script(polls, 0)
        script.reset(["t"])
        profiler = cProfile.Profile()
        if profiled:
            profiler.enable()
        await run_subject(impl, backend, script, ["t"], 0)
        profiler.disable()
    stats = pstats.Stats(profiler)
    return {"calls_per_poll": stats.total_calls / polls}  # type: ignore[attr-defined]


SCENARIOS = {"per_poll": per_poll, "timer": timer, "scale": scale, "calls": calls}


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in this process and return its figures.

    With ``spec["profile"]`` (a path), the run is sampled by pyinstrument and its call
    tree written there as text.
    """
    if spec["impl"] == "generator" and not HAVE_MCP:
        raise RuntimeError("the SDK's generator needs mcp>=1.23,<2: run `nox -s bench`")
    scenario = SCENARIOS[spec["scenario"]]
    backend = spec["backend"]
    options: dict[str, Any] = {"use_uvloop": True} if backend == "uvloop" else {}
    profile_path = spec.get("profile")
    profiler = None
    if profile_path:
        from pyinstrument import Profiler

        # async_mode="disabled": attribute every sample to the code running, in any task.
        profiler = Profiler(interval=0.0002, async_mode="disabled")
        profiler.start()
    try:
        return anyio.run(
            scenario,
            spec,
            backend="trio" if backend == "trio" else "asyncio",
            backend_options=options,
        )
    finally:
        if profiler is not None:
            profiler.stop()
            # rxtasks, reactivex and mcp are installed packages, which pyinstrument folds
            # away by default: keep their frames, and add the flat list of self-times.
            keep = {"show_regex": r".*/(rxtasks|reactivex|mcp|anyio|trio|asyncio)/.*"}
            with open(profile_path, "w") as f:
                f.write(profiler.output_text(color=False, processor_options=keep))
                f.write(profiler.output_text(color=False, flat=True))


def main() -> None:
    print(json.dumps(measure(json.loads(sys.argv[1]))))


if __name__ == "__main__":
    main()
