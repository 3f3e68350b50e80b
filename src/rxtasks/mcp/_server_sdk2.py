"""A tasks-extension server (FastMCP + fastmcp-tasks, mcp 2.x), for tests and the demo.

Every tool runs as a task (``mode="required"``). The poll interval a server suggests is
fixed per tool in fastmcp-tasks, so tools differ in it:

- ``work(steps, step_ms)``: 250 ms interval; reports ``step i/n``, then completes.
- ``quick(steps, step_ms)``: the same with a 100 ms interval.
- ``slow(steps, step_ms)``: the same with a 750 ms interval.
- ``fail(after_ms, message)``: fails (a JSON-RPC error, so ``failed``, not ``isError``).
- ``wait_cancel(tick_ms)``: works until cancelled.
- ``ask(question, then_ms)``: asks for input (``input_required``); once answered it works
  for ``then_ms`` (status message ``answered``), then completes with the answer.
- ``echo(text)``: not a task tool; answers at once.

fastmcp-tasks pushes nothing: it does not serve ``subscriptions/listen``. With
``build_extension_server(pushes=True)`` (or `serve_pushes` on a server of your own) the
server serves it too (`TaskPushes`): it pushes ``notifications/tasks``, each a task's full
state (what ``tasks/get`` answers), for the tasks the client names, until it cancels
the listen request.

fastmcp-tasks' task backend (Docket) runs on asyncio only.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import mcp_types
from fastmcp import Context, FastMCP
from fastmcp.server.dependencies import bind_request_context
from fastmcp.server.extensions import read_client_extension_settings
from fastmcp.utilities.tasks import TASKS_EXTENSION_ID, TaskConfig
from fastmcp_tasks import TasksExtension
from fastmcp_tasks.handlers import tasks_get
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectSendStream
    from mcp.server.context import ServerRequestContext

__all__ = ["TaskPushes", "build_extension_server", "serve_pushes"]

logger = logging.getLogger(__name__)

_TERMINAL = frozenset({"completed", "failed", "cancelled"})


class _TasksNotification(mcp_types.Notification[dict[str, Any], Literal["notifications/tasks"]]):
    """``notifications/tasks``: a task's full state, as ``tasks/get`` answers it."""

    method: Literal["notifications/tasks"] = "notifications/tasks"
    params: dict[str, Any]


