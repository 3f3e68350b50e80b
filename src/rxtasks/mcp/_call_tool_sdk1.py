"""`CoreTasks.call_tool`: a task, from its creation to the tool's result (mcp 1.x, 2025-11-25).

The steps, for one task:

1. Poll it from its created state (pushes and policy included): the first ``tasks/get``
   waits the created task's hint.
2. The first time it is ``input_required``, call ``tasks/result`` once, in the background:
   the server sends its requests (elicitation, sampling) over that call, and the
   session's callbacks answer them. The call returns when the task has ended, and a tool
   result it returns is the answer: polling stops there.
3. Once the poll has seen a terminal state: a completed task's result is what
   ``tasks/result`` returns (the one from step 2 if there was one, else a new call); a
   failed or cancelled task becomes a ``CallToolResult`` with ``isError`` (the result
   ``ClientSession.call_tool`` returns for a tool that raised), unless the server's
   ``tasks/result`` holds a tool result of its own.
4. Left early (the caller cancelled, the policy's deadline, any error) before the task
   ended: ``tasks/cancel``, shielded and bounded, unless ``detach``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import anyio
from mcp import types
from pydantic import RootModel, ValidationError

from .._bridges import iterate
from .._core._errors import InvalidResultError
from .._core._status import is_terminal
from ._common import cancel_logged, logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from .._poll.policy import PollPolicy
    from .sdk1 import CoreTasks

__all__ = ["resolve"]

#: The ``_meta`` key that ties a message to its task (2025-11-25).
RELATED_TASK = "io.modelcontextprotocol/related-task"

_Raw = RootModel[Any]


async def resolve(
    tasks: CoreTasks,
    created: types.Task,
    *,
    policy: PollPolicy | None,
    detach: bool,
    default_interval_ms: float,
    on_status: Callable[[types.Task], object] | None,
) -> types.CallToolResult:
    """Follow a created task to its result; cancel it if left early, unless ``detach``."""
    call = _Call(tasks, created, policy, default_interval_ms, on_status)
    try:
        return await call.run()
    except BaseException:
        if not detach and not call.ended:
            await cancel_logged(tasks, created.taskId)
        raise


class _Call:
    """One task followed to its end: the poll, and the one ``tasks/result`` for input."""

    def __init__(
        self,
        tasks: CoreTasks,
        created: types.Task,
        policy: PollPolicy | None,
        default_interval_ms: float,
        on_status: Callable[[types.Task], object] | None,
    ) -> None:
        self.tasks = tasks
        self.created = created
        self.task_id = created.taskId
        self.policy = policy
        self.default_interval_ms = default_interval_ms
        self.on_status = on_status
        #: The terminal state the poll saw, if any.
        self.final: types.Task | None = None
        #: The ``tasks/result`` made for input: started, answered (the task has ended).
        self.asked = False
        self.answered = False
        self.answer: object = None
        self.answer_error: Exception | None = None
        self._answer_done = anyio.Event()
        self._polling = anyio.CancelScope()

    @property
    def ended(self) -> bool:
        """Whether the task is known to have ended (nothing left to cancel)."""
        return self.final is not None or self.answered

    async def run(self) -> types.CallToolResult:
        """Poll (asking once for input), then make the result; errors are raised here."""
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            try:
                await self._poll(tg)
                if self.asked:
                    await self._answer_done.wait()
            except Exception as exc:  # noqa: BLE001 -- raised below, outside the task group
                failure = exc
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if self.answer_error is not None:
            raise self.answer_error
        if self.answered:
            payload = self.answer
        else:
            # The task has ended: the answer is due at once, within read_timeout_ms.
            limit_ms = self.tasks.read_timeout_ms
            limit = None if limit_ms is None else timedelta(milliseconds=limit_ms)
            payload = await _payload(self.tasks, self.task_id, limit)
        return _outcome(self.task_id, self.final, payload)

    async def _poll(self, tg: TaskGroup) -> None:
        """Poll until a terminal state, or until the ``tasks/result`` for input answered."""
        source = self.tasks.poll(self.created, self.default_interval_ms, policy=self.policy)
        with self._polling:
            async with iterate(source) as states:
                async for state in states:
                    if self.on_status is not None:
                        self.on_status(state)
                    if state.status == "input_required" and not self.asked:
                        self.asked = True  # once per task: it carries every request
                        tg.start_soon(self._ask)
                    if is_terminal(state.status):
                        self.final = state

    async def _ask(self) -> None:
        """Call ``tasks/result``; the session's callbacks answer what comes over it."""
        try:
            self.answer = await _payload(self.tasks, self.task_id, None)
            self.answered = True
            if _member(self.answer, "content") is not None:
                self._polling.cancel()  # the task completed: its result is here
        except Exception as exc:  # noqa: BLE001 -- raised by run(), not by the task group
            self.answer_error = exc
            self._polling.cancel()
        finally:
            self._answer_done.set()


async def _payload(tasks: CoreTasks, task_id: str, limit: timedelta | None) -> object:
    """``tasks/result``, as JSON: it returns once the task has ended (``limit``: None, none)."""
    request = types.GetTaskPayloadRequest(params=types.GetTaskPayloadRequestParams(taskId=task_id))
    answer = await tasks.session.send_request(
        types.ClientRequest(request), _Raw, request_read_timeout_seconds=limit
    )
    return answer.root


def _outcome(task_id: str, final: types.Task | None, payload: object) -> types.CallToolResult:
    """The tool's result, from the task's final state and its ``tasks/result``."""
    if not isinstance(payload, dict):
        raise InvalidResultError(
            f"the server answered tasks/result with {_short(payload)} (not a JSON object)",
            result=payload,
            task_id=task_id,
        )
    fields = cast("dict[str, Any]", payload)
    status = "completed" if final is None else final.status  # None: a tool result came
    if "content" in fields:
        try:
            result = types.CallToolResult.model_validate(fields)
        except ValidationError:
            raise InvalidResultError(
                f"the server answered tasks/result with a malformed tool result: {_short(fields)}",
                result=fields,
                task_id=task_id,
            ) from None
        if status == "completed" or result.isError:
            return result
        return result.model_copy(update={"isError": True})  # a failed task is an error
    if status == "completed":  # a result with no content at all
        return types.CallToolResult.model_validate({"content": [], **fields})
    assert final is not None
    logger.debug("task %s ended %s without a result", task_id, status)
    message = final.statusMessage
    if status == "failed":
        text = message or f"task {task_id} failed"
    elif status == "cancelled":
        text = f"task {task_id} was cancelled" + (f": {message}" if message else "")
    else:
        text = f"task {task_id} ended {status}" + (f": {message}" if message else "")
    sent = fields.get("_meta")
    meta: dict[str, Any] = cast("dict[str, Any]", sent) if isinstance(sent, dict) else {}
    meta = {**meta, RELATED_TASK: {"taskId": task_id}}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], isError=True, _meta=meta
    )


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _member(raw: object, name: str) -> object:
    """A member of a JSON object, or None (also when ``raw`` is not an object)."""
    return cast("dict[str, object]", raw).get(name) if isinstance(raw, dict) else None
