"""Adapters for the MCP Python SDK 2.x: the tasks extension, and 2025-11-25 tasks.

The tasks extension (``io.modelcontextprotocol/tasks``, protocol 2026-07-28) is not
modelled by the SDK; this module brings its own models. The client declares the
extension on every request through ``ClientSession(extensions=...)`` (a hand-written
``_meta`` declaration is overwritten by the session), which `session_options` provides:

Example:
    >>> notifications = TaskNotifications()
    >>> async with FastMCPTransport(server).connect_session(
    ...     **session_options(notifications)
    ... ) as session:  # or ClientSession(read, write, **session_options(...))
    ...     await session.discover()  # negotiates 2026-07-28, where extensions apply
    ...     tasks = ExtensionTasks(session, notifications=notifications)
    ...     task_id = await tasks.start("long_tool", {"n": 3})
    ...     async for task in rxtasks.iterate(tasks.poll(task_id)):
    ...         print(task.status, task.status_message)
    ...     print(tasks.outcome(task))  # the inlined result; raises for failed/cancelled

With a fastmcp ``Client``, importing ``fastmcp_tasks`` makes its session declare the
extension; pass ``client.session``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime  # noqa: TC003 -- pydantic reads field types at runtime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import anyio

try:
    import mcp_types
    from mcp.client.extension import NotificationBinding
    from mcp.shared.exceptions import MCPError
except ImportError as exc:  # pragma: no cover -- depends on the environment
    raise ImportError(
        "rxtasks.mcp.sdk2 needs the MCP SDK 2.x (mcp>=2.3,<3) and fastmcp-tasks. Install"
        ' them with: pip install "rxtasks[mcp]" (from a checkout: pip install ".[mcp]")'
    ) from exc
from pydantic import BaseModel, ConfigDict, ValidationError

from .._core._errors import (
    ArgumentError,
    InvalidResultError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotCreatedError,
    TaskNotTerminalError,
)
from .._core._status import is_terminal
from .._core._validate import check_ms
from . import TASKS_EXTENSION
from ._common import PushedStatuses, TaskAdapter, logger, read_task
from ._extension_sdk2 import TasksExtension

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterable, Mapping

    from mcp.client.session import ClientSession
    from mcp.shared.dispatcher import CallOptions
    from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher

__all__ = [
    "CoreTasks",
    "ExtensionTask",
    "ExtensionTasks",
    "TaskNotifications",
    "TasksExtension",
    "demo_server",
    "session_options",
]


# -- the extension's wire models (SEP-2663) --------------------------------------------------


class ExtensionTask(mcp_types.Result):
    """A task of the tasks extension, as ``tasks/get`` (and ``notifications/tasks``) carry it.

    Python names are snake_case, the wire's camelCase (``pollIntervalMs``, ...). The
    outcome is inlined: ``result`` when ``completed``, ``error`` when ``failed``,
    ``input_requests`` when ``input_required``. ``poll_interval_ms`` and ``ttl_ms`` hold
    what the server sent, even when it is not a number: rxtasks' reader checks them
    (`ExtensionTasks.get_task`), with its documented fallbacks.
    """

    model_config = ConfigDict(extra="allow")

    task_id: str
    status: str
    status_message: str | None = None
    created_at: datetime | None = None
    last_updated_at: datetime | None = None
    ttl_ms: Any = None
    poll_interval_ms: Any = None
    result_type: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = None


class _CreatedTask(ExtensionTask):
    result_type: Literal["task"] = "task"  # pyright: ignore[reportIncompatibleVariableOverride]


class _TaskIdParams(mcp_types.RequestParams):
    task_id: str


class _UpdateParams(mcp_types.RequestParams):
    task_id: str
    input_responses: dict[str, Any]


class _GetTask(mcp_types.Request[_TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: _TaskIdParams
    name_param = "taskId"  # mirrored into the Mcp-Name header on Streamable HTTP


class _UpdateTask(mcp_types.Request[_UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: _UpdateParams
    name_param = "taskId"


class _CancelTask(mcp_types.Request[_TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: _TaskIdParams
    name_param = "taskId"


class _Raw(mcp_types.Result):
    """Any result, kept as the server sent it (`raw`): rxtasks checks it, not the SDK."""

    model_config = ConfigDict(extra="allow")

    def raw(self) -> dict[str, Any]:
        """The result's JSON object."""
        return self.model_dump(by_alias=True, mode="json", exclude_unset=True)


