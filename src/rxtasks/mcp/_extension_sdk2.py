"""`TasksExtension`: an mcp 2.x client extension that resolves tasked ``tools/call`` answers.

A server of the tasks extension may answer ``tools/call`` with a task
(``resultType: "task"``) instead of the tool's result. The SDK hands such an answer to
the ``ResultClaim`` an extension declared for it; this module's claim follows the task
through rxtasks (`ExtensionTasks.poll` from the created task, with the policy, the
pushed statuses and the input the task asks for) and returns the tool's real result.

It lives beside `rxtasks.mcp.sdk2`, which re-exports it, and imports that module only
when it runs: `sdk2` imports this one first.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import mcp_types
from mcp.client.extension import ClientExtension, ResultClaim, UnexpectedClaimedResult
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import ConfigDict, TypeAdapter, ValidationError
from reactivex.subject import Subject

from .._bridges import iterate
from .._core._errors import (
    ArgumentTypeError,
    PollTimeoutError,
    TaskCancelledError,
    TaskFailedError,
    TaskInputError,
)
from .._core._status import is_terminal
from .._poll.policy import PollPolicy, is_not_found
from . import TASKS_EXTENSION
from ._common import cancel_logged, logger, read_task

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from mcp.client.extension import ClaimContext, NotificationBinding
    from mcp.client.session import ClientSession
    from mcp.shared.dispatcher import ProgressFnT
    from reactivex import Observable

    from .sdk2 import ExtensionTask, ExtensionTasks, TaskNotifications

__all__ = ["TasksExtension"]

#: Reads an input request of a task (``inputRequests`` values) as the SDK's models.
_INPUT_REQUEST: TypeAdapter[mcp_types.InputRequest] = TypeAdapter(mcp_types.InputRequest)

#: The client callback that answers each kind of input request, for messages.
_CALLBACKS = {
    "elicitation/create": "elicitation_callback",
    "sampling/createMessage": "sampling_callback",
    "roots/list": "list_roots_callback",
}


class _ClaimedTask(mcp_types.Result):
    """A task, as the SDK parses the ``tools/call`` answer that created it.

    Only ``resultType`` is checked here: the rest reaches rxtasks' lenient reader
    (`read_task`) as the server sent it. The SDK forbids a claim model to declare
    ``inputRequests``, which the created task never carries anyway.
    """

    model_config = ConfigDict(extra="allow")

    result_type: Literal["task"] = "task"
    task_id: Any = None
    status: Any = None
    status_message: Any = None
    created_at: Any = None
    last_updated_at: Any = None
    ttl_ms: Any = None
    poll_interval_ms: Any = None


class TasksExtension(ClientExtension):
    """Tasked ``tools/call`` answers, resolved by rxtasks: ``call_tool`` returns the result.

    A client extension (``mcp.client.extension.ClientExtension``) for the tasks extension
    (``io.modelcontextprotocol/tasks``, protocol 2026-07-28). It declares the extension
    and claims its ``CreateTaskResult`` on ``tools/call``: when a server runs a call as a
    task, the SDK hands the created task to this extension, which follows it to its end
    and returns the tool's own ``CallToolResult``. The caller of ``call_tool`` never sees
    the task.

    **Pace and policy.** The task is polled with `ExtensionTasks.poll`, from the created
    task: its state is the first update, and the first ``tasks/get`` is due the created
    task's ``pollIntervalMs`` later, then each poll the interval of the last state. The
    ``policy`` adds a floor, a cap, retries of transient ``tasks/get`` errors and a
    deadline. A call's ``read_timeout_seconds`` (``call_tool(...,
    read_timeout_seconds=...)``; fastmcp: the call's or the client's timeout) is the
    deadline for the whole task, from its creation, unless the policy has one of its
    own. Statuses the server pushes (``notifications/tasks``, after
    ``subscriptions/listen``) are raced in; a server that pushes nothing (fastmcp-tasks)
    answers the ``subscriptions/listen`` with an error, which is logged at INFO, and the
    polls go on.

    **Input.** A task that is ``input_required`` lists its requests. Each one is
    answered once, through the client's own callback for its kind (the
    ``elicitation_callback`` of the ``Client`` or ``ClientSession``; sampling and roots
    requests go to theirs, as in the SDK's ``input_required`` handling), and the answers
    go back with ``tasks/update``; a request listed again on later polls is not asked
    again. A request the client cannot answer (no callback for its kind, so the SDK's
    default answers with an error; a callback that answers with ``ErrorData``; a kind
    the SDK does not know) ends the call with `TaskInputError`. Time spent answering
    counts toward the deadline.

    **Cancellation.** When the call ends before the task does (the caller is cancelled,
    the deadline passes, an error such as unanswerable input or a failed ``tasks/get``),
    ``tasks/cancel`` is sent: best effort, shielded from the cancellation, within
    ``rxtasks.CANCEL_TIMEOUT_MS``, its failure logged and never raised. With
    ``detach=True`` nothing is sent and the task runs on; its id is in the error
    (``task_id``) and in `updates`.

    **Outcome.** A ``completed`` task returns its result, ``isError`` included: a tool
    that reports an error is a result, as in a plain call. For the rest, the SDK's
    convention for a ``tools/call`` answered with a JSON-RPC error applies: mcp 2.x's
    ``Client.call_tool`` and ``ClientSession.call_tool`` raise ``MCPError`` (its
    ``code``, ``message`` and ``data``). The errors raised are ``MCPError`` and, at the
    same time, the matching rxtasks error, which carries the task (``task_id``,
    ``final``):

    - ``failed``: the task's inlined JSON-RPC error, unchanged; also a `TaskFailedError`.
    - ``cancelled``: -32603, "task ... was cancelled" (MCP has no code for a cancelled
      request); also a `TaskCancelledError`.
    - input it cannot give: the callback's error code (-32600, "Elicitation not
      supported", from the SDK's default callbacks), or -32601 for a kind it does not
      know; also a `TaskInputError`.
    - past the deadline: -32001 (``REQUEST_TIMEOUT``), as the SDK's own read timeout;
      also a `PollTimeoutError` (a ``TimeoutError``).

    Errors of ``tasks/get`` itself (after the policy's retries) are raised as they are.
    fastmcp's ``Client.call_tool`` passes these ``MCPError`` through (its ``ToolError``
    is for results with ``isError``).

    **Where it runs.** Anywhere the SDK's client runs (asyncio and trio):

    - ``mcp.client.Client(server, extensions=[TasksExtension()])``: ``call_tool``
      resolves tasks by itself.
    - ``ClientSession(read, write, **extension.session_options())``: the session parses
      the created task but resolves nothing by itself (``ClientSession.call_tool`` raises
      ``UnexpectedClaimedResult``); call tools through `call_tool` instead.
    - fastmcp's ``Client``: importing ``fastmcp_tasks`` registers its own resolver, under
      the same identifier, in every ``Client``. Pass this extension in
      ``Client(..., extensions=[TasksExtension()])`` and it replaces fastmcp-tasks'
      resolver for that client: fastmcp drops its internal extension when a user
      extension declares the same identifier (whatever the order). Without it,
      fastmcp-tasks' resolver runs (it polls from 20 ms up whatever the server's
      hint, reports a failed or cancelled task as an ``isError`` result, so fastmcp's
      ``ToolError``, and runs on asyncio only).

    One extension may serve several clients; its `updates` then carry all of their tasks.
    Only one extension of a client may observe ``notifications/tasks``.

    Args:
        policy: How to poll (`PollPolicy`): floor, cap, retries, deadline, ttl backstop.
        detach: Leave the task running when the call ends early, instead of sending
            ``tasks/cancel``.

    Raises:
        ArgumentTypeError: If ``policy`` is not a `PollPolicy` (or None), or ``detach``
            not a bool.

    Example:
        >>> retry = rxtasks.Retry(retry_on=rxtasks.mcp.is_transient)
        >>> extension = TasksExtension(policy=rxtasks.PollPolicy(retry=retry))
        >>> extension.updates.subscribe(lambda task: print(task.status, task.status_message))
        >>> async with mcp.client.Client(url, extensions=[extension]) as client:
        ...     result = await client.call_tool("long_tool", {"n": 3})  # the tool's result
        >>> async with fastmcp.Client(url, extensions=[extension]) as client:  # fastmcp
        ...     result = await client.call_tool("long_tool", {"n": 3})
    """

    identifier = TASKS_EXTENSION

    def __init__(self, *, policy: PollPolicy | None = None, detach: bool = False) -> None:
        from .sdk2 import TaskNotifications

        _check_options(policy, detach)
        self.policy = policy
        self.detach = detach
        #: The statuses servers push (``notifications/tasks``), for every task.
        self.pushed: TaskNotifications = TaskNotifications()
        self._updates: Subject[ExtensionTask] = Subject()

    @property
    def updates(self) -> Observable[ExtensionTask]:
        """Every state of every task this extension follows, as it learns them (hot).

        The created task first, then each state polled or pushed, the terminal one last,
        for all calls of all clients using the extension; tell them apart by
        ``task_id``. Subscribe before calling to see a call's states from its start.
        An observer that raises is logged, and does not disturb the call.

        Example:
            >>> extension.updates.subscribe(
            ...     lambda task: print(task.task_id, task.status, task.status_message)
            ... )
        """
        return self._updates

    def settings(self) -> dict[str, Any]:
        """The extension's settings, advertised to servers: none."""
        return {}

    def claims(self) -> Sequence[ResultClaim[Any]]:
        """The claim of a task answer (``resultType: "task"``) on ``tools/call``."""
        return (ResultClaim(result_type="task", model=_ClaimedTask, resolve=self._resolve),)

    def notifications(self) -> Sequence[NotificationBinding[Any]]:
        """The binding of the statuses servers push (``notifications/tasks``) to `pushed`."""
        return [b for b in self.pushed.bindings if b.method == "notifications/tasks"]

    def session_options(self) -> dict[str, Any]:
        """Keyword arguments for an mcp 2.x ``ClientSession`` that uses this extension.

        Returns:
            ``extensions``, ``result_claims`` and ``notification_bindings``, for
            ``ClientSession(**...)`` or fastmcp's
            ``FastMCPTransport(server).connect_session(**...)``.

        Example:
            >>> async with ClientSession(read, write, **extension.session_options()) as s:
            ...     await s.discover()
            ...     result = await extension.call_tool(s, "long_tool", {"n": 3})
        """
        return {
            "extensions": {self.identifier: self.settings()},
            "result_claims": {self.identifier: list(self.claims())},
            "notification_bindings": list(self.notifications()),
        }

    async def call_tool(
        self,
        session: ClientSession,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        read_timeout_seconds: float | None = None,
        progress_callback: ProgressFnT | None = None,
        meta: mcp_types.RequestParamsMeta | None = None,
    ) -> mcp_types.CallToolResult:
        """Call a tool through a ``ClientSession``; a task is followed to its result.

        What ``mcp.client.Client.call_tool`` does with this extension, for a bare
        session built with `session_options` (and discovered: claims apply from
        protocol 2026-07-28 on). A completed result is checked against the tool's output
        schema, as the SDK does.

        Args:
            session: The session.
            name: The tool.
            arguments: Its arguments.
            read_timeout_seconds: The ``tools/call``'s timeout, and the task's deadline
                unless the policy has one.
            progress_callback: As for ``ClientSession.call_tool``.
            meta: As for ``ClientSession.call_tool``.

        Returns:
            The tool's result.

        Raises:
            MCPError: As described in the class (also the matching rxtasks error).
            UnexpectedClaimedResult: If another extension's claim answered.
        """
        answer = await session.call_tool(
            name,
            arguments,
            read_timeout_seconds,
            progress_callback,
            meta=meta,
            allow_claimed=True,
        )
        if isinstance(answer, mcp_types.CallToolResult):
            return answer
        if not isinstance(answer, _ClaimedTask):
            raise UnexpectedClaimedResult(answer)
        result = await self._follow(session, answer, read_timeout_seconds)
        if not result.is_error:
            await session.validate_tool_result(name, result)
        return result

    async def _resolve(self, claimed: _ClaimedTask, ctx: ClaimContext) -> mcp_types.CallToolResult:
        return await self._follow(ctx.session, claimed, ctx.read_timeout_seconds)

    async def _follow(
        self, session: ClientSession, claimed: _ClaimedTask, read_timeout_seconds: float | None
    ) -> mcp_types.CallToolResult:
        """Follow a created task to its outcome; cancel it if left early, unless detached."""
        from .sdk2 import ExtensionTask, ExtensionTasks

        raw = claimed.model_dump(by_alias=True, mode="json", exclude_unset=True)
        created = read_task(ExtensionTask, raw, request="tools/call")
        tasks = ExtensionTasks(session, notifications=self.pushed)
        call = _Call(session, tasks, created, self._policy(read_timeout_seconds), self._publish)
        try:
            final = await call.run()
        except BaseException as exc:
            if not self.detach and call.final is None and not is_not_found(exc):
                await cancel_logged(tasks, created.task_id)
            raise
        return _outcome(tasks, final)

    def _policy(self, read_timeout_seconds: float | None) -> PollPolicy | None:
        """The policy of one call: the call's timeout is the deadline, unless it has one."""
        policy = self.policy
        if read_timeout_seconds is None or (policy is not None and policy.timeout_ms is not None):
            return policy
        timeout_ms = read_timeout_seconds * 1000
        if policy is None:
            return PollPolicy(timeout_ms=timeout_ms)
        return dataclasses.replace(policy, timeout_ms=timeout_ms)

    def _publish(self, state: ExtensionTask) -> None:
        try:
            self._updates.on_next(state)
        except Exception:  # noqa: BLE001 -- an observer's error is not the call's
            logger.exception("an observer of TasksExtension.updates raised")

    def __repr__(self) -> str:
        return f"<TasksExtension policy={self.policy!r} detach={self.detach}>"


