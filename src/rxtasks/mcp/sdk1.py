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

from typing import TYPE_CHECKING, Any

from mcp import types
from pydantic import RootModel

from .._errors import TaskCancelledError, TaskFailedError, TaskNotCreatedError
from ._common import PushedStatuses, TaskAdapter, logger

if TYPE_CHECKING:
    from mcp.client.session import ClientSession, MessageHandlerFnT

__all__ = ["CoreTasks", "TaskNotifications", "demo_server"]

# A task-augmented tools/call answers CreateTaskResult, or CallToolResult when the server
# ran the tool at once or refused it (mcp 1.x servers answer every tool error that way).
_CallToolOrTask = RootModel[types.CreateTaskResult | types.CallToolResult]


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

    Args:
        session: An initialized client session.
        notifications: The session's pushed statuses (see `TaskNotifications`).
    """

    def __init__(
        self, session: ClientSession, *, notifications: TaskNotifications | None = None
    ) -> None:
        super().__init__(notifications)
        self.session = session

    async def start(
        self, name: str, arguments: dict[str, Any] | None = None, *, ttl_ms: int | None = 60_000
    ) -> str:
        """Call a tool as a task (``tools/call`` with ``params.task``); return the task id.

        Args:
            name: The tool.
            arguments: Its arguments.
            ttl_ms: How long the server should keep the task, from its creation, in
                milliseconds; ``None`` asks for no limit.

        Raises:
            TaskNotCreatedError: If the server answered with a plain tool result.
        """
        request = types.CallToolRequest(
            params=types.CallToolRequestParams(
                name=name, arguments=arguments, task=types.TaskMetadata(ttl=ttl_ms)
            )
        )
        answer = await self.session.send_request(types.ClientRequest(request), _CallToolOrTask)
        created = answer.root
        if isinstance(created, types.CallToolResult):
            text = " ".join(c.text for c in created.content if isinstance(c, types.TextContent))
            raise TaskNotCreatedError(
                f"tools/call {name!r} did not create a task: {text or created}", result=created
            )
        return created.task.taskId

    async def get_task(self, task_id: str) -> types.GetTaskResult:
        """Return the task's state (``tasks/get``); ``McpError`` -32602 if unknown."""
        request = types.GetTaskRequest(params=types.GetTaskRequestParams(taskId=task_id))
        return await self.session.send_request(types.ClientRequest(request), types.GetTaskResult)

    async def cancel_task(self, task_id: str) -> None:
        """Ask the server to cancel the task (``tasks/cancel``)."""
        request = types.CancelTaskRequest(params=types.CancelTaskRequestParams(taskId=task_id))
        await self.session.send_request(types.ClientRequest(request), types.CancelTaskResult)

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


def demo_server() -> Any:
    """Return a low-level mcp 1.x server with 2025-11-25 tasks and demo tools.

    Its tools (``work``, ``fail``, ``wait_cancel``, ``ask``) are described in
    ``rxtasks.mcp._server_sdk1``. Use one server per connection.
    """
    from ._server_sdk1 import build_core_server

    return build_core_server()
