"""The exceptions rxtasks raises, in one place.

Hierarchy::

    RxTasksError                    base of every rxtasks error
    ├── ArgumentError               a bad argument or option (also a ValueError)
    │   └── ArgumentTypeError       one of the wrong type (also a TypeError)
    ├── InvalidResultError          get_task returned something that is not a task result
    │                               (also a TypeError)
    ├── SchedulerError              no scheduler that can run get_task, or one used wrongly
    │                               (also a RuntimeError)
    ├── PollTimeoutError            the policy's overall deadline passed (also a TimeoutError)
    ├── TaskExpiredError            the task's ttl passed before it ended
    ├── PollManyError               poll_many: some tasks failed (also an ExceptionGroup)
    ├── StreamError                 a bridge cannot deliver what the pipeline produced
    │   ├── BufferOverflowError     open_stream's bounded buffer filled up
    │   ├── StalledError            iterate()'s pipeline waits on work iterate() cannot drive
    │   ├── StreamClosedError       open_stream's iterator read after its block ended
    │   │                           (also an anyio.ClosedResourceError)
    │   └── IteratorBusyError       iterate()'s iterator read by two tasks at once
    │                               (also a RuntimeError)
    ├── TaskError                   a task ended without its result (rxtasks.mcp)
    │   ├── TaskFailedError         it ended `failed`
    │   ├── TaskCancelledError      it ended `cancelled`
    │   └── TaskInputError          it asks for input the client cannot give
    ├── TaskNotTerminalError        an outcome asked of a task that has not ended
    │                               (also a ValueError)
    └── TaskNotCreatedError         the server answered tools/call without creating a task

Every error rxtasks raises itself is in this tree; errors of ``get_task`` (and of the MCP
SDKs and the network underneath) are passed on as they are.

Errors raised by ``get_task`` itself (the MCP SDK's errors, network errors) are never
wrapped: they reach ``on_error`` and ``async for`` as the same exception object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import anyio

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "BufferOverflowError",
    "InvalidResultError",
    "IteratorBusyError",
    "PollManyError",
    "PollTimeoutError",
    "RxTasksError",
    "SchedulerError",
    "StalledError",
    "StreamClosedError",
    "StreamError",
    "TaskCancelledError",
    "TaskError",
    "TaskExpiredError",
    "TaskFailedError",
    "TaskInputError",
    "TaskNotCreatedError",
    "TaskNotFoundError",
    "TaskNotTerminalError",
]


class RxTasksError(Exception):
    """Base class of every error that rxtasks raises itself."""


class ArgumentError(RxTasksError, ValueError):
    """Raised for an argument or option out of range; the message names it and the range."""


class ArgumentTypeError(ArgumentError, TypeError):
    """Raised for an argument of the wrong type; the message names it and the type."""


class InvalidResultError(RxTasksError, TypeError):
    """Raised when ``get_task`` returns an object with no ``status``.

    A task result has a ``status`` attribute (SDK models) or key (raw JSON). Anything
    else is usually a programming error, such as returning the ``CreateTaskResult`` of
    ``tools/call`` instead of the result of ``tasks/get``.

    Attributes:
        result: The object ``get_task`` returned, so that nothing is lost.
        task_id: The id of the task being polled.
    """

    def __init__(self, message: str, *, result: object, task_id: str) -> None:
        super().__init__(message)
        self.result = result
        self.task_id = task_id


class SchedulerError(RxTasksError, RuntimeError):
    """Raised when a subscription has no scheduler that can await ``get_task``.

    Also raised when a scheduler is used outside the event loop it belongs to.
    """


class PollTimeoutError(RxTasksError, TimeoutError):
    """Raised when a poll's ``timeout_ms`` (`PollPolicy`) passes before a terminal status.

    The call in flight is cancelled; nothing is called afterwards.

    Attributes:
        task_id: The task.
        last_result: The last result emitted, or None if none arrived.
        timeout_ms: The deadline that passed, in milliseconds.
    """

    def __init__(
        self, message: str, *, task_id: str, last_result: object, timeout_ms: float
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.last_result = last_result
        self.timeout_ms = timeout_ms


class TaskExpiredError(RxTasksError):
    """Raised when the server no longer knows a task whose ttl has surely passed.

    The server may delete a task after its ttl (``createdAt`` + ``ttl``/``ttlMs``). A
    poll with the ttl backstop (`PollPolicy`) turns a "not found" answer that comes after
    the ttl into this error (the answer chained as its cause). A task the server still
    reports has not expired, whatever the clocks say.

    Attributes:
        task_id: The task.
        last_result: The last result emitted.
        expired_at: When the ttl ran out by the server's clock (UTC), if it said.
    """

    def __init__(
        self, message: str, *, task_id: str, last_result: object, expired_at: datetime | None
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.last_result = last_result
        self.expired_at = expired_at


class TaskNotFoundError(RxTasksError, LookupError):
    """Raised when a task picked up again (`rxtasks.mcp.TaskRef`) is unknown to its server.

    The server answered "not found" (JSON-RPC -32602) for a task whose ttl, as far as
    the reference knows, has not passed: the id is wrong, or the server lost the task
    (a restart of a server that keeps tasks in memory). After the ttl the same answer
    is `TaskExpiredError`. The answer is chained as the cause.

    Attributes:
        task_id: The task.
    """

    def __init__(self, message: str, *, task_id: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class PollManyError(ExceptionGroup[Exception], RxTasksError):
    """Raised by `poll_many` after the other tasks ended, when some of its polls failed.

    One task's error does not end the others: their results keep coming, and this
    group, holding each failed task's error unchanged, ends the stream at the end.
    Handle it with ``except*``, or look the errors up by task in `failures`.

    Attributes:
        failures: Each failed task's id and its error.
    """

    def __init__(self, message: str, exceptions: Sequence[Exception], /) -> None:
        super().__init__(message, exceptions)
        self.failures: dict[str, Exception] = {}

    @classmethod
    def from_failures(cls, failures: dict[str, Exception]) -> Self:
        """Build the group from each failed task's id and error."""
        group = cls(
            f"{len(failures)} polled task(s) failed: {', '.join(failures)}",
            list(failures.values()),
        )
        group.failures = dict(failures)
        return group

    def derive(self, excs: Sequence[Exception], /) -> PollManyError:  # type: ignore[override]  # pyright: ignore[reportIncompatibleMethodOverride]
        """Keep the type and the task ids when ``except*`` or a task group splits the group."""
        group = PollManyError(self.message, excs)
        group.failures = {task: e for task, e in self.failures.items() if e in excs}
        return group