class _Call:
    """One created task, followed to a terminal state: polls, pushes, input."""

    def __init__(
        self,
        session: ClientSession,
        tasks: ExtensionTasks,
        created: ExtensionTask,
        policy: PollPolicy | None,
        publish: Callable[[ExtensionTask], None],
    ) -> None:
        self.session = session
        self.tasks = tasks
        self.created = created
        self.task_id = created.task_id
        self.policy = policy
        self.publish = publish
        #: The terminal state, once the poll has seen it.
        self.final: ExtensionTask | None = None
        self._deadline = math.inf

    async def run(self) -> ExtensionTask:
        """Poll to a terminal state, in a ``subscriptions/listen`` block.

        An error is raised outside the listen block's task group, so that it reaches the
        caller as itself, not in an exception group (trio wraps what leaves a nursery).
        """
        failure: Exception | None = None
        async with self.tasks.listen([self.task_id]):
            try:
                await self._poll()
            except PollTimeoutError as exc:
                failure = _timeout(exc.task_id, exc.last_result, exc.timeout_ms)
                failure.__cause__ = exc
            except Exception as exc:  # noqa: BLE001 -- raised below, outside the task group
                failure = exc
        if failure is not None:
            raise failure
        assert self.final is not None
        return self.final

    async def _poll(self) -> None:
        policy = self.policy
        if policy is not None and policy.timeout_ms is not None:
            self._deadline = anyio.current_time() + policy.timeout_ms / 1000
        source = self.tasks.poll(self.created, policy=policy)
        async with iterate(source) as states:
            async for state in states:
                if is_terminal(state.status):
                    self.final = state  # before anyone hears of it: nothing left to cancel
                self.publish(state)
                if state.status == "input_required":
                    await self._answer(state)

    async def _answer(self, state: ExtensionTask) -> None:
        """Answer the input requests not answered yet, with ``tasks/update``, once each."""
        new = self.tasks.new_input_requests(state)
        if not new:
            return
        with anyio.move_on_after(self._deadline - anyio.current_time()) as scope:
            answers = {key: await self._ask(state, key, request) for key, request in new.items()}
            await self.tasks.update(self.task_id, answers)
        if scope.cancelled_caught:
            assert self.policy is not None
            assert self.policy.timeout_ms is not None
            raise _timeout(self.task_id, state, self.policy.timeout_ms)

    async def _ask(self, state: ExtensionTask, key: str, raw: object) -> mcp_types.InputResponse:
        """One input request, through the client's callback for its kind."""
        try:
            request = _INPUT_REQUEST.validate_python(raw)
        except ValidationError:
            raise _input_error(
                state,
                key,
                raw,
                mcp_types.METHOD_NOT_FOUND,
                f"a {_method_of(raw)!r} request, which this client does not know",
            ) from None
        params = request.params
        context = ClientRequestContext(
            session=self.session,
            request_id=f"{self.task_id}/{key}",
            meta=params.meta if params is not None else None,
        )
        answer = await self.session.dispatch_input_request(context, request)
        if isinstance(answer, mcp_types.ErrorData):
            callback = _CALLBACKS.get(request.method, "callback")
            raise _input_error(
                state,
                key,
                raw,
                answer.code,
                f"a {request.method!r} request, and the client's {callback} answered"
                f" with an error: {answer.message}",
            )
        return answer


