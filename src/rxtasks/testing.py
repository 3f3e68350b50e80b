"""A scripted, fault-injecting fake task server for tests of code that polls MCP tasks.

`FakeTaskServer` answers ``get_task(task_id)`` from a script of `Step` s per task, in the
shapes of real servers' ``tasks/get`` results (both protocol revisions, SDK models or
JSON), with their errors (an unknown or expired task raises `TaskNotFound`, code
-32602), and records every call with its times on the event loop's clock. A step can
inject a fault: latency, a hang (``latency_ms=math.inf``), an error, a result without a
status (`MISSING`), any invalid hint or status. `random_script` makes faulty scripts.

It needs no MCP SDK. Use it under a virtual clock (trio's ``MockClock``) to assert exact
times, or under reactivex's ``TestScheduler`` when no step has latency.

Example:
    >>> server = FakeTaskServer({"t1": [Step("working", 100), Step("completed")]})
    >>> async def main() -> None:
    ...     async for task in rxtasks.poll_until_terminal(server.get_task, "t1"):
    ...         print(task.status, task.pollInterval)
    ...     print([call.started for call in server.calls])
    >>> anyio.run(main, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)})
    working 100
    completed None
    [0.0, 0.1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio

from ._core._errors import ArgumentError

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "MISSING",
    "Call",
    "ExtensionTask",
    "FakeTaskServer",
    "Shape",
    "SnakeTask",
    "Step",
    "Task",
    "TaskNotFound",
    "random_script",
    "steps",
]

#: The result shapes a fake server can answer with: mcp 1.x and mcp 2.x models of the
#: 2025-11-25 revision, the tasks extension's (as fastmcp-tasks has it), and raw JSON of each.
Shape = Literal["mcp1", "mcp2", "extension", "json-2025-11-25", "json-extension"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: A `Step` status meaning "the result has no status at all" (a malformed result).
MISSING: Final[Any] = _Missing()


@dataclass(frozen=True)
class Step:
    """One answer of the fake server.

    Attributes:
        status: The task's status in this answer: any value, valid or not, or `MISSING`
            for a result with no status.
        poll_interval_ms: The interval hint, in milliseconds; ``None`` for none. Any
            value is sent as given, so invalid hints can be tested.
        latency_ms: How long the call takes, in milliseconds of the event loop's clock;
            ``math.inf`` hangs until cancelled.
        error: If set, the call raises this after ``latency`` instead of answering.
        message: The ``statusMessage``.
    """

    status: object = "working"
    poll_interval_ms: object = None
    latency_ms: float = 0.0
    error: BaseException | None = None
    message: str | None = None


@dataclass(frozen=True)
class Task:
    """A ``tasks/get`` result of the 2025-11-25 revision, as mcp 1.x models it (camelCase)."""

    taskId: str  # the SDK's attribute names
    status: object
    pollInterval: object = None
    statusMessage: str | None = None
    createdAt: datetime | None = None
    lastUpdatedAt: datetime | None = None
    ttl: int | None = None


@dataclass(frozen=True)
class SnakeTask:
    """A 2025-11-25 ``tasks/get`` result as mcp 2.x models it (snake_case)."""

    task_id: str
    status: object
    poll_interval: object = None
    status_message: str | None = None
    created_at: datetime | None = None
    last_updated_at: datetime | None = None
    ttl: int | None = None


@dataclass(frozen=True)
class ExtensionTask:
    """A ``tasks/get`` result of the tasks extension (2026-07-28), as fastmcp-tasks has it."""

    task_id: str
    status: object
    poll_interval_ms: object = None
    status_message: str | None = None
    created_at: datetime | None = None
    last_updated_at: datetime | None = None
    ttl_ms: int | None = None


@dataclass
class Call:
    """One call of `FakeTaskServer.get_task`, with times on the event loop's clock.

    Attributes:
        task_id: The id asked for.
        started: When the call started.
        finished: When it returned or raised; ``None`` while in flight or if cancelled.
        cancelled: Whether it was cancelled.
        result: What it returned, if it did.
    """

    task_id: str
    started: float
    finished: float | None = None
    cancelled: bool = False
    result: object = None


class TaskNotFound(LookupError):
    """Raised for an unknown or expired task id, as a real server answers error -32602.

    Attributes:
        code: The JSON-RPC error code, -32602, as on ``MCPError``.
    """

    code = -32602


@dataclass
class FakeTaskServer:
    """A task server that answers ``get_task`` from a script.

    The n-th call for a task answers its n-th step; calls after the last step answer
    the last one again (a terminal task stays terminal, as on a real server). A task is
    created at its first call; with a ttl, calls from ``ttl_ms`` after that raise
    `TaskNotFound`, as a server that deleted it.

    Args:
        scripts: The steps of each task id.
        shape: The shape of the results (see `Shape`).
        clock: What times are read from; default: the event loop's clock. Under
            reactivex's ``TestScheduler`` pass ``lambda: scheduler.clock``.
        ttl_ms: The tasks' ttl in milliseconds (one for all, or per task id); results
            carry it and ``createdAt``; ``None``: unlimited.
        epoch: The wall-clock time of clock time 0, for ``createdAt`` and
            ``lastUpdatedAt``; default: taken at the first call, so that the results'
            times agree with the client's clock, as a real server's do.

    Attributes:
        calls: Every call, in order.
        max_in_flight: The most calls in flight at once, over all tasks.
        overlaps: Task ids that had two calls in flight at once (a poller bug).
    """

    scripts: Mapping[str, Sequence[Step]]
    shape: Shape = "mcp1"
    clock: Callable[[], float] = anyio.current_time
    ttl_ms: int | Mapping[str, int] | None = None
    epoch: datetime | None = None
    calls: list[Call] = field(default_factory=list[Call])
    max_in_flight: int = 0
    overlaps: list[str] = field(default_factory=list[str])
    _counts: dict[str, int] = field(default_factory=dict[str, int])
    _created: dict[str, float] = field(default_factory=dict[str, float])
    _active: dict[str, int] = field(default_factory=dict[str, int])
    _in_flight: int = 0

    def __post_init__(self) -> None:
        for task_id, steps in self.scripts.items():
            if not steps:
                raise ArgumentError(f"the script of task {task_id!r} has no steps")

    @property
    def in_flight(self) -> int:
        """How many calls have started and not finished."""
        return self._in_flight

    def calls_for(self, task_id: str) -> list[Call]:
        """Return the calls for one task, in order."""
        return [call for call in self.calls if call.task_id == task_id]

    async def get_task(self, task_id: str) -> Any:
        """Answer ``tasks/get`` for ``task_id`` with the next step of its script.

        Raises:
            TaskNotFound: If the task id has no script, or its ttl has passed.
        """
        now = self.clock()
        call = Call(task_id, now)
        self.calls.append(call)
        self._enter(task_id)
        try:
            steps = self.scripts.get(task_id)
            if steps is None:
                raise TaskNotFound(f"Task not found: {task_id}")
            created = self._created.setdefault(task_id, now)
            count = self._counts.get(task_id, 0)
            self._counts[task_id] = count + 1
            step = steps[min(count, len(steps) - 1)]
            if step.latency_ms:
                await anyio.sleep(step.latency_ms / 1000)
            ttl = self._ttl(task_id)
            if ttl is not None and self.clock() >= created + ttl / 1000:
                raise TaskNotFound(f"Task not found: {task_id} (expired)")
            if step.error is not None:
                raise step.error
            call.result = result = self.result(task_id, step, at=self.clock())
            return result
        except BaseException as exc:
            # Cancellation is a BaseException on every backend; errors are Exceptions.
            if not isinstance(exc, Exception):
                call.cancelled = True
            raise
        finally:
            self._leave(task_id)
            if not call.cancelled:
                call.finished = self.clock()

    def _enter(self, task_id: str) -> None:
        active = self._active.get(task_id, 0) + 1
        self._active[task_id] = active
        if active > 1:
            self.overlaps.append(task_id)
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self, task_id: str) -> None:
        self._active[task_id] -= 1
        self._in_flight -= 1

    def _ttl(self, task_id: str) -> int | None:
        ttl = self.ttl_ms
        if ttl is None or isinstance(ttl, int):
            return ttl
        return ttl.get(task_id)

    def _time(self, at: float) -> datetime:
        if self.epoch is None:
            self.epoch = datetime.now(UTC) - timedelta(seconds=at)
        return self.epoch + timedelta(seconds=at)

    def result(self, task_id: str, step: Step, *, at: float = 0.0) -> Any:
        """Build the result of ``step`` in this server's shape, as of clock time ``at``."""
        updated = self._time(at)
        created = self._time(self._created.get(task_id, at))
        ttl = self._ttl(task_id)
        fields: tuple[Any, ...] = (step.poll_interval_ms, step.message, created, updated, ttl)
        if step.status is MISSING:
            return {"taskId": task_id, "statusMessage": "a result with no status"}
        match self.shape:
            case "mcp1":
                return Task(task_id, step.status, *fields)
            case "mcp2":
                return SnakeTask(task_id, step.status, *fields)
            case "extension":
                return ExtensionTask(task_id, step.status, *fields)
            case "json-2025-11-25":
                return _json(task_id, step, created, updated, "pollInterval", "ttl", ttl)
            case "json-extension":
                return _json(task_id, step, created, updated, "pollIntervalMs", "ttlMs", ttl)