class TaskPushes:
    """Serves ``subscriptions/listen`` for a fastmcp-tasks server: pushes task states.

    One listen request is one stream. The handler acknowledges first
    (``notifications/subscriptions/acknowledged``, echoing what it honors: the
    ``taskIds`` of a client that declared the tasks extension on the request, and the
    list-change kinds, which this server never fires), then pushes each named task's
    state as ``notifications/tasks`` (the ``tasks/get`` answer, stamped with the
    subscription id): once when the stream opens, then whenever the task's status or
    status message changes, up to its terminal state. The stream stays open until the
    client cancels the request (or the connection ends).

    fastmcp-tasks has no hook for a task's changes, so each stream watches its tasks by
    reading them (in process, the same read ``tasks/get`` does) every
    ``check_interval``; the client hears of a change that much later at most, whatever
    interval the tool suggests for polling. An unknown (or expired) task is not watched.

    Args:
        server: The FastMCP server, with fastmcp-tasks' ``TasksExtension`` added.
        check_interval: How often a stream reads its tasks.
    """

    def __init__(
        self, server: FastMCP[Any], *, check_interval: timedelta = timedelta(milliseconds=20)
    ) -> None:
        self.server = server
        self.check_interval = check_interval

    async def __call__(
        self,
        ctx: ServerRequestContext[Any, Any],
        params: mcp_types.SubscriptionsListenRequestParams,
    ) -> mcp_types.SubscriptionsListenResult:
        """Serve one listen stream, until the client cancels it."""
        subscription_id = ctx.request_id
        if subscription_id is None:
            raise MCPError(mcp_types.INVALID_REQUEST, "subscriptions/listen needs a request id")
        requested = params.notifications
        task_ids: object = (requested.model_extra or {}).get("taskIds")
        if task_ids is not None and not (
            isinstance(task_ids, list)
            and all(isinstance(t, str) for t in cast("list[object]", task_ids))
        ):
            raise MCPError(mcp_types.INVALID_PARAMS, "taskIds must be a list of task ids")
        if read_client_extension_settings(ctx, TASKS_EXTENSION_ID) is None:
            task_ids = None  # taskIds belong to the extension, which the client did not declare
        watched = list(dict.fromkeys(cast("list[str]", task_ids or [])))
        honored: dict[str, Any] = {
            "toolsListChanged": True if requested.tools_list_changed else None,
            "promptsListChanged": True if requested.prompts_list_changed else None,
            "resourcesListChanged": True if requested.resources_list_changed else None,
            "resourceSubscriptions": list(requested.resource_subscriptions or ()) or None,
        }
        if task_ids is not None:
            honored["taskIds"] = watched
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: subscription_id}

        await self._serve(ctx, subscription_id, watched, honored, meta)
        return mcp_types.SubscriptionsListenResult(_meta=meta)  # pragma: no cover

    async def _serve(
        self,
        ctx: ServerRequestContext[Any, Any],
        subscription_id: mcp_types.RequestId,
        watched: list[str],
        honored: dict[str, Any],
        meta: dict[str, Any],
    ) -> None:
        """Acknowledge, push the watched tasks' states, then wait to be cancelled."""
        with bind_request_context(ctx):  # the caller's auth scope, for the reads
            await ctx.session.send_notification(
                mcp_types.SubscriptionsAcknowledgedNotification(
                    params=mcp_types.SubscriptionsAcknowledgedNotificationParams(
                        notifications=mcp_types.SubscriptionFilter.model_validate(honored),
                        _meta=meta,
                    )
                ),
                related_request_id=subscription_id,
            )
            # The watchers hand states to this task, the stream's only writer.
            send, receive = anyio.create_memory_object_stream[dict[str, Any]](64)
            async with anyio.create_task_group() as tg, receive:
                async with send:
                    for task_id in watched:
                        tg.start_soon(self._watch, task_id, send.clone())
                async for state in receive:
                    notification = _TasksNotification(params={**state, "_meta": meta})
                    await ctx.session.send_notification(
                        cast("mcp_types.ServerNotification", notification),
                        related_request_id=subscription_id,
                    )
            await anyio.sleep_forever()  # every task is terminal: open till cancelled

    async def _watch(self, task_id: str, send: MemoryObjectSendStream[dict[str, Any]]) -> None:
        """Hand over the task's state now and on each change, up to its terminal state."""
        last: tuple[str, str | None] | None = None
        async with send:
            while True:
                try:
                    state = await tasks_get(self.server, task_id)
                except MCPError as exc:  # unknown, expired or not the caller's
                    logger.debug("not watching task %s: %s", task_id, exc)
                    return
                key = (state.status, state.status_message)
                if key != last:
                    last = key
                    await send.send(state.model_dump(by_alias=True, mode="json", exclude_none=True))
                if state.status in _TERMINAL:
                    return
                await anyio.sleep(self.check_interval.total_seconds())


def serve_pushes(
    server: FastMCP[Any],
    handler: TaskPushes | None = None,
    *,
    check_interval: timedelta = timedelta(milliseconds=20),
) -> TaskPushes:
    """Make a fastmcp-tasks server serve ``subscriptions/listen`` (see `TaskPushes`).

    Serving it also makes the server's capabilities (at 2026-07-28) claim list-change
    notifications, which the SDK derives from it; a server whose lists never change
    honors them by sending none.

    Args:
        server: The server, with fastmcp-tasks' ``TasksExtension`` added.
        handler: The handler to serve, if not a new `TaskPushes` of the server.
        check_interval: For a new handler: how often a stream reads its tasks.

    Returns:
        The handler, registered on the server.
    """
    pushes = handler or TaskPushes(server, check_interval=check_interval)
    # FastMCP has no public way to serve a spec method: its extensions add new methods
    # only, so the handler goes to the SDK's server that FastMCP wraps.
    server._mcp_server.add_request_handler(  # pyright: ignore[reportPrivateUsage]
        "subscriptions/listen", mcp_types.SubscriptionsListenRequestParams, pushes
    )
    return pushes