# -- the outcome, and its errors: MCPError (the SDK's convention) and rxtasks' own -----------


class _TaskFailed(MCPError, TaskFailedError):  # type: ignore[misc,override]  # pyright: ignore[reportIncompatibleVariableOverride]
    """A failed task: the ``MCPError`` of its JSON-RPC error, and a `TaskFailedError`.

    ``code`` and ``data`` are the ``MCPError``'s (the error's), as `TaskFailedError` has
    them.
    """

    def __init__(self, code: int, message: str, data: object, *, final: ExtensionTask) -> None:
        _init_mcp_error(self, code, message, data)
        self.task_id = final.task_id
        self.status = "failed"
        self.final = final


class _TaskCancelled(MCPError, TaskCancelledError):
    """A cancelled task: an ``MCPError`` (-32603), and a `TaskCancelledError`."""

    def __init__(self, message: str, *, final: ExtensionTask) -> None:
        _init_mcp_error(self, mcp_types.INTERNAL_ERROR, message, None)
        self.task_id = final.task_id
        self.status = "cancelled"
        self.final = final


class _TaskInput(MCPError, TaskInputError):
    """Input the client cannot give: an ``MCPError``, and a `TaskInputError`."""

    def __init__(
        self, code: int, message: str, *, final: ExtensionTask, key: str, request: object
    ) -> None:
        _init_mcp_error(self, code, message, None)
        self.task_id = final.task_id
        self.status = "input_required"
        self.final = final
        self.key = key
        self.request = request