class StreamError(RxTasksError):
    """Base class of the errors of the bridges from observables to ``async for``."""


class BufferOverflowError(StreamError):
    """Raised in the consumer of ``open_stream`` when its bounded buffer overflowed.

    The pipeline produced more than ``buffer`` items that the consumer had not taken yet.
    The items already buffered are delivered first; then this error is raised instead
    of silently dropping items.

    Attributes:
        buffer: The size of the buffer that overflowed.
    """

    def __init__(self, message: str, *, buffer: int) -> None:
        super().__init__(message)
        self.buffer = buffer


class StalledError(StreamError):
    """Raised by ``iterate()`` when the pipeline can make no progress on its own.

    ``iterate()`` drives the pipeline in the consumer's task: it runs only the timers and
    awaits scheduled on its own scheduler. A pipeline that waits for something else (a
    subject fed by another task, a source pinned to another scheduler, ``never()``) would
    hang forever, so it raises this instead. Use ``open_stream()`` for such pipelines.
    """


class StreamClosedError(StreamError, anyio.ClosedResourceError):
    """Raised by ``open_stream``'s iterator when it is read after its block has ended.

    A reader still waiting when the block ends is woken with it, as is every later read.
    It is also an ``anyio.ClosedResourceError``, what anyio's streams raise in that case.
    """


class IteratorBusyError(StreamError, RuntimeError):
    """Raised by ``iterate()``'s iterator when a second task reads it while one does.

    The pull bridge runs the pipeline in the reading task; two readers would run it twice.
    Read it from one task, or share the items through ``open_stream``, whose iterator
    several tasks may read at once.
    """


class TaskError(RxTasksError):
    """Base class of the errors for a task that ended without its result.

    Attributes:
        task_id: The task.
        status: Its final status.
        final: The final task state (the terminal result of ``tasks/get``).
    """

    def __init__(self, message: str, *, task_id: str, status: str, final: object) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.status = status
        self.final = final


class TaskFailedError(TaskError):
    """Raised for the result of a task that ended ``failed``.

    Attributes:
        code: The JSON-RPC error code, where the protocol revision carries one (the tasks
            extension inlines the error object); else None.
        data: The error's ``data``, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: str,
        final: object,
        code: int | None = None,
        data: object = None,
    ) -> None:
        super().__init__(message, task_id=task_id, status="failed", final=final)
        self.code = code
        self.data = data


class TaskCancelledError(TaskError):
    """Raised for the result of a task that ended ``cancelled``."""

    def __init__(self, message: str, *, task_id: str, final: object) -> None:
        super().__init__(message, task_id=task_id, status="cancelled", final=final)


class TaskInputError(TaskError):
    """Raised when a task asks for input that the client cannot give.

    The task is ``input_required`` with a request the client has no way to answer: it
    has no callback for the request's kind (an elicitation without an elicitation
    callback), its callback declined with an error, or the kind is one it does not
    know. Waiting would never end, so the call ends with this error instead.

    Attributes:
        key: The input request's key, as the task lists it.
        request: The request, as the server sent it.
    """

    def __init__(
        self, message: str, *, task_id: str, final: object, key: str, request: object
    ) -> None:
        super().__init__(message, task_id=task_id, status="input_required", final=final)
        self.key = key
        self.request = request


class TaskNotTerminalError(RxTasksError, ValueError):
    """Raised when a task's outcome is asked of a state that is not terminal.

    Attributes:
        task_id: The task.
        status: Its status in that state.
    """

    def __init__(self, message: str, *, task_id: str, status: object) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.status = status


class TaskNotCreatedError(RxTasksError):
    """Raised when ``tools/call`` was answered with a plain result instead of a task.

    The server ran the tool at once, refused it, or failed before creating a task (mcp
    1.x servers answer every error of a tool call this way).

    Attributes:
        result: The ``CallToolResult`` the server answered with.
    """

    def __init__(self, message: str, *, result: object) -> None:
        super().__init__(message)
        self.result = result
