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

fastmcp-tasks' task backend (Docket) runs on asyncio only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import mcp_types
from fastmcp import Context, FastMCP
from fastmcp.utilities.tasks import TaskConfig
from fastmcp_tasks import TasksExtension
from mcp.shared.exceptions import MCPError

__all__ = ["build_extension_server"]


def _task(interval_ms: int) -> TaskConfig:
    return TaskConfig(mode="required", poll_interval=timedelta(milliseconds=interval_ms))


async def _steps(ctx: Context, steps: int, step_ms: int) -> str:
    for i in range(1, steps + 1):
        await anyio.sleep(step_ms / 1000)
        await ctx.report_progress(i, steps, f"step {i}/{steps}")  # the task's statusMessage
    return f"done after {steps} steps"


def build_extension_server(name: str = "rxtasks-demo-extension") -> FastMCP[Any]:
    """Build a FastMCP server with the tasks extension and the tools above."""
    server: FastMCP[Any] = FastMCP(name)
    server.add_extension(
        TasksExtension(url="memory://", minimum_check_interval=timedelta(milliseconds=10))
    )

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

    return server


if __name__ == "__main__":  # a stdio server, for clients on other event loops (trio tests)
    build_extension_server().run(transport="stdio", show_banner=False)