class _TaskTimeout(MCPError, PollTimeoutError):
    """The deadline: an ``MCPError`` (-32001, ``REQUEST_TIMEOUT``), and a `PollTimeoutError`."""

    def __init__(
        self, message: str, *, task_id: str, last_result: object, timeout_ms: float
    ) -> None:
        _init_mcp_error(self, mcp_types.REQUEST_TIMEOUT, message, None)
        self.task_id = task_id
        self.last_result = last_result
        self.timeout_ms = timeout_ms


def _init_mcp_error(error: MCPError, code: int, message: str, data: object) -> None:
    """Set an error up as ``MCPError(code, message, data)`` would.

    ``MCPError.__init__`` hands its arguments on with ``super()``, which here is the
    rxtasks error's ``__init__``, with other arguments: so neither runs.
    """
    Exception.__init__(error, code, message, data)
    fields: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        fields["data"] = data
    error.error = mcp_types.ErrorData(**fields)


def _outcome(tasks: ExtensionTasks, final: ExtensionTask) -> mcp_types.CallToolResult:
    """A completed task's result; for the others, their ``MCPError``."""
    if final.status == "completed":
        return tasks.outcome(final)
    if final.status == "cancelled":
        text = f"task {final.task_id} was cancelled"
        if final.status_message:
            text += f": {final.status_message}"
        raise _TaskCancelled(text, final=final)
    error: dict[str, Any] = final.error if isinstance(final.error, dict) else {}
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = mcp_types.INTERNAL_ERROR
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = str(final.status_message or f"task {final.task_id} {final.status}")
    raise _TaskFailed(code, message, error.get("data"), final=final)


def _check_options(policy: object, detach: object) -> None:
    if policy is not None and not isinstance(policy, PollPolicy):
        raise ArgumentTypeError(f"`policy` must be a PollPolicy or None, got {policy!r}")
    if not isinstance(detach, bool):
        raise ArgumentTypeError(f"`detach` must be a bool, got {detach!r}")


def _method_of(raw: object) -> object:
    """The ``method`` of a request as the server sent it, if it has one."""
    return cast("dict[str, object]", raw).get("method") if isinstance(raw, dict) else None


def _input_error(
    state: ExtensionTask, key: str, request: object, code: int, what: str
) -> _TaskInput:
    return _TaskInput(
        code,
        f"task {state.task_id} asks for input the client cannot give: {key!r} is {what}",
        final=state,
        key=key,
        request=request,
    )


def _timeout(task_id: str, last_result: object, timeout_ms: float) -> _TaskTimeout:
    return _TaskTimeout(
        f"task {task_id} did not end within {timeout_ms:g} ms",
        task_id=task_id,
        last_result=last_result,
        timeout_ms=timeout_ms,
    )
