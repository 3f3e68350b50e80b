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
from typing import TYPE_CHECKING, Any, ClassVar, cast

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
from ._call_tool_sdk1 import resolve
from ._common import PushedStatuses, TaskAdapter, logger, read_task

if TYPE_CHECKING:
    from collections.abc import Callable

    from mcp.client.session import ClientSession, MessageHandlerFnT

    from .._poll.policy import PollPolicy

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

    A ``tasks/get`` that a push made moot is left to finish, its answer dropped, rather
    than cancelled: mcp 1.30's session loses its connection when a request is cancelled
    just as its answer arrives (the receive loop's send hits the closed stream). With a
    push on the poll grid that happened in about 1 run in 4.
    """

    CANCEL_MOOT_CALLS: ClassVar[bool] = False

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

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        policy: PollPolicy | None = None,
        ttl_ms: int | None = 60_000,
        detach: bool = False,
        default_interval_ms: float = 500,
        on_status: Callable[[types.Task], object] | None = None,
    ) -> types.CallToolResult:
        """Call a tool as a task and return its result, like ``ClientSession.call_tool``.

        It creates the task (`create`), polls it from the created state (the first
        ``tasks/get`` waits the created task's ``pollInterval``), with the pushed
        statuses and ``policy``, and returns the tool's result:

        - **Input.** The first time the task is ``input_required``, ``tasks/result`` is
          called once, in the background; the server sends its requests over it and the
          session's ``elicitation_callback`` (or ``sampling_callback``) answers them,
          each once. It is never called again for the same task: the one call carries
          every later request too. A session without the callback cannot answer: the
          mcp 1.x server then fails the task, and that failure is the result (below).
        - **Completed.** The result of ``tasks/result``: the one made for input if
          there was one (it returns once the task has ended), else one call after the
          poll saw the task complete.
        - **Failed or cancelled.** mcp 1.x's convention for a tool that fails:
          ``ClientSession.call_tool`` does not raise, it returns a ``CallToolResult``
          with ``isError=True`` and the error's text (the low-level server turns a
          tool's exception into one). So here: ``isError=True``, the text being the
          task's status message (``"task <id> was cancelled"`` for a cancelled task),
          and ``_meta`` naming the task (``io.modelcontextprotocol/related-task``). A
          server whose ``tasks/result`` holds a tool result for the task gets that
          result back instead, with ``isError`` set. Protocol errors raise, as with
          ``ClientSession.call_tool``: ``McpError`` (for example a ``tasks/result``
          the server answers with a JSON-RPC error).
        - **Not a task.** A server that answers ``tools/call`` with a plain result
          (it ran the tool at once, or refused it, e.g. an unknown tool) gets that
          result returned, as ``ClientSession.call_tool`` would.
        - **Leaving early.** Cancelling the caller (anyio cancellation), the policy's
          deadline (`PollTimeoutError`, raised) or any other error before the task ended
          sends ``tasks/cancel``: best effort, shielded from the cancellation, bounded by
          `rxtasks.CANCEL_TIMEOUT_MS`, its own failure only logged. With
          ``detach=True`` nothing is sent and the task runs on at the server; use
          ``on_status`` to learn its id. A caller cancelled before ``tools/call`` was
          answered knows no task, and cancels none.

        Unlike ``ClientSession.call_tool``, the structured content is not validated
        against the tool's output schema.

        Args:
            name: The tool.
            arguments: Its arguments.
            policy: Deadline, retries of transient ``tasks/get`` errors, interval floor
                and cap (`PollPolicy`); None: no deadline, no retry.
            ttl_ms: How long the server should keep the task, in milliseconds.
            detach: Leave the task running when the call is left early.
            default_interval_ms: Interval when the server suggests none, in milliseconds.
            on_status: Called with every state the poll emits, the created one first
                (its ``taskId`` names the task, e.g. to find it again after a detach).
                When the result comes over the ``tasks/result`` made for input, polling
                stops there and the terminal state may not be among them.

        Returns:
            The tool's result; ``isError=True`` if the task failed or was cancelled.

        Raises:
            PollTimeoutError: If ``policy.timeout_ms`` passed first (the task is cancelled
                unless ``detach``).
            McpError: If a request failed (after ``policy.retry`` for ``tasks/get``).
            InvalidResultError: If an answer is neither a task nor a tool result.

        Example:
            >>> tasks = CoreTasks(session, notifications=notifications)
            >>> result = await tasks.call_tool(
            ...     "long_tool", {"n": 3},
            ...     policy=PollPolicy(timeout_ms=600_000, retry=Retry(attempts=5)),
            ... )
            >>> if result.isError:
            ...     print("failed:", result.content[0].text)
        """
        try:
            created = await self.create(name, arguments, ttl_ms=ttl_ms)
        except TaskNotCreatedError as exc:
            if isinstance(exc.result, types.CallToolResult):
                return exc.result
            raise  # pragma: no cover -- create() always carries a CallToolResult
        return await resolve(
            self,
            created,
            policy=policy,
            detach=detach,
            default_interval_ms=default_interval_ms,
            on_status=on_status,
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