def _json(
    task_id: str,
    step: Step,
    created: datetime,
    updated: datetime,
    hint_key: str,
    ttl_key: str,
    ttl: int | None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "taskId": task_id,
        "status": step.status,
        "createdAt": created.isoformat(),
        "lastUpdatedAt": updated.isoformat(),
        ttl_key: ttl,
    }
    if step.poll_interval_ms is not None:
        result[hint_key] = step.poll_interval_ms
    if step.message is not None:
        result["statusMessage"] = step.message
    return result


def steps(*statuses: str, interval_ms: object = None, latency_ms: float = 0.0) -> list[Step]:
    """Make steps with the same hint and latency, one per status."""
    return [Step(status, interval_ms, latency_ms) for status in statuses]


def random_script(
    rng: random.Random,
    *,
    length: int = 10,
    fault_rate: float = 0.2,
    terminal: str | None = None,
    interval_ms: tuple[int, int] = (0, 500),
) -> list[Step]:
    """Make a random script: non-terminal steps, faults among them, then a terminal one.

    Faults: latency spikes, transient errors (``ConnectionError``), invalid hints
    (negative, NaN, beyond float range, a string, a bool), huge ones (28 hours), unknown
    statuses, results without a status.

    Args:
        rng: The random source (seed it for a repeatable script).
        length: How many non-terminal steps.
        fault_rate: The share of steps with a fault, 0 to 1.
        terminal: The final status; default: one of the three, at random.
        interval_ms: The range of valid hints, in milliseconds.
    """
    script: list[Step] = []
    for _ in range(length):
        status = rng.choice(["working", "working", "input_required"])
        hint: object = rng.randint(*interval_ms) if rng.random() < 0.8 else None
        if rng.random() >= fault_rate:
            script.append(Step(status, hint))
            continue
        match rng.randrange(6):
            case 0:
                script.append(Step(status, hint, latency_ms=rng.uniform(500, 5000)))
            case 1:
                script.append(Step(error=ConnectionError("transient fault")))
            case 2:
                # Invalid (negative, NaN, beyond float, a string, a bool) or merely huge:
                # 10**8 ms is 28 hours, a hint only a PollPolicy cap makes reasonable.
                bad = rng.choice([-1, math.nan, 10**400, 10**8, "fast", True])
                script.append(Step(status, bad))
            case 3:
                script.append(Step("paused", hint))  # an unknown status
            case 4:
                script.append(Step(MISSING, hint))
            case _:
                script.append(Step(status, hint, latency_ms=rng.uniform(0, 50)))
    final = terminal or rng.choice(["completed", "failed", "cancelled"])
    script.append(Step(final, None))
    return script