# -- notifications -------------------------------------------------------------------------


class TaskNotifications(PushedStatuses[Any]):
    """Task states a server pushes, as an observable, for an mcp 2.x session.

    It listens to both revisions' notifications: ``notifications/tasks`` (the extension;
    sent after ``subscriptions/listen``, see `ExtensionTasks.listen`) and
    ``notifications/tasks/status`` (2025-11-25). The mcp 2.x session drops both unless
    they are bound: pass `bindings` as ``ClientSession(notification_bindings=...)``, or
    use `session_options`.
    """

    @property
    def bindings(self) -> list[NotificationBinding[Any]]:
        """The notification bindings for ``ClientSession(notification_bindings=...)``."""
        return [
            NotificationBinding(
                method="notifications/tasks", params_type=ExtensionTask, handler=self._deliver
            ),
            NotificationBinding(
                method="notifications/tasks/status",
                params_type=mcp_types.TaskStatusNotificationParams,
                handler=self._deliver,
            ),
        ]

    async def _deliver(self, params: Any) -> None:
        self.push(params)


def session_options(notifications: TaskNotifications | None = None) -> dict[str, Any]:
    """Keyword arguments for an mcp 2.x ``ClientSession`` that uses the tasks extension.

    They declare the extension on every request and bind the pushed statuses.

    Args:
        notifications: Where pushed task states go, if anywhere.

    Returns:
        ``extensions`` and ``notification_bindings``, for ``ClientSession(**...)`` or
        fastmcp's ``FastMCPTransport(server).connect_session(**...)``.
    """
    options: dict[str, Any] = {"extensions": {TASKS_EXTENSION: {}}}
    if notifications is not None:
        options["notification_bindings"] = notifications.bindings
    return options


# -- the tasks extension -------------------------------------------------------------------


