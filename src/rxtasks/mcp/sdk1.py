"""Adapters for the MCP Python SDK 1.23-1.30: tasks of protocol revision 2025-11-25.

Example:
    >>> notifications = TaskNotifications()
    >>> async with ClientSession(
    ...     read, write,
    ...     message_handler=notifications.message_handler,
    ...     elicitation_callback=answer,  # for tasks that need input
    ... ) as session:
    ...     await session.initialize()
    ...     tasks = CoreTasks(session, notifications=notifications)
    ...     task_id = await tasks.start("long_tool", {"n": 3})
    ...     async for task in rxtasks.iterate(tasks.poll(task_id)):
    ...         print(task.status, task.statusMessage)
    ...     print(await tasks.result(task_id))

The requests go through ``ClientSession.send_request`` with the SDK's own types, so the
deprecated ``session.experimental`` API (and its warning) is not involved.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

try:
    from mcp import types
except ImportError as exc:  # pragma: no cover -- depends on the environment
    raise ImportError(
        "rxtasks.mcp.sdk1 needs the MCP SDK 1.x (mcp>=1.23,<2). Install it with:"
        ' pip install "rxtasks[mcp1]" (from a checkout: pip install ".[mcp1]")'
    ) from exc
from pydantic import RootModel, ValidationError

from .._core._errors import (
    InvalidResultError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotCreatedError,
)
from .._core._validate import check_ms
from ._common import PushedStatuses, TaskAdapter, logger, read_task

if TYPE_CHECKING:
    from mcp.client.session import ClientSession, MessageHandlerFnT

__all__ = ["CoreTasks", "TaskNotifications", "demo_server"]

# Answers are read as JSON and checked by rxtasks (see read_task): the SDK's models reject
# a whole answer for one odd field.
_Raw = RootModel[Any]


class TaskNotifications(PushedStatuses[types.TaskStatusNotificationParams]):
    """The ``notifications/tasks/status`` a 2025-11-25 server pushes, as an observable.

    Pass `message_handler` to ``ClientSession(message_handler=...)``; it hands every
    task status notification to `observable` and everything to ``chain``, if given.

    Args:
        chain: Your own message handler, called for every message after this one.
    """

    def __init__(self, chain: MessageHandlerFnT | None = None) -> None:
        super().__init__()
        self._chain = chain

    async def message_handler(self, message: Any) -> None:
        """The ``message_handler`` for ``ClientSession``."""
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.TaskStatusNotification
        ):
            self.push(message.root.params)
        if self._chain is not None:
            await self._chain(message)


class CoreTasks(TaskAdapter[types.Task]):
    """Tasks of protocol revision 2025-11-25 through an mcp 1.23-1.30 ``ClientSession``.

    `poll` emits ``GetTaskResult`` s from polls and ``TaskStatusNotificationParams`` from
    pushes (both ``mcp.types.Task``). A task that needs input (``input_required``)
    delivers its elicitation requests over ``tasks/result``: call `result` (once, on the
    transition) with an ``elicitation_callback`` on the session.

    Answers are read leniently: only a task's id and status must be strings; a poll
    interval hint or a ttl the SDK's models would reject (``250.0``, ``"abc"``) reaches
    rxtasks' reader as sent, which falls back to the default with one warning.

    Args:
        session: An initialized client session.
        notifications: The session's pushed statuses (see `TaskNotifications`).
        read_timeout_ms: How long ``tools/call``, ``tasks/get`` and ``tasks/cancel``
            may take before they fail with ``McpError`` (code 408, a transient error
            for `PollPolicy`'s retry); None: the session's own limit.

    Raises:
        ArgumentTypeError: If ``read_timeout_ms`` is neither None nor a number.
        ArgumentError: If ``read_timeout_ms`` is not positive and finite.
    """

    def __init__(
        self,
        session: ClientSession,
        *,
        notifications: TaskNotifications | None = None,
        read_timeout_ms: float | None = None,
    ) -> None:
        super().__init__(notifications)
        self.session = session
        if read_timeout_ms is not None:
            check_ms(read_timeout_ms, name="read_timeout_ms", positive=True)
        self.read_timeout_ms = read_timeout_ms
        self._timeout = None if read_timeout_ms is None else timedelta(milliseconds=read_timeout_ms)

    async def create(
        self, name: str, arguments: dict[str, Any] | None = None, *, ttl_ms: int | None = 60_000
    ) -> types.Task:
        """Call a tool as a task (``tools/call`` with ``params.task``); return the created task.

        Poll it from there with ``poll(created)``: the first ``tasks/get`` waits the
        created task's ``pollInterval``.

        Args:
            name: The tool.
            arguments: Its arguments.
            ttl_ms: How long the server should keep the task, from its creation, in
                milliseconds; ``None`` asks for no limit.

        Raises:
            TaskNotCreatedError: If the server answered with a plain tool result.
            InvalidResultError: If the answer is neither a task nor a tool result.
        """
        request = types.CallToolRequest(
            params=types.CallToolRequestParams(
                name=name, arguments=arguments, task=types.TaskMetadata(ttl=ttl_ms)
            )
        )
        raw = await self._send(request)
        created = _member(raw, "task")
        if created is not None:
            return read_task(types.Task, created, request="tools/call")
        try:
            result = types.CallToolResult.model_validate(raw)
        except ValidationError:
            raise InvalidResultError(
                f"the server answered tools/call {name!r} with neither a task nor a tool"
                f" result: {str(raw)[:80]}",
                result=raw,
                task_id="",
            ) from None
        text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
        raise TaskNotCreatedError(
            f"tools/call {name!r} did not create a task: {text or result}", result=result
        )

    async def get_task(self, task_id: str) -> types.GetTaskResult:
        """Return the task's state (``tasks/get``); ``McpError`` -32602 if unknown.

        Raises:
            InvalidResultError: If the answer has no string task id or status.
        """
        request = types.GetTaskRequest(params=types.GetTaskRequestParams(taskId=task_id))
        raw = await self._send(request)
        return read_task(types.GetTaskResult, raw, request="tasks/get", task_id=task_id)

    async def cancel_task(self, task_id: str) -> None:
        """Ask the server to cancel the task (``tasks/cancel``)."""
        request = types.CancelTaskRequest(params=types.CancelTaskRequestParams(taskId=task_id))
        await self._send(request)

    async def _send(self, request: Any) -> object:
        """Send a request and return its result as JSON, within ``read_timeout_ms``."""
        answer = await self.session.send_request(
            types.ClientRequest(request), _Raw, request_read_timeout_seconds=self._timeout
        )
        return answer.root

    async def result(self, task_id: str) -> types.CallToolResult:
        """Wait for the task's end (``tasks/result``) and return the tool's result.

        While the task is ``input_required`` the server sends its elicitation requests
        over this call; the session's ``elicitation_callback`` answers them.

        Raises:
            TaskFailedError: If the task failed (its message is the status message).
            TaskCancelledError: If the task was cancelled.
        """
        request = types.GetTaskPayloadRequest(
            params=types.GetTaskPayloadRequestParams(taskId=task_id)
        )
        payload = await self.session.send_request(
            types.ClientRequest(request), types.GetTaskPayloadResult
        )
        fields = payload.model_dump(by_alias=True, exclude_none=True)
        if "content" in fields:
            return types.CallToolResult.model_validate(fields)
        # A failed or cancelled task stores no result: say why from its final state.
        final = await self.get_task(task_id)
        if final.status == "completed":  # a result with no content at all
            return types.CallToolResult.model_validate({"content": [], **fields})
        if final.status == "cancelled":
            raise TaskCancelledError(f"task {task_id} was cancelled", task_id=task_id, final=final)
        logger.debug("task %s ended %s without a result", task_id, final.status)
        raise TaskFailedError(
            final.statusMessage or f"task {task_id} {final.status}",
            task_id=task_id,
            final=final,
        )


def _member(raw: object, name: str) -> object:
    """A member of a JSON object, or None (also when ``raw`` is not an object)."""
    return cast("dict[str, object]", raw).get(name) if isinstance(raw, dict) else None


def demo_server() -> Any:
    """Return a low-level mcp 1.x server with 2025-11-25 tasks and demo tools.

    Its tools (``work``, ``fail``, ``wait_cancel``, ``ask``) are described in
    ``rxtasks.mcp._server_sdk1``. Use one server per connection.
    """
    from ._server_sdk1 import build_core_server

    return build_core_server()
