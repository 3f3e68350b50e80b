"""A scripted fake task server for tests of code that polls MCP tasks.

`FakeTaskServer` answers ``get_task(task_id)`` from a script of `Step` s per task, in the
shape of a real server's ``tasks/get`` result, and records every call with its times on
the event loop's clock. It needs no MCP SDK. Use it under a virtual clock (trio's
``MockClock``) to assert exact times, or under reactivex's ``TestScheduler`` when no
step has latency.

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

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "Call",
    "ExtensionTask",
    "FakeTaskServer",
    "Shape",
    "SnakeTask",
    "Step",
    "Task",
    "TaskNotFound",
    "steps",
]

#: The result shapes a fake server can answer with (DESIGN.md "Shapes").
Shape = Literal["mcp1", "mcp2", "extension", "json-2025-11-25", "json-extension"]

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Step:
    """One answer of the fake server.

    Attributes:
        status: The task's status in this answer (any value, valid or not).
        poll_interval_ms: The interval hint, in milliseconds; ``None`` for none. Any
            value is sent as given, so invalid hints can be tested.
        latency: How long the call takes, in seconds of the event loop's clock.
        error: If set, the call raises this after ``latency`` instead of answering.
        message: The ``statusMessage``.
    """

    status: object = "working"
    poll_interval_ms: object = None
    latency: float = 0.0
    error: BaseException | None = None
    message: str | None = None


@dataclass(frozen=True)
class Task:
    """A ``tasks/get`` result of the 2025-11-25 revision, as mcp 1.x models it (camelCase)."""

    taskId: str
    status: object
    pollInterval: object = None
    statusMessage: str | None = None
    createdAt: datetime = _EPOCH
    lastUpdatedAt: datetime = _EPOCH
    ttl: int | None = None


@dataclass(frozen=True)
class SnakeTask:
    """A 2025-11-25 ``tasks/get`` result as mcp 2.x models it (snake_case)."""

    task_id: str
    status: object
    poll_interval: object = None
    status_message: str | None = None
    created_at: datetime = _EPOCH
    last_updated_at: datetime = _EPOCH
    ttl: int | None = None


@dataclass(frozen=True)
class ExtensionTask:
    """A ``tasks/get`` result of the tasks extension (2026-07-28), as fastmcp-tasks has it."""

    task_id: str
    status: object
    poll_interval_ms: object = None
    status_message: str | None = None
    created_at: datetime = _EPOCH
    last_updated_at: datetime = _EPOCH
    ttl_ms: int | None = None


@dataclass
class Call:
    """One call of `FakeTaskServer.get_task`, with times on the event loop's clock.

    Attributes:
        task_id: The id asked for.
        started: When the call started.
        finished: When it returned or raised; ``None`` while in flight or if cancelled.
        cancelled: Whether it was cancelled.
    """

    task_id: str
    started: float
    finished: float | None = None
    cancelled: bool = False


class TaskNotFound(LookupError):
    """Raised by the fake for an unknown task id (a real server answers error -32602)."""

    code = -32602


@dataclass
class FakeTaskServer:
    """A task server that answers ``get_task`` from a script.

    The n-th call for a task answers its n-th step; calls after the last step answer
    the last one again (a terminal task stays terminal, as on a real server).

    Args:
        scripts: The steps of each task id.
        shape: The shape of the results (see `Shape`).
        clock: What `Call` times are read from; default: the event loop's clock. Under
            reactivex's ``TestScheduler`` pass ``lambda: scheduler.clock``.
    """

    scripts: Mapping[str, Sequence[Step]]
    shape: Shape = "mcp1"
    clock: Callable[[], float] = anyio.current_time
    calls: list[Call] = field(default_factory=list[Call])
    _counts: dict[str, int] = field(default_factory=dict[str, int])

    def __post_init__(self) -> None:
        for task_id, steps in self.scripts.items():
            if not steps:
                raise ValueError(f"the script of task {task_id!r} has no steps")

    @property
    def in_flight(self) -> int:
        """How many calls have started and not finished."""
        return sum(1 for call in self.calls if call.finished is None and not call.cancelled)

    def calls_for(self, task_id: str) -> list[Call]:
        """Return the calls for one task, in order."""
        return [call for call in self.calls if call.task_id == task_id]

    async def get_task(self, task_id: str) -> Any:
        """Answer ``tasks/get`` for ``task_id`` with the next step of its script.

        Raises:
            TaskNotFound: If the task id has no script.
        """
        call = Call(task_id, self.clock())
        self.calls.append(call)
        try:
            steps = self.scripts.get(task_id)
            if steps is None:
                raise TaskNotFound(f"Task not found: {task_id}")
            count = self._counts.get(task_id, 0)
            self._counts[task_id] = count + 1
            step = steps[min(count, len(steps) - 1)]
            if step.latency:
                await anyio.sleep(step.latency)
            if step.error is not None:
                raise step.error
            return self.result(task_id, step, at=self.clock())
        except BaseException as exc:
            # Cancellation is a BaseException on every backend; errors are Exceptions.
            if not isinstance(exc, Exception):
                call.cancelled = True
            raise
        finally:
            if not call.cancelled:
                call.finished = self.clock()

    def result(self, task_id: str, step: Step, *, at: float = 0.0) -> Any:
        """Build the result of ``step`` in this server's shape, as of time ``at``."""
        updated = _EPOCH + timedelta(seconds=at)
        match self.shape:
            case "mcp1":
                return Task(
                    task_id, step.status, step.poll_interval_ms, step.message, _EPOCH, updated
                )
            case "mcp2":
                return SnakeTask(
                    task_id, step.status, step.poll_interval_ms, step.message, _EPOCH, updated
                )
            case "extension":
                return ExtensionTask(
                    task_id, step.status, step.poll_interval_ms, step.message, _EPOCH, updated
                )
            case "json-2025-11-25":
                return _json(task_id, step, "pollInterval", updated)
            case "json-extension":
                return _json(task_id, step, "pollIntervalMs", updated)


def _json(task_id: str, step: Step, hint_key: str, updated: datetime) -> dict[str, Any]:
    result: dict[str, Any] = {
        "taskId": task_id,
        "status": step.status,
        "createdAt": _EPOCH.isoformat(),
        "lastUpdatedAt": updated.isoformat(),
    }
    if step.poll_interval_ms is not None:
        result[hint_key] = step.poll_interval_ms
    if step.message is not None:
        result["statusMessage"] = step.message
    return result


def steps(*statuses: str, interval_ms: object = None, latency: float = 0.0) -> list[Step]:
    """Make steps with the same hint and latency, one per status."""
    return [Step(status, interval_ms, latency) for status in statuses]