class ExtensionTasks(TaskAdapter[ExtensionTask]):
    """Tasks of the tasks extension through an mcp 2.x ``ClientSession``.

    The session must declare the extension (`session_options`) and have negotiated
    protocol 2026-07-28 (``await session.discover()``). A task that needs input lists its
    requests in ``input_requests``; answer them with `update` (see `new_input_requests`).

    Answers are read leniently: only a task's id and status must be strings; an unusable
    poll interval hint (``true``, ``"abc"``) reaches rxtasks' reader as sent, which falls
    back to the default with one warning.

    Args:
        session: The session (for a fastmcp ``Client``: ``client.session``).
        notifications: The session's pushed statuses (see `TaskNotifications`).
        read_timeout_ms: How long ``tools/call``, ``tasks/get``, ``tasks/update``
            and ``tasks/cancel`` may take before they fail with ``MCPError``
            (``REQUEST_TIMEOUT``, a transient error for `PollPolicy`'s retry); None: the
            session's own limit.

    Raises:
        ArgumentTypeError: If ``read_timeout_ms`` is neither None nor a number.
        ArgumentError: If ``read_timeout_ms`` is not positive and finite.
    """

    PROTOCOL: ClassVar[str] = "2026-07-28"

    def __init__(
        self,
        session: ClientSession,
        *,
        notifications: TaskNotifications | None = None,
        read_timeout_ms: float | None = None,
    ) -> None:
        _check_timeout(read_timeout_ms)
        super().__init__(notifications)
        self.session = session
        self.read_timeout_ms = read_timeout_ms
        self._timeout_s = None if read_timeout_ms is None else read_timeout_ms / 1000
        self._answered: dict[str, set[str]] = {}

    async def create(
        self, name: str, arguments: dict[str, Any] | None = None, *, ttl_ms: int | None = None
    ) -> ExtensionTask:
        """Call a tool so that the server runs it as a task; return the created task.

        Poll it from there with ``poll(created)``: the first ``tasks/get`` waits the
        created task's ``pollIntervalMs``.

        Args:
            name: The tool.
            arguments: Its arguments.
            ttl_ms: Ignored: in the extension the server chooses the ttl (``ttl_ms``).

        Raises:
            TaskNotCreatedError: If the server ran the tool at once (a plain result).
            InvalidResultError: If the answer is neither a task nor a tool result.
        """
        request = mcp_types.CallToolRequest(
            params=mcp_types.CallToolRequestParams(name=name, arguments=arguments)
        )
        raw = (await self._send(request)).raw()
        kind = raw.get("resultType")
        if kind == "task":
            return read_task(_CreatedTask, raw, request="tools/call")
        answer: BaseModel
        try:
            if kind == "input_required":
                answer = mcp_types.InputRequiredResult.model_validate(raw, by_name=False)
            else:
                answer = mcp_types.CallToolResult.model_validate(raw, by_name=False)
        except ValidationError:
            raise InvalidResultError(
                f"the server answered tools/call {name!r} with neither a task nor a tool"
                f" result: {str(raw)[:80]}",
                result=raw,
                task_id="",
            ) from None
        text = ""
        if isinstance(answer, mcp_types.CallToolResult):
            text = " ".join(c.text for c in answer.content if isinstance(c, mcp_types.TextContent))
        raise TaskNotCreatedError(
            f"tools/call {name!r} was answered without a task"
            f" ({type(answer).__name__}{': ' + text if text else ''});"
            " does the tool support tasks?",
            result=answer,
        )

    async def get_task(self, task_id: str) -> ExtensionTask:
        """Return the task's state (``tasks/get``); ``MCPError`` -32602 if unknown.

        Raises:
            InvalidResultError: If the answer has no string task id or status.
        """
        raw = (await self._send(_GetTask(params=_TaskIdParams(task_id=task_id)))).raw()
        return read_task(ExtensionTask, raw, request="tasks/get", task_id=task_id)

    async def cancel_task(self, task_id: str) -> None:
        """Ask the server to cancel the task (``tasks/cancel``; cooperative)."""
        await self._send(_CancelTask(params=_TaskIdParams(task_id=task_id)))

    async def _send(self, request: mcp_types.Request[Any, Any]) -> _Raw:
        try:
            return await self.session.send_request(
                request, _Raw, request_read_timeout_seconds=self._timeout_s
            )
        except ValidationError as exc:  # the session checks some answers itself
            raise InvalidResultError(
                f"the server answered {request.method} with a malformed result"
                f" ({exc.error_count()} problem(s); first: {_first_problem(exc)})",
                result=None,
                task_id="",
            ) from None

    async def update(self, task_id: str, responses: Mapping[str, Any]) -> None:
        """Answer input requests (``tasks/update``): request key -> response.

        A response is an ``ElicitResult`` (or any pydantic model, or its JSON dict).
        """
        wire = {
            key: value.model_dump(by_alias=True, mode="json", exclude_none=True)
            if hasattr(value, "model_dump")
            else value
            for key, value in responses.items()
        }
        await self._send(_UpdateTask(params=_UpdateParams(task_id=task_id, input_responses=wire)))
        self._answered.setdefault(task_id, set()).update(responses)

    def new_input_requests(self, task: ExtensionTask) -> dict[str, Any]:
        """Return the task's input requests not answered yet through `update`.

        A task lists the same requests on every poll until they are answered; acting on
        each poll would ask the user twice (MCP Inspector #1174).
        """
        answered = self._answered.get(task.task_id, set())
        return {k: v for k, v in (task.input_requests or {}).items() if k not in answered}

    @asynccontextmanager
    async def listen(self, task_ids: Iterable[str]) -> AsyncGenerator[None]:
        """Ask the server to push ``notifications/tasks`` for these tasks, in this block.

        ``subscriptions/listen`` is a long-lived request: the server pushes the tasks'
        states (to `TaskNotifications`) until the block ends and the request is
        cancelled. A server that does not support it answers with an error, which is
        logged (INFO); polling goes on either way, since the protocol makes pushes
        optional.

        Args:
            task_ids: The tasks to hear about.
        """
        filter_ = mcp_types.SubscriptionFilter.model_validate({"taskIds": list(task_ids)})
        request = mcp_types.SubscriptionsListenRequest(
            params=mcp_types.SubscriptionsListenRequestParams(notifications=filter_)
        )

        async def listen() -> None:
            try:
                await self.session.send_request(request, _Raw)
            except MCPError as exc:
                logger.info("the server pushes no task statuses (subscriptions/listen: %s)", exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(listen)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    def outcome(self, task: ExtensionTask) -> mcp_types.CallToolResult:
        """Return the tool's result inlined in a terminal task state.

        Raises:
            TaskFailedError: For ``failed``, with the JSON-RPC error's message and code.
            TaskCancelledError: For ``cancelled``.
            TaskNotTerminalError: If the task is not terminal yet.
        """
        if task.status == "completed":
            return mcp_types.CallToolResult.model_validate(task.result or {"content": []})
        if task.status == "failed":
            error = task.error or {}
            raise TaskFailedError(
                str(error.get("message") or task.status_message or "the task failed"),
                task_id=task.task_id,
                final=task,
                code=error.get("code"),
                data=error.get("data"),
            )
        if task.status == "cancelled":
            raise TaskCancelledError(
                f"task {task.task_id} was cancelled", task_id=task.task_id, final=task
            )
        raise TaskNotTerminalError(
            f"task {task.task_id} is {task.status!r}, not terminal",
            task_id=task.task_id,
            status=task.status,
        )

    async def result(self, task_id: str) -> mcp_types.CallToolResult:
        """Poll the task to its end and return the tool's result (see `outcome`).

        Input requests are not answered here: a task that needs input waits for
        `update`, which another task of yours must send.
        """
        from .._bridges import iterate

        final: ExtensionTask | None = None
        async for state in iterate(self.poll(task_id)):
            final = state
        assert final is not None
        assert is_terminal(final.status)
        return self.outcome(final)


def demo_server() -> Any:
    """Return a FastMCP server with the tasks extension and demo tools, for trying things.

    Its tools (``work``, ``quick``, ``slow``, ``fail``, ``wait_cancel``, ``ask``, ``echo``)
    are described in ``rxtasks.mcp._server_sdk2``; connect in process with fastmcp's
    ``FastMCPTransport(demo_server()).connect_session(**session_options())``.
    """
    from ._server_sdk2 import build_extension_server

    return build_extension_server()


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the result"
    return f"{where}: {first['msg']}"


def _check_timeout(value: float | None) -> None:
    if value is not None:
        check_ms(value, name="read_timeout_ms", positive=True)


# -- 2025-11-25 tasks through an mcp 2.x session ---------------------------------------------


class CoreTasks(TaskAdapter[mcp_types.Task]):
    """Tasks of protocol revision 2025-11-25 through an mcp 2.x ``ClientSession``.

    mcp 2.x keeps that revision's task types (``mcp_types.GetTaskResult``, snake_case
    attributes such as ``poll_interval``) and sends ``tasks/get``, ``tasks/result`` and
    ``tasks/cancel`` as typed requests. Creating a task is harder: the session checks a
    ``tools/call`` answer against ``CallToolResult`` and rejects the ``CreateTaskResult``
    of a task (python-sdk#3161). The one public way around it is to build the session
    on a ``JSONRPCDispatcher`` you keep, and pass it here as ``dispatcher``: `start`
    then sends the ``tools/call`` through it. Without one, `start` raises; poll tasks
    created elsewhere by id.

    Pass the dispatcher even for polling alone. A request its caller gives up (a
    subscription disposed, a terminal push that beat the poll, a timeout) is followed by
    ``notifications/cancelled``, and an mcp 1.x server (up to 1.30 at least) can lose the
    whole session to one that arrives while it answers: the handler's ``CancelledError``
    escapes ``RequestResponder.__exit__`` (python-sdk#2149) and every later request gets
    "Session not found". ``tasks/get`` and ``tasks/cancel`` have no work on the server
    worth interrupting, so `get_task` and `cancel_task` send them through the dispatcher
    without that notification (and with ``read_timeout_ms``).

    An mcp 1.x server speaks 2025-11-25: initialize the session with ``initialize()``
    (over Streamable HTTP such a server answers ``server/discover`` with an error, -32600
    "Missing session ID", not -32601).

    Args:
        session: An initialized client session.
        notifications: The session's pushed statuses (``notifications/tasks/status``).
        dispatcher: The session's dispatcher: to create tasks with `start`, and to give
            up ``tasks/get`` and ``tasks/cancel`` without ``notifications/cancelled``.
        read_timeout_ms: How long a ``tasks/get`` or ``tasks/cancel`` sent through
            the ``dispatcher`` may take before it fails with ``MCPError`` (the session's own
            ``read_timeout_ms`` is private to it); None waits as long as it takes.

    Raises:
        ArgumentTypeError: If ``read_timeout_ms`` is neither None nor a number.
        ArgumentError: If ``read_timeout_ms`` is not positive and finite.
    """

    def __init__(
        self,
        session: ClientSession,
        *,
        notifications: TaskNotifications | None = None,
        dispatcher: JSONRPCDispatcher | None = None,
        read_timeout_ms: float | None = None,
    ) -> None:
        _check_timeout(read_timeout_ms)
        super().__init__(notifications)
        self.session = session
        self.dispatcher = dispatcher
        self.read_timeout_ms = read_timeout_ms
        self._timeout_s = None if read_timeout_ms is None else read_timeout_ms / 1000

    async def create(
        self, name: str, arguments: dict[str, Any] | None = None, *, ttl_ms: int | None = 60_000
    ) -> mcp_types.Task:
        """Call a tool as a task (``tools/call`` with ``params.task``); return the created task.

        Poll it from there with ``poll(created)``: the first ``tasks/get`` waits the
        created task's ``pollInterval``.

        Raises:
            ArgumentError: Without a ``dispatcher`` (see the class).
            TaskNotCreatedError: If the server answered with a plain tool result.
        """
        if self.dispatcher is None:
            raise ArgumentError(
                "mcp 2.x rejects the CreateTaskResult of a 2025-11-25 task in tools/call"
                " (python-sdk#3161). Build the ClientSession with dispatcher=JSONRPCDispatcher"
                "(read, write) and pass the same dispatcher to CoreTasks(..., dispatcher=...)"
            )
        params: dict[str, Any] = {"name": name, "task": {"ttl": ttl_ms}}
        if arguments is not None:
            params["arguments"] = arguments
        options: CallOptions = {}
        if self._timeout_s is not None:
            options["timeout"] = self._timeout_s
        raw = await self.dispatcher.send_raw_request("tools/call", params, options)
        if "task" in raw:
            return read_task(mcp_types.Task, raw["task"], request="tools/call")
        try:
            result = mcp_types.CallToolResult.model_validate(raw, by_name=False)
        except ValidationError:
            raise InvalidResultError(
                f"the server answered tools/call {name!r} with neither a task nor a tool"
                f" result: {str(raw)[:80]}",
                result=raw,
                task_id="",
            ) from None
        raise TaskNotCreatedError(f"tools/call {name!r} did not create a task", result=result)

    async def get_task(self, task_id: str) -> mcp_types.GetTaskResult:
        """Return the task's state (``tasks/get``); ``MCPError`` -32602 if unknown.

        Through the ``dispatcher`` if there is one (see the class). Read leniently, as by
        `ExtensionTasks.get_task`.

        Raises:
            InvalidResultError: If the answer has no string task id or status.
        """
        request = mcp_types.GetTaskRequest(params=mcp_types.GetTaskRequestParams(task_id=task_id))
        raw = await self._quietly(request)
        return read_task(mcp_types.GetTaskResult, raw, request="tasks/get", task_id=task_id)

    async def cancel_task(self, task_id: str) -> None:
        """Ask the server to cancel the task (``tasks/cancel``).

        Through the ``dispatcher`` if there is one (see the class).
        """
        request = mcp_types.CancelTaskRequest(
            params=mcp_types.CancelTaskRequestParams(task_id=task_id)
        )
        await self._quietly(request)

    async def _quietly(
        self, request: mcp_types.GetTaskRequest | mcp_types.CancelTaskRequest
    ) -> dict[str, Any]:
        """Send a request with no server work to stop: given up, it is not cancelled."""
        if self.dispatcher is None:
            answer = await self.session.send_request(
                request, _Raw, request_read_timeout_seconds=self._timeout_s
            )
            return answer.raw()
        params = request.params.model_dump(by_alias=True, mode="json", exclude_none=True)
        options: CallOptions = {"cancel_on_abandon": False}
        if self._timeout_s is not None:
            options["timeout"] = self._timeout_s
        return await self.dispatcher.send_raw_request(request.method, params, options)

    async def result(self, task_id: str) -> mcp_types.CallToolResult:
        """Wait for the task's end (``tasks/result``) and return the tool's result.

        Raises:
            TaskFailedError: If the task failed (its message is the status message).
            TaskCancelledError: If the task was cancelled.
        """
        request = mcp_types.GetTaskPayloadRequest(
            params=mcp_types.GetTaskPayloadRequestParams(task_id=task_id)
        )
        payload = await self.session.send_request(request, _Raw)
        fields = payload.model_dump(by_alias=True, exclude_none=True)
        final = None if "content" in fields else await self.get_task(task_id)
        if final is None or final.status == "completed":
            return mcp_types.CallToolResult.model_validate({"content": [], **fields})
        if final.status == "cancelled":
            raise TaskCancelledError(f"task {task_id} was cancelled", task_id=task_id, final=final)
        raise TaskFailedError(
            final.status_message or f"task {task_id} {final.status}", task_id=task_id, final=final
        )