def _task(interval_ms: int) -> TaskConfig:
    return TaskConfig(mode="required", poll_interval=timedelta(milliseconds=interval_ms))


async def _steps(ctx: Context, steps: int, step_ms: int) -> str:
    for i in range(1, steps + 1):
        await anyio.sleep(step_ms / 1000)
        await ctx.report_progress(i, steps, f"step {i}/{steps}")  # the task's statusMessage
    return f"done after {steps} steps"


def build_extension_server(
    name: str = "rxtasks-demo-extension", *, pushes: bool = False
) -> FastMCP[Any]:
    """Build a FastMCP server with the tasks extension and the tools above.

    Args:
        name: The server's name.
        pushes: Serve ``subscriptions/listen`` and push task states (`serve_pushes`);
            by default the server is fastmcp-tasks as it is, which pushes nothing.
    """
    server: FastMCP[Any] = FastMCP(name)
    server.add_extension(
        TasksExtension(url="memory://", minimum_check_interval=timedelta(milliseconds=10))
    )
    _add_tools(server)
    if pushes:
        serve_pushes(server)
    return server


def _add_tools(server: FastMCP[Any]) -> None:
    """Add the demo's tools (see the module's docstring)."""

    @server.tool(task=_task(250))
    async def work(ctx: Context, steps: int = 3, step_ms: int = 200) -> str:
        """Report progress every step_ms, then complete (suggests polling every 250 ms)."""
        return await _steps(ctx, steps, step_ms)

    @server.tool(task=_task(100))
    async def quick(ctx: Context, steps: int = 3, step_ms: int = 100) -> str:
        """Like work, suggesting polling every 100 ms."""
        return await _steps(ctx, steps, step_ms)

    @server.tool(task=_task(750))
    async def slow(ctx: Context, steps: int = 3, step_ms: int = 1000) -> str:
        """Like work, suggesting polling every 750 ms."""
        return await _steps(ctx, steps, step_ms)

    @server.tool(task=_task(250))
    async def fail(after_ms: int = 300, message: str = "it broke") -> str:
        """Fail with a JSON-RPC error after after_ms."""
        await anyio.sleep(after_ms / 1000)
        raise MCPError(code=-32603, message=message, data={"tool": "fail"})

    @server.tool(task=_task(250))
    async def wait_cancel(ctx: Context, tick_ms: int = 100) -> str:
        """Work until cancelled."""
        tick = 0
        while True:
            tick += 1
            await ctx.report_progress(tick, None, f"tick {tick}")
            await anyio.sleep(tick_ms / 1000)

    @server.tool(task=_task(250))
    async def ask(
        ctx: Context, question: str = "What is your name?", then_ms: int = 300
    ) -> str | mcp_types.InputRequiredResult:
        """Ask the client for an answer; work then_ms ("answered"), then complete with it."""
        answers: dict[str, Any] = dict(ctx.input_responses or {})
        if "answer" in answers:
            content: dict[str, Any] = getattr(answers["answer"], "content", None) or {}
            await ctx.report_progress(1, 1, "answered")  # working again, with a message
            await anyio.sleep(then_ms / 1000)
            return f"answer: {content.get('answer')}"
        return mcp_types.InputRequiredResult(
            input_requests={
                "answer": mcp_types.ElicitRequest(
                    params=mcp_types.ElicitRequestFormParams(
                        message=question,
                        requested_schema={
                            "type": "object",
                            "properties": {"answer": {"type": "string"}},
                            "required": ["answer"],
                        },
                    )
                )
            },
        )

    @server.tool
    async def echo(text: str = "") -> str:
        """Answer at once (no task)."""
        return text


if __name__ == "__main__":  # a stdio server, for clients on other event loops (trio tests)
    build_extension_server().run(transport="stdio", show_banner=False)
